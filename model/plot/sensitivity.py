"""Figures of sensitivity analyses: Sobol indices, tornado."""

from __future__ import annotations

import numpy as np

from il2als.plot._common import _colour

__all__ = ["plot_sobol", "plot_tornado"]



def plot_sobol(results, title: str = ""):
    """Sobol first-order (S1, solid) and total-order (ST, hatched) indices with 95% intervals: one panel per
    output, profiles side by side. ``results`` are GlobalResult objects (method sobol). Returns the Figure."""
    import matplotlib.pyplot as plt

    from il2als.studies.sensitivity import OUTPUTS

    outputs = results[0].outputs
    names = results[0].space.names
    fig, axes = plt.subplots(1, len(outputs), figsize=(4.2 * len(outputs), 0.38 * len(names) + 2.2),
                             constrained_layout=True, sharey=True, squeeze=False)
    y = np.arange(len(names))
    h = 0.8 / len(results)
    for ax, o in zip(axes[0], outputs):
        for r_i, res in enumerate(results):
            c = _colour(res.profile, r_i)
            ix = res.indices[o]
            off = y - 0.4 + h * (r_i + 0.5)
            ax.barh(off, ix["ST"], height=h, color=c, alpha=0.35, hatch="//", edgecolor=c,
                    xerr=ix["ST_conf"], ecolor="0.4", label=f"{res.profile}: total (ST)")
            ax.barh(off, np.clip(ix["S1"], 0, None), height=h * 0.55, color=c, xerr=ix["S1_conf"], ecolor="k",
                    label=f"{res.profile}: first order (S1)")
        ax.set_yticks(y, names)
        ax.invert_yaxis()
        ax.set_xlim(0, 1.05)
        ax.set_xlabel("Sobol index")
        ax.set_title(f"{o} [{OUTPUTS[o][0]}]", fontsize=10)
        ax.grid(axis="x", alpha=0.3)
    axes[0][0].legend(fontsize=7, loc="lower right")
    if title:
        fig.suptitle(title)
    return fig


def plot_tornado(results, top: int = 12, title: str = ""):
    """Local normalised sensitivities (d ln y / d ln p) as tornado bars, the ``top`` largest per output, profiles
    side by side. ``results`` are LocalResult objects. Returns the Figure."""
    import matplotlib.pyplot as plt

    from il2als.studies.sensitivity import OUTPUTS

    outputs = results[0].outputs
    fig, axes = plt.subplots(1, len(outputs), figsize=(4.6 * len(outputs), 0.36 * top + 2.2), constrained_layout=True,
                             squeeze=False)
    for ax, o in zip(axes[0], outputs):
        k = results[0].outputs.index(o)
        score = np.max([np.abs(r.S[:, k]) for r in results], axis=0)
        order = np.argsort(-score)[:top]
        y = np.arange(len(order))
        h = 0.8 / len(results)
        for r_i, r in enumerate(results):
            ax.barh(y - 0.4 + h * (r_i + 0.5), r.S[order, k], height=h, color=_colour(r.profile, r_i), label=r.profile)
        ax.set_yticks(y, [results[0].names[i] for i in order])
        ax.invert_yaxis()
        ax.axvline(0, color="k", lw=0.8)
        ax.set_xlabel("normalised sensitivity d ln|y| / d ln p")
        ax.set_title(f"{o} [{OUTPUTS[o][0]}]", fontsize=10)
        ax.grid(axis="x", alpha=0.3)
    axes[0][0].legend(fontsize=8)
    if title:
        fig.suptitle(title)
    return fig
