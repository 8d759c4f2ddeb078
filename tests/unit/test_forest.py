"""The shared random-forest settings: defaults, validation, scikit-learn's counts, the local engine."""

import numpy as np
import pytest
from pydantic import ValidationError
from sklearn.ensemble import RandomForestRegressor

from gee_alt.cube import geo_dataarray
from gee_alt.engines.ee.sharpen import smile_random_forest_arguments
from gee_alt.engines.local.engine import LocalEngineParams
from gee_alt.science.forest import RandomForestSettings, bag_fraction, bootstrap_size, features_per_split
from gee_alt.science.sharpen import RandomForestSharpener
from helpers.scenes import sharpen_scene

SETTINGS = (
    "n_estimators",
    "min_samples_leaf",
    "max_features",
    "max_samples",
    "max_bag_size",
    "max_leaf_nodes",
    "random_state",
    "homogeneity_drop",
)


def test_sharpener_and_local_engine_default_to_the_settings():
    defaults = RandomForestSettings()
    assert {k: RandomForestSharpener().get_params()[k] for k in SETTINGS} == defaults.model_dump()
    assert LocalEngineParams().rf == defaults
    assert set(RandomForestSharpener(**defaults.model_dump()).get_params()) >= set(SETTINGS)


@pytest.mark.parametrize(
    "bad",
    [
        dict(n_estimators=0),
        dict(max_features=0.0),
        dict(max_samples=1.5),
        dict(max_leaf_nodes=1),
        dict(max_bag_size=0),
        dict(homogeneity_drop=1.0),
        dict(n_estimators=2.0),
        dict(number_of_trees=10),
    ],
)
def test_invalid_settings_are_rejected(bad):
    with pytest.raises(ValidationError):
        RandomForestSettings(**bad)


@pytest.mark.parametrize("max_features", [0.1, 0.33, 0.5, 0.7, 1.0])
@pytest.mark.parametrize("n_features", [1, 5, 6, 9])
def test_features_per_split_is_the_count_scikit_learn_uses(max_features, n_features):
    rng = np.random.default_rng(0)
    X, y = rng.random((40, n_features)), rng.random(40)
    forest = RandomForestRegressor(n_estimators=1, max_features=max_features, random_state=0).fit(X, y)
    assert features_per_split(max_features, n_features) == forest.estimators_[0].max_features_


def test_bootstrap_size_counts_pixels():
    assert bootstrap_size(None, 500) is None
    assert bootstrap_size(0.5, 500) == 250 and bootstrap_size(1.0, 37) == 37 and bootstrap_size(1e-6, 10) == 1


def test_the_bag_cap_binds_only_above_it():
    """Below the cap nothing changes (None stays the bootstrap); above it each tree draws the cap."""
    assert bootstrap_size(None, 20000, 20000) is None and bootstrap_size(0.5, 30000, 20000) == 15000
    assert bootstrap_size(None, 96000, 20000) == 20000 and bootstrap_size(0.5, 96000, 20000) == 20000
    # Earth Engine: the same cap as a bag fraction of the sampled pixels (numPixels)
    assert bag_fraction(None, 20000, 5000) == 1.0 and bag_fraction(0.5, 20000, 5000) == 0.5
    assert bag_fraction(None, 20000, 80000) == 0.25 and bag_fraction(None, None, 80000) == 1.0
    rf = RandomForestSettings(max_bag_size=1000)
    assert smile_random_forest_arguments(rf, 4, 0, n_train=5000)["bagFraction"] == 0.2
    assert smile_random_forest_arguments(rf, 4, 0)["bagFraction"] == 1.0  # training size unknown


def test_bag_cap_reaches_the_forest():
    """With more training pixels than ``max_bag_size`` every tree draws exactly the cap; with fewer,
    the forest is the uncapped one, tree for tree."""
    s = sharpen_scene(n=192, seed=3, n_bands=1, gap_frac=0.0)
    X = geo_dataarray(
        np.stack([*s["terrain"].values(), s["ndvi"]]), s["fine_grid"], [*s["terrain"], "ndvi"], dim="feature"
    )
    y = geo_dataarray(s["coarse"], s["coarse_grid"], ["t"])
    kw = dict(n_estimators=4, min_samples_leaf=1, n_jobs=1)
    capped = RandomForestSharpener(max_bag_size=20, **kw).fit(X, y)
    assert capped.n_train_ > 20
    assert [len(idx) for idx in capped.models_[0][1]["rf"].estimators_samples_] == [20] * 4
    free = RandomForestSharpener(max_bag_size=None, **kw).fit(X, y)
    loose = RandomForestSharpener(max_bag_size=free.n_train_, **kw).fit(X, y)
    np.testing.assert_array_equal(loose.predict(X).values, free.predict(X).values)
    assert not np.array_equal(capped.predict(X).values, free.predict(X).values)


def test_bag_and_leaf_limits_reach_the_forest():
    """max_samples bags a fraction of the training pixels (not of the summed weights), and
    max_leaf_nodes caps every tree."""
    s = sharpen_scene(n=192, seed=3, n_bands=1, gap_frac=0.0)
    X = geo_dataarray(
        np.stack([*s["terrain"].values(), s["ndvi"]]), s["fine_grid"], [*s["terrain"], "ndvi"], dim="feature"
    )
    y = geo_dataarray(s["coarse"], s["coarse_grid"], ["t"])
    model = RandomForestSharpener(n_estimators=5, max_samples=0.5, max_leaf_nodes=4, min_samples_leaf=1, n_jobs=1).fit(
        X, y
    )
    forest = model.models_[0][1]["rf"]
    assert [len(idx) for idx in forest.estimators_samples_] == [round(0.5 * model.n_train_)] * 5
    assert all(t.get_n_leaves() <= 4 for t in forest.estimators_)
