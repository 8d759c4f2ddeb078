"""The local engine's steps follow the config's [season] on every path that builds it (``run
--engine local --config``, ``run --engine ee --sharpen local``): one constructor, every field."""

import dataclasses

from gee_alt.config import SeasonConfig
from gee_alt.engines.local.engine import LocalEngineParams


def test_every_season_setting_reaches_the_local_engine():
    season = SeasonConfig(
        thaw_start="04-15",
        thaw_end="10-31",
        lst_step_days=8,
        growing_start="06-01",
        growing_end="09-15",
        min_valid_fraction=0.7,
        frost_number_min=0.55,
        permafrost_criterion="boreholes",
        permafrost_shift_weights=True,
        frost_number_method="running_mean",
        frost_number_years=5,
    )
    p = LocalEngineParams.from_season(season, workers=3, tile_px=256)
    got = {f.name: getattr(p, f.name) for f in dataclasses.fields(p)}
    assert got["thaw_start"] == "04-15" and got["thaw_end"] == "10-31" and got["min_valid_fraction"] == 0.7
    assert got["frost_number_min"] == 0.55 and got["permafrost_criterion"] == "boreholes"
    assert got["permafrost_shift_weights"] is True
    assert (got["frost_number_method"], got["frost_number_years"]) == ("running_mean", 5)
    assert (got["workers"], got["tile_px"]) == (3, 256)
    # every engine field named like a season setting is taken from the season (none forgotten)
    season_names = set(SeasonConfig.model_fields)
    assert {f.name for f in dataclasses.fields(p)} & season_names == {
        "thaw_start",
        "thaw_end",
        "min_valid_fraction",
        "frost_number_min",
        "permafrost_criterion",
        "permafrost_shift_weights",
        "frost_number_method",
        "frost_number_years",
    }
