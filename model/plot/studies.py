"""Figures of scenarios and populations: arms, regimens compared, strata, waterfalls, profiles."""

from __future__ import annotations

import numpy as np

from il2als.plot._common import _CYCLE, _colour
from il2als.results.metrics import PNFH_CUTOFFS, stratum_labels

__all__ = ["plot_scenario", "plot_regimen_comparison", "plot_population", "plot_stratum_biology"]



def plot_scenario(result, title: str = ""):
    """Median and 5-95% bands of six outputs per group; reference arm (placebo) dashed. Returns the Figure."""
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    panels = [("treg_pct_cd4", "Tregs [% of CD4]"), ("ccl2_csf", "CSF CCL2 [pg/mL]"), ("nfl_serum", "serum NfL [pg/mL]"),
              ("mn_reserve", "motor-neuron reserve [%]"), ("alsfrs_r", "ALSFRS-R [points]"), ("survival", "survival [%]")]
    fig, axes = plt.subplots(2, 3, figsize=(14, 8), constrained_layout=True)
    groups = list(dict.fromkeys(g for g, _ in result.curves))
    ref = result.regimens[0].name
    t = result.time
    for (g, arm), vals in result.curves.items():
        c = _colour(g, groups.index(g))
        ls = "--" if arm == ref else "-"
        for ax, (name, label) in zip(axes.flat, panels):
            v = vals[name] * (100 if name == "survival" else 1)
            lo, med, hi = np.percentile(v, [5, 50, 95], axis=0)
            ax.plot(t, med, color=c, ls=ls, lw=1.4)
            if arm != ref or name in ("nfl_serum", "mn_reserve"):
                ax.fill_between(t, lo, hi, color=c, alpha=0.12 if arm != ref else 0.06, lw=0)
            ax.set_title(label, fontsize=10)
    for ax in axes.flat:
        ax.set_xlabel("time [day]")
        ax.grid(alpha=0.25)
    names = stratum_labels(getattr(result, "cutoffs", PNFH_CUTOFFS))
    handles = [Line2D([], [], color=_colour(g, i), lw=2, label=f"{names.get(g, g)} (median, 5-95%)")
               for i, g in enumerate(groups)]
    handles += [Line2D([], [], color="grey", ls="--", label=ref)]
    handles += [Line2D([], [], color="grey", ls="-", label=r.name) for r in result.regimens[1:]]
    fig.legend(handles=handles, loc="outside lower center", ncol=len(handles), frameon=False)
    if title:
        fig.suptitle(title, fontsize=11)
    return fig


def plot_regimen_comparison(result, title: str = ""):
    """Per stratum and regimen: Treg exposure, peak effector activation (the safety ceiling) and the paired
    change in survival and ALSFRS-R slope against placebo. Returns the Figure."""
    import matplotlib.pyplot as plt

    groups = list(dict.fromkeys(r["group"] for r in result.rows))
    regs = [r.name for r in result.regimens[1:]]
    rows = {(r["group"], r["arm"]): r for r in result.rows}
    effs = {(e["group"], e["arm"]): e for e in result.effects}
    panels = [("treg_exposure [%*day] median", "Treg exposure above baseline [%·day]", rows),
              ("effector_peak [1] median", "peak effector/NK activation [fold] (safety)", rows),
              ("delta_survival_end [%] median", "survival at end vs placebo [percentage points]", effs),
              ("delta_alsfrs_r_slope [points/month] median", "ALSFRS-R slope vs placebo [points/month]", effs)]
    fig, axes = plt.subplots(1, 4, figsize=(17, 4.8), constrained_layout=True)
    w = 0.8 / max(1, len(groups))
    x = np.arange(len(regs))
    for ax, (key, label, table) in zip(axes, panels):
        for i, g in enumerate(groups):
            get = lambda r, q: table.get((g, r), {}).get(key.replace(" median", f" {q}"), np.nan)  # noqa: E731
            vals = np.array([get(r, "median") for r in regs])
            lo, hi = np.array([get(r, "p05") for r in regs]), np.array([get(r, "p95") for r in regs])
            xs = x + (i - (len(groups) - 1) / 2) * w
            err = np.vstack([vals - lo, hi - vals])
            if "effector" in key:  # a ratio near 1: points on an axis around 1, not bars from 0 that hide 1.05 vs 1.12
                ax.errorbar(xs, vals, yerr=err, fmt="o", ms=4, capsize=2, lw=0.8, label=g, color=_CYCLE[i % len(_CYCLE)])
            else:
                ax.bar(xs, vals, w, label=g, color=_CYCLE[i % len(_CYCLE)])
                ax.errorbar(xs, vals, yerr=err, fmt="none", ecolor="k", elinewidth=0.7, capsize=1.5, alpha=0.6)
        ax.set_xticks(x, regs, rotation=35, ha="right", fontsize=8)
        ax.set_title(label, fontsize=9)
        ax.grid(alpha=0.25, axis="y")
        if "effector" in key:
            ax.axhline(1.0, color="grey", lw=0.8)
        else:
            ax.axhline(0.0, color="k", lw=0.6)
    axes[0].legend(title="CSF-pNfH stratum (whiskers: 5-95% of patients)", fontsize=8, title_fontsize=8, loc="upper left")
    if title:
        fig.suptitle(title, fontsize=11)
    return fig


