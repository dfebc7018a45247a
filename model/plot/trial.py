"""Figures of virtual trials: Kaplan-Meier, forest, power, sample size, schedule search."""

from __future__ import annotations

import numpy as np

from il2als.plot._common import _CYCLE

__all__ = ["plot_km", "plot_forest", "plot_power", "plot_schedule_search", "plot_sample_size"]



def plot_km(result, title: str = "", at_risk_every: float = 90.0):
    """Kaplan-Meier curves by arm, overall and per CSF-pNfH stratum (cut-offs in the panel titles), from
    :meth:`TrialResult.km_curves`: the median across virtual trials, a band holding 95% of them (how much one trial
    of this size varies; no band for a single trial), and the median numbers at risk every ``at_risk_every`` days
    under each panel. Returns the Figure."""
    import matplotlib.pyplot as plt

    from il2als.results.metrics import STRATA, stratum_labels

    km = result.km_curves()
    t = km["time"]
    n_rep = len(result.replicates)
    fig, axes = plt.subplots(2, 2, figsize=(11, 8.6), constrained_layout=True, sharex=True, sharey=True)
    labels = {"overall": "all patients", **stratum_labels(result.design.pnfh_cutoffs)}
    ticks = np.arange(0.0, t[-1] + 1e-9, at_risk_every)
    arms = (("placebo", "placebo", "#555555"), ("il2", result.regimen.name, "#d62728"))
    for ax, key in zip(axes.flat, ("overall",) + STRATA):
        lines = []
        for arm, name, c in arms:
            cur = km.get((key, arm))
            if cur is None:
                continue
            ax.step(t, cur["median"], where="post", color=c, lw=1.5, label=f"{name} (median n {cur['n']:.0f} per trial)")
            if n_rep > 1:
                ax.fill_between(t, cur["low"], cur["high"], step="post", color=c, alpha=0.15, lw=0)
            at = np.interp(ticks, t, cur["at_risk"])
            lines.append((name, c, at))
        what = f"median of {n_rep} virtual trials, band: 95% of trials" if n_rep > 1 else "one virtual trial"
        ax.set_title(f"{labels[key]}\n{what}", fontsize=9.5)
        ax.set_ylabel("survival [1]")
        ax.set_ylim(0, 1.02)
        ax.grid(alpha=0.25)
        ax.legend(fontsize=8, loc="lower left")
        # numbers at risk, as in a trial report: one row per arm under the axis
        for row, (name, c, at) in enumerate(lines):
            ax.annotate("at risk", xy=(0, 0), xycoords="axes fraction", xytext=(-4, -30 - 11 * row),
                        textcoords="offset points", ha="right", fontsize=7, color=c) if row == 0 else None
            for x, v in zip(ticks, at):
                ax.annotate(f"{v:.0f}", xy=(x, 0), xycoords=("data", "axes fraction"), xytext=(0, -30 - 11 * row),
                            textcoords="offset points", ha="center", fontsize=7, color=c)
    for ax in axes[-1]:
        ax.set_xlabel("time since randomisation [day]", labelpad=30)
        ax.set_xticks(ticks)
    if title:
        fig.suptitle(title, fontsize=11)
    return fig


def plot_forest(summary: dict, ax=None):
    """Hazard ratios (IL-2 vs placebo): median across replicates and 2.5-97.5% range, with the paired expected
    HR (open diamond) when the summary carries it; returns the Axes."""
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


def plot_power(ns, power, target: float = 0.8, ax=None, label: str = "", ci=None, alpha: float | None = None):
    """Power against patients per arm, with its Monte-Carlo 95% interval (``ci``: (low, high) per size) and the
    target line; returns the Axes."""
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


def plot_schedule_search(evaluations: list[dict], reference: tuple[float, float], best: tuple[float, float],
                         title: str = ""):
    """Every schedule the optimiser evaluated: median peak effector activation (x) against the cumulative-hazard
    ratio in the search cohort (y), coloured by total dose; the reference regimen's ceiling as a line. Returns
    the Figure."""
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
