"""Where a synthetic world sits: a window of the real study grid and the MODIS grids over it."""

from __future__ import annotations

from dataclasses import dataclass

from gee_alt.grid import DATONG_BBOX, MODIS_1KM, MODIS_250M, Grid, grid_from_bbox, lonlat_to_rowcol, modis_grid, subgrid


@dataclass(frozen=True)
class DemoWindow:
    """The 30 m window (``grid``), the window padded by ``pad_px`` on each side (``outer_grid``,
    so coarse pixels at the window's edge see real ground), the MODIS 250 m and 1 km grids over
    the window, and the window's slices in the outer grid (``inner``)."""

    grid: Grid
    outer_grid: Grid
    ndvi_grid: Grid
    lst_grid: Grid
    inner: tuple[slice, slice]


def demo_window(center_lonlat: tuple[float, float], size_px: int, pad_px: int) -> DemoWindow:
    """A ``size_px`` square window of the study grid (UTM, 30 m) centred at ``center_lonlat`` (degrees)."""
    study = grid_from_bbox(DATONG_BBOX, 30.0)
    row, col = lonlat_to_rowcol(study, [center_lonlat[0]], [center_lonlat[1]])
    r0, c0 = int(row[0]) - size_px // 2, int(col[0]) - size_px // 2
    p = pad_px
    grid = subgrid(study, c0, r0, size_px, size_px)
    return DemoWindow(
        grid,
        subgrid(study, c0 - p, r0 - p, size_px + 2 * p, size_px + 2 * p),
        modis_grid(grid, MODIS_250M),
        modis_grid(grid, MODIS_1KM),
        (slice(p, p + size_px), slice(p, p + size_px)),
    )


def study_window(pad_px: int, block_px: int) -> DemoWindow:
    """The whole study grid (UTM, 30 m) as the window. The outer grid is padded by ``pad_px`` on
    the top and left and by at least ``pad_px`` on the bottom and right, so that its sides are
    whole ``block_px`` blocks and the window starts on a block edge."""
    study = grid_from_bbox(DATONG_BBOX, 30.0)
    width, height = study["shape_2d"]
    p = pad_px
    outer_w = -(-(width + 2 * p) // block_px) * block_px
    outer_h = -(-(height + 2 * p) // block_px) * block_px
    return DemoWindow(
        study,
        subgrid(study, -p, -p, outer_w, outer_h),
        modis_grid(study, MODIS_250M),
        modis_grid(study, MODIS_1KM),
        (slice(p, p + height), slice(p, p + width)),
    )
