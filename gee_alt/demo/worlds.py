"""The demo's synthetic worlds by name: ``realistic`` (the default, the honest yardstick) and
``ideal`` (truth built in the model's image: a fast plumbing check)."""

from __future__ import annotations

from pathlib import Path

from gee_alt.demo.writer import TruthSample

WORLDS = ("realistic", "ideal")
DEFAULT_WORLD = "realistic"


def make_world(name: str, *, seed: int, years: list[int], size_px: int, warming_degc_per_yr: float | None = None):
    """The scene of world ``name`` (``realistic`` or ``ideal``). ``warming_degc_per_yr`` sets the
    realistic world's climate trend (default 0.05 °C/yr; the ideal world's is fixed)."""
    if name == "realistic":
        from gee_alt.demo.realistic.scene import RealisticScene, RealisticSpec

        extra = {} if warming_degc_per_yr is None else {"warming_degc_per_yr": warming_degc_per_yr}
        return RealisticScene(RealisticSpec(seed=seed, years=tuple(years), size_px=size_px, **extra))
    if name == "ideal":
        from gee_alt.demo.ideal import IdealScene, IdealSpec

        return IdealScene(IdealSpec(seed=seed, years=tuple(years), size_px=size_px))
    raise ValueError(f"unknown world {name!r}; choose one of {', '.join(WORLDS)}")


def write_world(
    scene, inputs_dir: Path, truth_dir: Path, years: list[int], *, progress=None, workers: int = 1
) -> TruthSample:
    """Write ``scene``'s inputs (the local layout), its truth and its in-situ table; returns the
    truth sample the scorer needs."""
    if scene.world == "realistic":
        from gee_alt.demo.realistic.scene import write_realistic_inputs

        return write_realistic_inputs(scene, inputs_dir, truth_dir, years, progress=progress, workers=workers)
    from gee_alt.demo.ideal import write_demo_inputs

    return write_demo_inputs(scene, inputs_dir, truth_dir, years, progress=progress, workers=workers)
