"""Shared figure helpers: colours, saving, axes creation."""

from __future__ import annotations

import numpy as np

__all__ = ["PROFILE_COLOURS", "save_figure"]



PROFILE_COLOURS = {"slow": "#1f77b4", "fast": "#d62728", "default": "#2ca02c"}


_CYCLE = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"]


def save_figure(fig_or_ax, path, dpi: int = 110) -> None:
    """Save a Figure (or an Axes' figure) as PNG and close it."""
    import matplotlib.pyplot as plt

    fig = fig_or_ax if hasattr(fig_or_ax, "savefig") else fig_or_ax.get_figure()
    fig.savefig(path, dpi=dpi)
    plt.close(fig)


def _colour(label: str, i: int) -> str:
    return PROFILE_COLOURS.get(label, _CYCLE[i % len(_CYCLE)])


# -- population-fit diagnostics: result (rows) and ax=None in, Axes out ------------------------------------------
def _axes(ax, size=(4.5, 4.0)):
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=size, constrained_layout=True)
    return ax


def _wants_log(v) -> bool:
    """Log axes for positive values spanning more than a decade (a narrower range reads better linear)."""
    v = np.asarray(v, float)
    v = v[np.isfinite(v)]
    return bool(len(v) and v.min() > 0 and v.max() / v.min() > 10)


def _rows_of(rows: list[dict], observable: str) -> list[dict]:
    sel = [r for r in rows if r["observable"] == observable]
    if not sel:
        raise ValueError(f"no rows for observable '{observable}'")
    return sel
