"""The demo's synthetic worlds by name: ``realistic`` (the default, the honest yardstick) and
``ideal`` (truth built in the model's image: a fast plumbing check)."""

from __future__ import annotations

from pathlib import Path

from gee_alt.demo.writer import TruthSample
from gee_alt.memory import release_freed_memory

WORLDS = ("realistic", "ideal")
FULL = "full"  # the whole study grid (realistic world)
DEFAULT_WORLD = "realistic"


def make_world(
    name: str,
    *,
    seed: int,
    years: list[int],
    size_px: int | str,
    warming_degc_per_yr: float | None = None,
    tile_px: int | None = None,
):
    """The scene of world ``name`` (``realistic`` or ``ideal``). ``size_px``: the side of a square
    window of the study grid, or ``"full"`` (realistic world only) for the whole study grid.
    ``warming_degc_per_yr`` sets the realistic world's climate trend (default 0.05 °C/yr; the
    ideal world's is fixed). ``tile_px``: the realistic world's generator runs its daily passes
    on tiles of this side (rounded down to whole cloud blocks; the output does not depend on it)."""
    if name == "realistic":
        from gee_alt.demo.realistic.scene import RealisticScene, RealisticSpec

        extra = {} if warming_degc_per_yr is None else {"warming_degc_per_yr": warming_degc_per_yr}
        scene = RealisticScene(RealisticSpec(seed=seed, years=tuple(years), size_px=size_px, **extra))
        if tile_px is not None:
            scene.tile_px = max(scene.block_px, tile_px - tile_px % scene.block_px)
        return scene
    if size_px == FULL:
        raise ValueError("the whole study grid (size 'full') exists only in the realistic world")
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
        from threadpoolctl import threadpool_limits

        from gee_alt.demo.realistic.scene import write_realistic_inputs

        # one BLAS thread, as in the year workers: the generator's products are small (K x pixel
        # basis, 16-day chunks), and idle BLAS threads spinning beside them cost CPU for nothing
        with threadpool_limits(1):
            sample = write_realistic_inputs(scene, inputs_dir, truth_dir, years, progress=progress, workers=workers)
        scene.release()  # scoring needs the grids only: free the statics before the engine runs
        release_freed_memory()  # and give their pages back (~0.5 GB of heap at the full grid)
        return sample
    from gee_alt.demo.ideal import write_demo_inputs

    return write_demo_inputs(scene, inputs_dir, truth_dir, years, progress=progress, workers=workers)
