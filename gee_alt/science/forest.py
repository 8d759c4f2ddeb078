"""Random-forest settings: one object, in scikit-learn's vocabulary, for both engines.

:class:`RandomForestSettings` is the ``[rf]`` table of the study config and what the local
engine (:class:`~gee_alt.science.sharpen.RandomForestSharpener`, scikit-learn) and the Earth
Engine engine (``ee.Classifier.smileRandomForest``, via
:func:`gee_alt.engines.ee.sharpen.smile_random_forest_arguments`) both take. The mapping:

==================  =========================================  =====================================
setting             scikit-learn (local engine)                Earth Engine ``smileRandomForest``
==================  =========================================  =====================================
n_estimators        ``n_estimators``                           ``numberOfTrees``
min_samples_leaf    ``min_samples_leaf``                       ``minLeafPopulation``
max_features        ``max_features`` (fraction of predictors)  ``variablesPerSplit`` =
                                                               :func:`features_per_split` (the
                                                               same count scikit-learn uses)
max_samples         ``max_samples`` as :func:`bootstrap_size`  ``bagFraction`` (``None`` → 1.0)
                    of the training pixels (``None``: n)
max_bag_size        each tree draws at most this many          ``bagFraction`` capped at
                    training pixels (:func:`bootstrap_size`)   ``max_bag_size / n_train`` (``n_train``:
                                                               the sampled pixels, ``numPixels``)
max_leaf_nodes      ``max_leaf_nodes`` (``None``: unlimited)   ``maxNodes`` (``None``: unlimited)
random_state        ``random_state`` + year                    ``seed`` (+ a per-forest offset)
homogeneity_drop    ``homogeneity_drop`` (fraction of coarse   the ``1 - homogeneity_drop``
                    pixels left out of training)               percentile of the CV screen
==================  =========================================  =====================================

Both draw each tree's bag with replacement at the default (n draws of n training pixels:
scikit-learn's bootstrap, Smile's ``subsample = 1``); below 1, scikit-learn still draws with
replacement, Earth Engine without.

The defaults are the local engine's (40 trees, leaves of >= 10 pixels, 70 % of the predictors
per split, bootstrap, no homogeneity drop), so the Earth Engine engine uses the same forest
unless the config says otherwise.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

#: default cap on the training pixels each tree draws (see :class:`RandomForestSettings`)
MAX_BAG_SIZE = 20_000


class RandomForestSettings(BaseModel):
    """The random-forest settings both engines take (scikit-learn names; see the module table).

    - ``n_estimators``: trees per forest (>= 1);
    - ``min_samples_leaf``: fewest training pixels in a leaf (>= 1);
    - ``max_features``: fraction (0, 1] of the predictors tried at each split;
    - ``max_samples``: each tree's bag as a fraction (0, 1] of the training pixels,
      ``None`` = as many draws as pixels (the bootstrap);
    - ``max_bag_size``: most training pixels drawn per tree (>= 1), ``None`` = no cap. The
      cap binds only on large scenes (the NDVI forest of the full study grid trains on ~96 000
      250 m pixels): each tree then learns from a bag of this size, the forest from all pixels;
      fitting costs ~n log n and predicting ~log n per tree, so the cap bounds both;
    - ``max_leaf_nodes``: most leaves per tree (>= 2), ``None`` = unlimited;
    - ``random_state``: seed (>= 0) of the forests and, in Earth Engine, of the sampling;
    - ``homogeneity_drop``: fraction [0, 1) of the least homogeneous coarse pixels left out
      of training.
    """

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    n_estimators: int = Field(40, ge=1)
    min_samples_leaf: int = Field(10, ge=1)
    max_features: float = Field(0.7, gt=0.0, le=1.0)
    max_samples: float | None = Field(None, gt=0.0, le=1.0)
    max_bag_size: int | None = Field(MAX_BAG_SIZE, ge=1)
    max_leaf_nodes: int | None = Field(None, ge=2)
    random_state: int = Field(0, ge=0)
    homogeneity_drop: float = Field(0.0, ge=0.0, lt=1.0)


def features_per_split(max_features: float, n_features: int) -> int:
    """Predictors tried at each split: ``max(1, int(max_features * n_features))``, scikit-learn's
    rule for a fractional ``max_features`` (e.g. 0.7 of 5 predictors -> 3)."""
    return max(1, int(max_features * n_features))


def bootstrap_size(max_samples: float | None, n_samples: int, max_bag_size: int | None = None) -> int | None:
    """Draws per tree for ``max_samples`` (a fraction of ``n_samples`` training pixels, at least 1)
    capped at ``max_bag_size``; ``None`` (no fraction, no binding cap) stays ``None``
    (scikit-learn then draws ``n_samples``).

    A count, not the fraction, goes to scikit-learn, which would otherwise scale a fraction by
    the sum of the sample weights rather than by the number of pixels.
    """
    draws = None if max_samples is None else max(1, round(max_samples * n_samples))
    if max_bag_size is not None and (draws or n_samples) > max_bag_size:
        draws = int(max_bag_size)
    return draws


def bag_fraction(max_samples: float | None, max_bag_size: int | None, n_train: int | None) -> float:
    """Earth Engine's ``bagFraction`` for the settings: ``max_samples`` (1 when unset), capped at
    ``max_bag_size / n_train`` when the number of training pixels ``n_train`` is known."""
    frac = 1.0 if max_samples is None else float(max_samples)
    if max_bag_size is not None and n_train and max_bag_size < frac * n_train:
        frac = max_bag_size / n_train
    return frac