def plot_population(slope, pnfh, nfl_serum, age, cutoffs=PNFH_CUTOFFS, targets=None, title: str = ""):
    """Distributions of a virtual population: ALSFRS-R slope, baseline CSF pNfH (log, with strata cut-offs),
    serum NfL and age; published targets annotated. Returns the Figure."""
    import matplotlib.pyplot as plt

    targets = targets or {}
    fig, axes = plt.subplots(1, 4, figsize=(16, 4), constrained_layout=True)
    a = axes[0]
    a.hist(slope, bins=40, color="#1f77b4", alpha=0.8)
    a.axvline(np.mean(slope), color="k", lw=1.5, label=f"mean {np.mean(slope):.2f}")
    if "slope" in targets:
        a.axvline(targets["slope"], color="#d62728", ls="--", lw=1.5, label=f"PRO-ACT mean {targets['slope']:.2f}")
    a.set_xlabel("ALSFRS-R slope on placebo, first year [points/month]")
    a.legend(fontsize=8)
    a = axes[1]
    bins = np.logspace(np.log10(max(pnfh.min(), 50)), np.log10(pnfh.max()), 40)
    a.hist(pnfh, bins=bins, color="#2ca02c", alpha=0.8)
    a.set_xscale("log")
    for c in cutoffs:
        a.axvline(c, color="k", ls="--", lw=1)
    shares = [np.mean(pnfh < cutoffs[0]), np.mean((pnfh >= cutoffs[0]) & (pnfh <= cutoffs[1])), np.mean(pnfh > cutoffs[1])]
    txt = "model " + " / ".join(f"{100 * x:.0f}%" for x in shares)
    if "shares" in targets:
        txt += "\nMIROCALS " + " / ".join(f"{100 * x:.0f}%" for x in targets["shares"])
    a.text(0.02, 0.97, txt, transform=a.transAxes, va="top", fontsize=8)
    a.set_xlabel(f"baseline CSF pNfH [pg/mL] (strata at {cutoffs[0]:g}, {cutoffs[1]:g})")
    axes[2].hist(nfl_serum, bins=40, color="#9467bd", alpha=0.8)
    axes[2].set_xlabel("baseline serum NfL [pg/mL]")
    axes[3].hist(age, bins=30, color="#8c564b", alpha=0.8)
    axes[3].set_xlabel("age at randomisation [year]")
    for ax in axes:
        ax.set_ylabel("patients")
        ax.grid(alpha=0.25)
    if title:
        fig.suptitle(title, fontsize=11)
    return fig


def plot_stratum_biology(biology, effect=None, title: str = ""):
    """Per CSF-pNfH stratum: how the motor-neuron loss splits (Treg-suppressible microglial, Treg-refractory,
    cell-autonomous) and the share IL-2 could reach; with ``effect`` (an ExpectedEffect), the paired expected
    hazard ratio. Returns the Figure."""
    import matplotlib.pyplot as plt

    strata = list(biology.strata)
    labels = stratum_labels(biology.cutoffs)
    v = biology.values
    ncol = 2 if effect is not None else 1
    fig, axes = plt.subplots(1, ncol, figsize=(5.2 * ncol, 4.2), constrained_layout=True, squeeze=False)
    ax = axes[0, 0]
    x = np.arange(len(strata))
    bottom = np.zeros(len(strata))
    for key, lab, col in (("microglial_share", "microglial (Treg-suppressible)", "#1f77b4"),
                          ("refractory_share", "Treg-refractory inflammatory", "#ff7f0e"),
                          ("autonomous_share", "cell-autonomous", "#7f7f7f")):
        h = np.array([v[s][key] for s in strata])
        ax.bar(x, h, bottom=bottom, color=col, label=lab, width=0.6)
        bottom += h
    reach = np.array([v[s]["reachable_share"] for s in strata])
    ax.plot(x, reach, "kD", label="reachable by IL-2 (function at ceiling)")
    ax.set_xticks(x, [f"{labels[s]}\nn = {v[s]['n']}\nloss {v[s]['loss_rate']:.1f} %/month" for s in strata],
                  fontsize=8)
    ax.set_xlabel("baseline CSF pNfH stratum")
    ax.set_ylabel("share of the motor-neuron loss rate [1] (medians)")
    ax.set_ylim(0, 1.05)
    ax.legend(fontsize=7, loc="upper right")
    if effect is not None:
        ax2 = axes[0, 1]
        groups = ["overall", *strata]
        hr = [effect.hr[g] for g in groups]
        ax2.barh(np.arange(len(groups))[::-1], hr, color="#2ca02c", height=0.5)
        ax2.axvline(1.0, color="k", lw=0.8)
        ax2.set_yticks(np.arange(len(groups))[::-1], ["overall"] + [labels[s] for s in strata], fontsize=8)
        for i, h in zip(np.arange(len(groups))[::-1], hr):
            if np.isfinite(h):
                ax2.text(h, i, f" {h:.2f}", va="center", fontsize=8)
        ax2.set_xlim(0, 1.2)
        ax2.set_xlabel("expected hazard ratio, IL-2 vs placebo [1] (paired arms)")
        ax2.set_title(f"{effect.regimen}, {effect.n} patients per arm, {effect.follow_up_days:g} days", fontsize=9)
    if title:
        fig.suptitle(title, fontsize=10)
    return fig
