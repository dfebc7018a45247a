"""Figures of single-patient trajectories."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from il2als.plot._common import _colour

if TYPE_CHECKING:
    from il2als.results.trajectory import Trajectory

__all__ = ["plot_trajectories", "plot_trajectory"]


def plot_trajectories(runs: Sequence[tuple[str, str, "Trajectory"]], title: str = "", pk_window: float = 35.0):
    """Six panels: doses and plasma IL-2 (first ``pk_window`` days), Tregs, CCL2, neurofilaments,
    motor-neuron reserve, ALSFRS-R and survival.

    ``runs`` holds ``(profile, arm, trajectory)``; profiles get colours, the ``placebo`` arm is dashed.
    Returns the Figure.
    """
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    fig, axes = plt.subplots(3, 2, figsize=(12, 11), constrained_layout=True)
    (a_pk, a_treg), (a_ccl2, a_nf), (a_mn, a_fun) = axes
    profiles = list(dict.fromkeys(p for p, _, _ in runs))
    arms = list(dict.fromkeys(a for _, a, _ in runs))
    a_surv = a_fun.twinx()
    for k, (profile, arm, tr) in enumerate(runs):
        c = _colour(profile, profiles.index(profile))
        ls = "--" if arm in ("placebo", "none") else "-"
        t = tr.time
        if arm not in ("placebo", "none"):
            w = t <= pk_window
            a_pk.plot(t[w], tr["il2_plasma"][w], color=c, ls=ls, lw=1.2)
        a_treg.plot(t, tr["treg_pct_cd4"], color=c, ls=ls, lw=1.2)
        a_ccl2.plot(t, tr["ccl2_csf"], color=c, ls=ls, lw=1.2)
        a_ccl2.plot(t, tr["ccl2_plasma"], color=c, ls=ls, lw=1.0, alpha=0.55)
        a_nf.plot(t, tr["nfl_csf"], color=c, ls=ls, lw=1.2)
        a_nf.plot(t, tr["pnfh_csf"], color=c, ls=ls, lw=1.0, alpha=0.7)
        a_nf.plot(t, tr["nfl_serum"], color=c, ls=ls, lw=1.0, alpha=0.45)
        if k == 0:  # name each line once, at its right end (colours are taken by the profiles)
            for name, text in (("nfl_csf", "CSF NfL"), ("pnfh_csf", "CSF pNfH"), ("nfl_serum", "serum NfL")):
                a_nf.annotate(text, (t[-1], tr[name][-1]), xytext=(3, 0), textcoords="offset points", fontsize=7,
                              va="center", color=c)
            for name, text in (("ccl2_csf", "CSF"), ("ccl2_plasma", "plasma")):
                a_ccl2.annotate(text, (t[-1], tr[name][-1]), xytext=(3, 0), textcoords="offset points", fontsize=7,
                                va="center", color=c)
        a_mn.plot(t, tr["mn_reserve"], color=c, ls=ls, lw=1.2)
        a_fun.plot(t, tr["alsfrs_r"], color=c, ls=ls, lw=1.2)
        a_surv.plot(t, 100 * tr["survival"], color=c, ls=ls, lw=0.9, alpha=0.5)
    dosed = [tr for _, a, tr in runs if a not in ("placebo", "none") and len(tr.dose_times)]
    if dosed:
        tr = dosed[0]
        dt = tr.dose_times[tr.dose_times <= pk_window]
        ymax = max((r["il2_plasma"].max() for _, a, r in runs if a not in ("placebo", "none")), default=1.0)
        a_pk.plot(dt, np.full(len(dt), ymax * 1.08), "v", color="k", ms=5, label="SC dose")
        a_pk.legend(loc="upper right", fontsize=8, frameon=False)
        n_all = len(tr.dose_times)
        a_pk.set_title(f"Doses and plasma IL-2 (first {pk_window:g} days; {n_all} doses in all)", fontsize=10)
    else:
        a_pk.set_title("Doses and plasma IL-2 (no doses)", fontsize=10)
    a_pk.set_ylabel("il2_plasma [IU/mL]")
    a_treg.set_title("Regulatory T cells", fontsize=10)
    a_treg.set_ylabel("treg_pct_cd4 [%]")
    a_ccl2.set_title("CCL2 in CSF and plasma (faint)", fontsize=10)
    a_ccl2.set_ylabel("ccl2_csf, ccl2_plasma [pg/mL]")
    a_nf.set_title("Neurofilaments (each line named at its end)", fontsize=10)
    a_nf.set_ylabel("nfl_csf, pnfh_csf, nfl_serum [pg/mL], log scale")
    a_nf.margins(x=0.12)
    a_ccl2.margins(x=0.1)
    a_nf.set_yscale("log")
    a_mn.set_title("Motor-neuron reserve", fontsize=10)
    a_mn.set_ylabel("mn_reserve [%]")
    a_fun.set_title("ALSFRS-R (left) and survival (right, faint)", fontsize=10)
    a_fun.set_ylabel("alsfrs_r [points]")
    a_fun.set_ylim(0, 48)
    a_surv.set_ylabel("survival [%]")
    a_surv.set_ylim(0, 102)
    for ax in axes.flat:
        ax.set_xlabel("time [day]")
        ax.grid(alpha=0.25)
    handles = [Line2D([], [], color=_colour(p, i), lw=2, label=p) for i, p in enumerate(profiles)]
    handles += [Line2D([], [], color="grey", ls="--" if a in ("placebo", "none") else "-", label=a) for a in arms]
    fig.legend(handles=handles, loc="outside lower center", ncol=len(handles), frameon=False)
    if title:
        fig.suptitle(title, fontsize=11)
    return fig


def plot_trajectory(tr: "Trajectory", names: Sequence[str] = ("treg_pct_cd4", "ccl2_plasma", "nfl_serum", "alsfrs_r"),
                    ax=None, dose_ticks: bool = True):
    """One panel per output of ``names`` against days, each axis labelled ``name [unit]``; dose times as ticks.

    ``ax``: an Axes (one output) or a sequence of as many Axes as ``names``; created when None. Returns the Axes
    (an array of them when there are several outputs)."""
    import matplotlib.pyplot as plt

    for n in names:
        tr.unit(n)  # unknown names: one line with a suggestion
    if ax is None:
        fig, axes = plt.subplots(len(names), 1, figsize=(6.5, 2.2 * len(names) + 0.4), sharex=True,
                                 constrained_layout=True, squeeze=False)
        axes = axes[:, 0]
    else:
        axes = np.atleast_1d(ax)
        if len(axes) != len(names):
            from il2als.errors import Il2alsError

            raise Il2alsError(f"{len(axes)} Axes for {len(names)} outputs; give one Axes per output")
    for a, n in zip(axes, names):
        a.plot(tr.time, tr[n], lw=1.2, color="#1f77b4")
        a.set_ylabel(tr.header(n))
        if dose_ticks and len(tr.dose_times):
            a.plot(tr.dose_times, np.full(len(tr.dose_times), a.get_ylim()[0]), "|", color="0.4", ms=6)
    axes[-1].set_xlabel("time [day]")
    title = f"{tr.params.name if tr.params is not None else ''}, {tr.regimen.name if tr.regimen is not None else ''}"
    axes[0].set_title(title.strip(", "), fontsize=9)
    return axes[0] if len(axes) == 1 else axes

