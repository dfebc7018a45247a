"""Figures. matplotlib is imported inside the functions only; each returns the Figure (or Axes it drew on)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from .trajectory import Trajectory

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


def plot_trajectories(runs: Sequence[tuple[str, str, "Trajectory"]], title: str = "", pk_window: float = 35.0):
    """Six panels: doses and plasma IL-2 (first ``pk_window`` days), Tregs, CCL2, neurofilaments,
    motor-neuron reserve, ALSFRS-R and survival.

    ``runs`` holds ``(profile, arm, trajectory)``; profiles get colours, the ``placebo`` arm is dashed.
    Returns the Figure.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    fig, axes = plt.subplots(3, 2, figsize=(12, 11), constrained_layout=True)
    (a_pk, a_treg), (a_ccl2, a_nf), (a_mn, a_fun) = axes
    profiles = list(dict.fromkeys(p for p, _, _ in runs))
    arms = list(dict.fromkeys(a for _, a, _ in runs))
    a_surv = a_fun.twinx()
    for profile, arm, tr in runs:
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
    a_ccl2.set_title("CCL2: CSF (solid) and plasma (faint)", fontsize=10)
    a_ccl2.set_ylabel("ccl2 [pg/mL]")
    a_nf.set_title("Neurofilaments: CSF NfL, CSF pNfH, serum NfL (faintest)", fontsize=10)
    a_nf.set_ylabel("[pg/mL] (log)")
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


def plot_scenario(result, title: str = ""):
    """Median and 5-95% bands of six outputs per group; reference arm (placebo) dashed. Returns the Figure."""
    import matplotlib

    matplotlib.use("Agg", force=False)
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
    handles = [Line2D([], [], color=_colour(g, i), lw=2, label=f"{g} (median, 5-95%)") for i, g in enumerate(groups)]
    handles += [Line2D([], [], color="grey", ls="--", label=ref)]
    handles += [Line2D([], [], color="grey", ls="-", label=r.name) for r in result.regimens[1:]]
    fig.legend(handles=handles, loc="outside lower center", ncol=len(handles), frameon=False)
    if title:
        fig.suptitle(title, fontsize=11)
    return fig


