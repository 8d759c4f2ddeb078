"""NaN-aware reductions that never warn, safe in threads.

``warnings.catch_warnings`` is process-global state and not thread-safe: in a threaded Dask
worker one task's block can restore the filters while another task is inside its own, and the
silenced warning escapes (or a filter is left behind). These reductions avoid the warning
instead of silencing it; their values equal numpy's ``nanmedian``/``nanmean`` bit for bit.
"""

from __future__ import annotations

import numpy as np


def nanmedian_first_axis(stack: np.ndarray) -> np.ndarray:
    """Median over axis 0 ignoring NaN; NaN where a column has no finite value (no warning).

    ``stack``: ``(n, ...)``, any unit; the result has ``stack.shape[1:]`` and the same unit."""
    stack = np.asarray(stack)
    ok = np.isfinite(stack).any(axis=0)
    out = np.full(stack.shape[1:], np.nan, dtype=np.result_type(stack.dtype, np.float32))
    if ok.any():
        out[ok] = np.nanmedian(stack[:, ok], axis=0)
    return out


def nanmean_first_axis(stack: np.ndarray) -> np.ndarray:
    """Mean over axis 0 ignoring NaN; NaN where a column has no finite value (no warning).

    Same arithmetic as ``np.nanmean`` (NaN replaced by 0, summed, divided by the count)."""
    stack = np.asarray(stack)
    finite = np.isfinite(stack)
    count = finite.sum(axis=0)
    total = np.where(finite, stack, 0).sum(axis=0)
    mean = np.true_divide(total, np.maximum(count, 1), dtype=total.dtype)
    mean[count == 0] = np.nan
    return mean
