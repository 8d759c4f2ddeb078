"""The shared random-forest settings: defaults, validation, scikit-learn's counts, the local engine."""

import numpy as np
import pytest
from pydantic import ValidationError
from sklearn.ensemble import RandomForestRegressor

from gee_alt.cube import geo_dataarray
from gee_alt.engines.local.engine import LocalEngineParams
from gee_alt.science.forest import RandomForestSettings, bootstrap_size, features_per_split
from gee_alt.science.sharpen import RandomForestSharpener
from helpers.scenes import sharpen_scene

SETTINGS = (
    "n_estimators",
    "min_samples_leaf",
    "max_features",
    "max_samples",
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