def plot_km(result, title: str = ""):
    """Kaplan-Meier curves by arm, overall and per CSF-pNfH stratum, pooled over replicates (lifelines)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    from lifelines import KaplanMeierFitter

    from .trial import STRATA

    reps = result.replicates
    arm = np.concatenate([r.arm for r in reps])
    st = np.concatenate([r.stratum for r in reps])
    T = np.concatenate([r.time for r in reps])
    E = np.concatenate([r.event for r in reps])
    fig, axes = plt.subplots(2, 2, figsize=(11, 8), constrained_layout=True, sharex=True, sharey=True)
    cuts = result.design.pnfh_cutoffs
    labels = {"overall": "all patients", "very_low": f"CSF pNfH < {cuts[0]:g} pg/mL",
              "low": f"CSF pNfH {cuts[0]:g}-{cuts[1]:g} pg/mL", "high": f"CSF pNfH > {cuts[1]:g} pg/mL"}
    for ax, key in zip(axes.flat, ("overall",) + STRATA):
        sel = np.ones_like(arm, bool) if key == "overall" else st == STRATA.index(key)
        for a, name, c in ((0, "placebo", "#555555"), (1, result.regimen.name, "#d62728")):
            k = sel & (arm == a)
            if k.sum() == 0:
                continue
            kmf = KaplanMeierFitter().fit(T[k], E[k], label=f"{name} (n={k.sum()})")
            kmf.plot_survival_function(ax=ax, color=c, ci_show=True)
        ax.set_title(f"{labels[key]} — pooled over {len(reps)} virtual trial(s)", fontsize=10)
        ax.set_xlabel("time since randomisation [day]")
        ax.set_ylabel("survival [1]")
        ax.set_ylim(0, 1.02)
        ax.grid(alpha=0.25)
    if title:
        fig.suptitle(title, fontsize=11)
    return fig


def plot_forest(summary: dict, ax=None):
    """Hazard ratios (IL-2 vs placebo): median across replicates and 2.5-97.5% range, with the paired expected
    HR (open diamond) when the summary carries it; returns the Axes."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    expected = {"overall": summary.get("expected_hr_overall"), **(summary.get("expected_hr_by_stratum") or {})}
    rows = [("overall", summary["hr_overall"], expected["overall"]),
            ("overall, adjusted", summary["hr_overall_adjusted"], None)]
    rows += [(f"stratum {k} (n~{v['n_median']:.0f})", v, expected.get(k)) for k, v in summary["hr_by_stratum"].items()]
    if ax is None:
        _, ax = plt.subplots(figsize=(8, 3.8), constrained_layout=True)
    for i, (label, b, e) in enumerate(rows):
        y = len(rows) - 1 - i
        m, (lo, hi) = b["median"], b["ci95"]
        if np.isfinite(m):
            ax.plot([lo, hi], [y, y], color="k", lw=1.5)
            ax.plot([m], [y], "s", color="#d62728", ms=7, label="median over replicates" if i == 0 else None)
            if e is not None and np.isfinite(e):
                ax.plot([e], [y + 0.18], "D", mfc="none", color="#1f77b4", ms=7,
                        label="expected (paired arms)" if i == 0 else None)
        else:
            ax.text(1.0, y, "not estimable", ha="center", va="center", fontsize=8)
    ax.axvline(1.0, color="grey", ls="--", lw=1)
    ax.set_yticks(range(len(rows)), [r[0] for r in rows][::-1])
    ax.set_xscale("log")
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter

    ax.xaxis.set_major_locator(FixedLocator([0.125, 0.25, 0.5, 1, 2, 4, 8]))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{x:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("hazard ratio, IL-2LD vs placebo (median and 2.5-97.5% across replicates)")
    ps = f", parameter set '{summary['parameter_set']}'" if "parameter_set" in summary else ""
    ax.set_title(f"{summary['replicates']} virtual trials, {summary['n_per_arm']} per arm, seed {summary['seed']}{ps}", fontsize=10)
    ax.grid(alpha=0.25, axis="x")
    if rows and rows[0][2] is not None:
        ax.legend(fontsize=8, loc="upper right")
    return ax


def plot_regimen_comparison(result, title: str = ""):
    """Per stratum and regimen: Treg exposure, peak effector activation (the safety ceiling) and the paired
    change in survival and ALSFRS-R slope against placebo. Returns the Figure."""
    import matplotlib

    matplotlib.use("Agg", force=False)
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


def plot_power(ns, power, target: float = 0.8, ax=None, label: str = "", ci=None, alpha: float | None = None):
    """Power against patients per arm, with its Monte-Carlo 95% interval (``ci``: (low, high) per size) and the
    target line; returns the Axes."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(7, 4.5), constrained_layout=True)
    ax.plot(ns, power, "o-", color="#d62728", label=label or None)
    if ci is not None:
        import numpy as np

        lo, hi = np.asarray(ci, float).T
        ax.fill_between(ns, lo, hi, color="#d62728", alpha=0.15, lw=0, label="95% Monte-Carlo interval")
    ax.axhline(target, color="grey", ls="--", lw=1)
    ax.text(ns[0], target + 0.02, f"{target:.0%} power", fontsize=8, color="grey")
    ax.set_ylim(0, 1)
    ax.set_xlabel("patients per arm")
    a = f"{alpha:g}" if alpha is not None else "alpha"
    ax.set_ylabel(f"power: log-rank p < {a} and HR < 1 [1]")
    ax.grid(alpha=0.25)
    if label or ci is not None:
        ax.legend(fontsize=8)
    return ax


def plot_population(slope, pnfh, nfl_serum, age, cutoffs=(750.0, 3700.0), targets=None, title: str = ""):
    """Distributions of a virtual population: ALSFRS-R slope, baseline CSF pNfH (log, with strata cut-offs),
    serum NfL and age; published targets annotated. Returns the Figure."""
    import matplotlib

    matplotlib.use("Agg", force=False)
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
    a.set_xlabel("baseline CSF pNfH [pg/mL] (strata at 750, 3700)")
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


def plot_check(rows: list[dict], title: str = "", ax=None):
    """Residual of every target ((model - target) / tolerance), pass band shaded; returns the Axes."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(9, 0.28 * len(rows) + 1.5), constrained_layout=True)
    y = np.arange(len(rows))[::-1]
    r = np.array([x["residual"] for x in rows], float)
    colours = ["#2ca02c" if x["pass"] else "#d62728" for x in rows]
    # the rows say their own pass rule (targets: |r| <= 1 tolerance; data: |r| <= 2 error sd): one band, one rule
    limits = {float(x.get("pass_limit", 1.0)) for x in rows}
    if len(limits) != 1:
        raise ValueError("rows mix pass rules; plot them separately")
    lim = limits.pop()
    ax.axvspan(-lim, lim, color="#2ca02c", alpha=0.1)
    ax.barh(y, np.clip(np.nan_to_num(r, nan=0.0), -5, 5), color=colours)
    ax.set_yticks(y, [x["id"] for x in rows], fontsize=8)
    ax.axvline(0, color="k", lw=0.8)
    ax.set_xlim(-5, 5)
    ax.set_xlabel(f"residual (model - target) / {rows[0].get('residual_unit', 'tolerance') if rows else 'tolerance'}"
                  f"  (|r| <= {lim:g} passes; clipped at 5)")
    n = sum(x["pass"] for x in rows)
    ax.set_title((title + "\n" if title else "") + f"{n} of {len(rows)} targets within tolerance", fontsize=10)
    ax.grid(alpha=0.25, axis="x")
    return ax


def plot_waterfall(result, ax=None):
    """Final cost of every start, sorted (a waterfall); returns the Axes."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(6, 4), constrained_layout=True)
    costs = np.sort([s.cost for s in result.starts])
    conv = [s.converged for s in sorted(result.starts, key=lambda s: s.cost)]
    ax.plot(np.arange(1, len(costs) + 1), costs, "-", color="grey")
    ax.scatter(np.arange(1, len(costs) + 1), costs, c=["#2ca02c" if c else "#d62728" for c in conv], zorder=3)
    ax.set_yscale("log")
    ax.set_xlabel("start (sorted by final cost)")
    ax.set_ylabel("final cost 0.5·Σ residual²")
    ax.set_title("multi-start waterfall (green: converged)", fontsize=10)
    ax.grid(alpha=0.25)
    return ax


def plot_profiles(result):
    """Profile likelihoods (Δχ² against each parameter) with the 95% threshold; returns the Figure."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    from .fit import CHI2_95

    names = list(result.profiles)
    ncol = min(4, len(names))
    nrow = int(np.ceil(len(names) / ncol))
    fig, axes = plt.subplots(nrow, ncol, figsize=(3.6 * ncol, 2.8 * nrow), constrained_layout=True, squeeze=False)
    for ax, name in zip(axes.flat, names):
        grid, costs = result.profiles[name]
        f = result.problem.free[result.problem.names.index(name)]
        ax.plot(f.from_scale(np.asarray(grid)), 2 * (np.asarray(costs) - result.cost), "o-", ms=3)
        ax.axhline(CHI2_95, color="#d62728", ls="--", lw=1)
        ax.axvline(float(f.from_scale(result.x[result.problem.names.index(name)])), color="grey", lw=0.8)
        ax.set_xscale("log" if f.scale == "log" else "linear")
        ax.set_title(f"{name} [{f.unit}]", fontsize=8)
        ax.set_ylabel("Δχ²", fontsize=8)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[len(names):]:
        ax.axis("off")
    return fig


def plot_population_fit(res, data, title: str = "", max_ids: int = 30):
    """One panel per observed observable: each ID's simulated course (line) and its observations (dots),
    for the first ``max_ids`` IDs. ``res`` is a PopulationResult over ``data.ids``. Returns the Figure."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    names = list(dict.fromkeys(o.observable for o in data.observations))
    fig, axes = plt.subplots(1, len(names), figsize=(5.5 * len(names), 4.2), constrained_layout=True, squeeze=False)
    ids = data.ids[:max_ids]
    cmap = plt.get_cmap("viridis")
    for ax, name in zip(axes[0], names):
        for j, pid in enumerate(ids):
            c = cmap(j / max(1, len(ids) - 1))
            ax.plot(res.time, res[name][data.ids.index(pid)], color=c, lw=0.9, alpha=0.8)
            pts = [(o.time, o.value) for o in data.observations if o.id == pid and o.observable == name]
            if pts:
                ax.plot(*zip(*pts), "o", color=c, ms=3)
        ax.set_xlabel("time [day]")
        ax.set_ylabel(res.header(name))
        ax.set_title(f"{name}: lines model, dots data")
    if title:
        fig.suptitle(title + (f" (first {max_ids} IDs)" if len(data.ids) > max_ids else ""))
    return fig


def plot_sobol(results, title: str = ""):
    """Sobol first-order (S1, solid) and total-order (ST, hatched) indices with 95% intervals: one panel per
    output, profiles side by side. ``results`` are GlobalResult objects (method sobol). Returns the Figure."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    from .sensitivity import OUTPUTS

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
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    from .sensitivity import OUTPUTS

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


def plot_stratum_biology(biology, effect=None, title: str = ""):
    """Per CSF-pNfH stratum: how the motor-neuron loss splits (Treg-suppressible microglial, Treg-refractory,
    cell-autonomous) and the share IL-2 could reach; with ``effect`` (an ExpectedEffect), the paired expected
    hazard ratio. Returns the Figure."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    strata = list(biology.strata)
    labels = {"very_low": "< 750", "low": "750-3700", "high": "> 3700"}
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
    ax.set_xticks(x, [f"{labels[s]} pg/mL\nn = {v[s]['n']}\nloss {v[s]['loss_rate']:.1f} %/month" for s in strata],
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
        ax2.set_yticks(np.arange(len(groups))[::-1], ["overall"] + [f"{labels[s]} pg/mL" for s in strata], fontsize=8)
        for i, h in zip(np.arange(len(groups))[::-1], hr):
            if np.isfinite(h):
                ax2.text(h, i, f" {h:.2f}", va="center", fontsize=8)
        ax2.set_xlim(0, 1.2)
        ax2.set_xlabel("expected hazard ratio, IL-2 vs placebo [1] (paired arms)")
        ax2.set_title(f"{effect.regimen}, {effect.n} patients per arm, {effect.follow_up_days:g} days", fontsize=9)
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def plot_schedule_search(evaluations: list[dict], reference: tuple[float, float], best: tuple[float, float],
                         title: str = ""):
    """Every schedule the optimiser evaluated: median peak effector activation (x) against the cumulative-hazard
    ratio in the search cohort (y), coloured by total dose; the reference regimen's ceiling as a line. Returns
    the Figure."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5), constrained_layout=True)
    ok = [e for e in evaluations if np.isfinite(e["hazard_ratio [1]"])]
    x = np.array([e["effector_peak [1]"] for e in ok])
    y = np.array([e["hazard_ratio [1]"] for e in ok])
    tot = np.array([e["total_dose [MIU]"] for e in ok])
    feas = np.array([e["feasible"] for e in ok], bool)
    ax.scatter(x[~feas], y[~feas], s=10, color="0.75", label="outside the constraints")
    sc = ax.scatter(x[feas], y[feas], s=14, c=tot[feas], cmap="viridis", label="within the constraints")
    fig.colorbar(sc, ax=ax, label="total IL-2 over 18 months [MIU]")
    ax.axvline(reference[0], color="#d62728", ls="--", lw=1, label="ceiling: MIROCALS median peak")
    ax.plot(*reference, "*", color="#d62728", ms=14, label="MIROCALS schedule")
    ax.plot(*best, "P", color="k", ms=11, label="optimised schedule")
    ax.set_xlabel("median peak effector activation (1 = baseline) [1]")
    ax.set_ylabel("cumulative-hazard ratio at 640 days, IL-2 vs placebo [1]")
    ax.set_xlim(min(x.min(), reference[0]) - 0.005, min(x.max(), reference[0] + 3 * (reference[0] - 1)) + 0.005)
    ax.grid(alpha=0.25)
    ax.legend(fontsize=8, loc="upper right")
    if title:
        ax.set_title(title, fontsize=9)
    return fig


def plot_sample_size(rows: list[dict], chosen: str, title: str = ""):
    """Patients for 80% and 90% power per design (bars: the chosen parameter set; dots: the other sets, for
    sensitivity), log scale. Designs without a benefit to detect are marked. Returns the Figure."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    designs = list(dict.fromkeys(r["design"] for r in rows))
    sets = list(dict.fromkeys(r["parameter_set"] for r in rows))
    fig, axes = plt.subplots(1, 2, figsize=(13, 0.5 * len(designs) + 2.5), sharey=True, constrained_layout=True)
    for ax, key in zip(axes, ("patients_80", "patients_90")):
        for k, dname in enumerate(designs):
            y = len(designs) - 1 - k
            for j, sname in enumerate(sets):
                r = next((r for r in rows if r["design"] == dname and r["parameter_set"] == sname), None)
                if r is None:
                    continue
                v = r.get(key)
                if sname == chosen:
                    if v:
                        ax.barh(y, v, color="#1f77b4", alpha=0.6, height=0.6)
                        ax.text(v / 1.08, y - 0.12, f"{v:,}", va="center", ha="right", fontsize=8)
                    else:
                        ax.text(1.2e2, y, "no benefit to detect", va="center", fontsize=8, color="#d62728")
                elif v:
                    ax.plot(v, y + 0.22 - 0.08 * j, "o", ms=4, color=_CYCLE[(j + 1) % len(_CYCLE)],
                            label=sname if k == 0 else None)
        ax.set_xscale("log")
        ax.set_xlim(100, 1e6)
        ax.set_xlabel(f"patients (total, 1:1) for {key[-2:]}% power [1]")
        ax.grid(alpha=0.25, axis="x")
    axes[0].set_yticks(range(len(designs)))
    axes[0].set_yticklabels(list(reversed(designs)), fontsize=8)
    if len(sets) > 1:
        axes[1].legend(fontsize=7, loc="lower right", title=f"bars: {chosen}; dots:", title_fontsize=7)
    if title:
        fig.suptitle(title, fontsize=9)
    return fig


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


def plot_observed_vs_predicted(rows: list[dict], observable: str, prediction: str = "IPRED", ax=None,
                               log: bool | None = None):
    """Observations against the population (``"PRED"``) or individual (``"IPRED"``) predictions of one
    observable, with the identity line; ``rows`` from :meth:`il2als.popfit.PopulationFit.diagnostic_rows`.
    Log axes when every value is positive (unless ``log`` says otherwise). Returns the Axes."""
    if prediction not in ("PRED", "IPRED"):
        raise ValueError("prediction must be 'PRED' or 'IPRED'")
    ax = _axes(ax)
    sel = _rows_of(rows, observable)
    x = np.array([r[prediction] for r in sel])
    y = np.array([r["DV"] for r in sel])
    ax.scatter(x, y, s=9, alpha=0.6, color="#1f77b4", edgecolor="none")
    both = np.concatenate([x, y])
    both = both[np.isfinite(both)]
    lo, hi = both.min(), both.max()
    if log is None:
        log = _wants_log(both)
    ax.plot([lo, hi], [lo, hi], color="k", lw=0.9)
    if log:
        ax.set_xscale("log")
        ax.set_yscale("log")
    unit = sel[0]["unit"]
    ax.set_xlabel(f"{prediction} {observable} [{unit}]", fontsize=8)
    ax.set_ylabel(f"observed {observable} [{unit}]", fontsize=8)
    ax.set_title(f"{observable}: observed vs {prediction}", fontsize=9)
    ax.tick_params(labelsize=7)
    ax.grid(alpha=0.25)
    return ax


def plot_residuals(rows: list[dict], observable: str, against: str = "time", residual: str = "CWRES", ax=None):
    """Conditional weighted (``"CWRES"``) or individual (``"IWRES"``) residuals of one observable against time
    (``"time"``) or the population prediction (``"PRED"``), with zero, +-2 and a running median. Returns the Axes."""
    if against not in ("time", "PRED") or residual not in ("CWRES", "IWRES"):
        raise ValueError("against must be 'time' or 'PRED', residual 'CWRES' or 'IWRES'")
    ax = _axes(ax)
    sel = _rows_of(rows, observable)
    x = np.array([r["time_day"] if against == "time" else r["PRED"] for r in sel])
    y = np.array([r[residual] for r in sel])
    ax.scatter(x, y, s=9, alpha=0.6, color="#1f77b4", edgecolor="none")
    for v, ls in ((0, "-"), (2, "--"), (-2, "--")):
        ax.axhline(v, color="k" if v == 0 else "grey", lw=0.8, ls=ls)
    if len(x) >= 10:  # medians in bins of equal counts show a trend without chasing single points
        edges = np.unique(np.quantile(x, np.linspace(0, 1, 9)))
        b = np.clip(np.searchsorted(edges, x, side="right") - 1, 0, len(edges) - 2)
        keep = [k for k in range(len(edges) - 1) if np.any(b == k)]
        ax.plot([np.median(x[b == k]) for k in keep], [np.median(y[b == k]) for k in keep], "o-", color="#d62728",
                lw=1.2, ms=3, label="binned median")
        ax.legend(fontsize=7, loc="upper right")
    if against == "PRED" and _wants_log(x):
        ax.set_xscale("log")
    unit = sel[0]["unit"]
    ax.set_xlabel("time [day]" if against == "time" else f"PRED {observable} [{unit}]", fontsize=8)
    ax.set_ylabel(f"{residual} [1]", fontsize=8)
    ax.set_title(f"{observable}: {residual} vs {'time' if against == 'time' else 'PRED'}", fontsize=9)
    ax.tick_params(labelsize=7)
    ax.grid(alpha=0.25)
    return ax


def plot_individual_fit(time, individual, population, observed, doses=(), ax=None, title: str = "", unit: str = ""):
    """One patient and one observable: the individual prediction (at the EBE, solid), the population prediction
    (dashed), the observations (dots) and the doses (ticks along the bottom). ``time`` in days; ``observed`` is
    ``(times, values)``; ``doses`` the dose times in days. Returns the Axes."""
    ax = _axes(ax, (4.0, 3.0))
    ax.plot(time, individual, color="#1f77b4", lw=1.2, label="IPRED")
    ax.plot(time, population, color="grey", lw=1.0, ls="--", label="PRED")
    ax.plot(*observed, "o", color="k", ms=3, label="observed")
    doses = np.asarray(list(doses), float)
    if len(doses):
        ax.plot(doses, np.zeros_like(doses), "|", color="#d62728", ms=8, transform=ax.get_xaxis_transform(),
                label="dose", clip_on=False)
    ax.set_title(title, fontsize=8)
    ax.set_xlabel("time [day]", fontsize=7)
    if unit:
        ax.set_ylabel(f"[{unit}]", fontsize=7)
    ax.tick_params(labelsize=6)
    ax.grid(alpha=0.25)
    return ax


def plot_ebe_distribution(eta, omega: float, name: str, shrinkage: float | None = None, ax=None):
    """Histogram of one random effect's empirical Bayes estimates (density) with the fitted N(0, omega^2) and its
    shrinkage in the title. Returns the Axes."""
    ax = _axes(ax, (4.0, 3.2))
    eta = np.asarray(eta, float)
    ax.hist(eta, bins=max(5, min(20, len(eta) // 3)), density=True, color="#1f77b4", alpha=0.6, label="EBE")
    x = np.linspace(-3.5 * omega, 3.5 * omega, 200)
    ax.plot(x, np.exp(-0.5 * (x / omega) ** 2) / (omega * np.sqrt(2 * np.pi)), color="#d62728",
            label=f"N(0, {omega:.3g}²)")
    ax.axvline(0, color="k", lw=0.8)
    sh = f", shrinkage {100 * shrinkage:.0f}%" if shrinkage is not None and np.isfinite(shrinkage) else ""
    ax.set_title(f"eta {name}{sh}", fontsize=9)
    ax.set_xlabel(f"eta_{name} [log units]", fontsize=8)
    ax.set_ylabel("density", fontsize=8)
    ax.legend(fontsize=7)
    ax.tick_params(labelsize=7)
    return ax


def plot_vpc(vpc, observable: str, ax=None, log: bool | None = None):
    """A visual predictive check of one observable (an :class:`il2als.popfit.VisualPredictiveCheck`): observations
    (dots), their 5th/50th/95th percentiles per bin (lines) and the 95% simulation intervals of the same percentiles
    (shaded: blue the outer, red the median). Returns the Axes."""
    ax = _axes(ax, (5.5, 4.0))
    rows = [r for r in vpc.rows if r["observable"] == observable]
    if not rows:
        raise ValueError(f"no VPC bins for observable '{observable}'")
    t = np.array([r["time_day"] for r in rows])
    t_obs, y_obs = vpc.observed[observable]
    ax.plot(t_obs, y_obs, "o", color="grey", ms=2.5, alpha=0.5, label="observed")
    labels = {5: ("simulated 5th/95th percentiles, 95% interval", "observed 5th/95th percentiles"),
              50: ("simulated median, 95% interval", "observed median"), 95: (None, None)}
    for pct, colour in ((5, "#1f77b4"), (50, "#d62728"), (95, "#1f77b4")):
        ax.fill_between(t, [r[f"sim_p{pct}_lo"] for r in rows], [r[f"sim_p{pct}_hi"] for r in rows], color=colour,
                        alpha=0.18, lw=0, label=labels[pct][0])
        ax.plot(t, [r[f"obs_p{pct}"] for r in rows], color=colour, lw=1.4 if pct == 50 else 1.0,
                ls="-" if pct == 50 else "--", label=labels[pct][1])
    if log is None:
        log = _wants_log(y_obs)
    if log:
        ax.set_yscale("log")
    kind = "prediction-corrected " if vpc.prediction_corrected else ""
    ax.set_title(f"{kind}VPC, {observable} ({vpc.n_replicates} simulated replicates)", fontsize=9)
    ax.set_xlabel("time [day]", fontsize=8)
    ax.set_ylabel(f"{'pc ' if vpc.prediction_corrected else ''}{observable} [{rows[0]['unit']}]", fontsize=8)
    ax.legend(fontsize=6, loc="best")
    ax.tick_params(labelsize=7)
    ax.grid(alpha=0.25)
    return ax
