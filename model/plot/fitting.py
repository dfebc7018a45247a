"""Figures of fits: calibration checks, goodness of fit, residuals, individual fits, EBEs, VPC."""

from __future__ import annotations

import numpy as np

from il2als.plot._common import _axes, _rows_of, _wants_log

__all__ = ["plot_waterfall", "plot_profiles", "plot_check", "plot_population_fit", "plot_observed_vs_predicted", "plot_residuals",
           "plot_individual_fit", "plot_ebe_distribution", "plot_vpc"]



def plot_check(rows: list[dict], title: str = "", ax=None):
    """Residual of every target ((model - target) / tolerance), pass band shaded; returns the Axes."""
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


def plot_population_fit(res, data, title: str = "", max_ids: int = 30):
    """One panel per observed observable: each ID's simulated course (line) and its observations (dots),
    for the first ``max_ids`` IDs. ``res`` is a PopulationResult over ``data.ids``. Returns the Figure."""
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


def plot_observed_vs_predicted(rows: list[dict], observable: str, prediction: str = "IPRED", ax=None,
                               log: bool | None = None):
    """Observations against the population (``"PRED"``) or individual (``"IPRED"``) predictions of one
    observable, with the identity line; ``rows`` from :meth:`il2als.fitting.population_fit.PopulationFit.diagnostic_rows`.
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
    """A visual predictive check of one observable (an :class:`il2als.fitting.population_fit.VisualPredictiveCheck`): observations
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


def plot_waterfall(result, ax=None):
    """Final cost of every start of a multi-start fit, sorted (a waterfall): starts that end on one plateau found
    the same optimum. Green: converged, red: stopped at the evaluation budget. Returns the Axes."""
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    from matplotlib.ticker import MaxNLocator

    if ax is None:
        _, ax = plt.subplots(figsize=(6, 4), constrained_layout=True)
    starts = sorted(result.starts, key=lambda s: s.cost)
    k = np.arange(1, len(starts) + 1)
    costs = np.array([s.cost for s in starts])
    ax.plot(k, costs, "-", color="grey")
    ax.scatter(k, costs, c=["#2ca02c" if s.converged else "#d62728" for s in starts], zorder=3)
    if costs.min() > 0 and costs.max() / costs.min() > 10:
        ax.set_yscale("log")
    _plain_ticks(ax.yaxis)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("start, sorted by final cost")
    ax.set_ylabel("final cost 0.5·Σ residual² [1]")
    ax.set_title(f"multi-start waterfall: {len(starts)} starts", fontsize=10)
    ax.legend(handles=[Line2D([], [], marker="o", ls="", color="#2ca02c", label="converged"),
                       Line2D([], [], marker="o", ls="", color="#d62728", label="stopped at the budget")], fontsize=8)
    ax.grid(alpha=0.25)
    return ax


def plot_profiles(result):
    """Profile likelihoods: Δχ² = 2 Δcost against each free parameter (in its unit), the 95% threshold
    (χ²₁ = 3.84) and the estimate. Returns the Figure."""
    import matplotlib.pyplot as plt

    from il2als.fitting.optimize import CHI2_95
    from il2als.inputs.units import unit_label

    names = list(result.profiles)
    ncol = min(4, len(names))
    nrow = int(np.ceil(len(names) / ncol))
    fig, axes = plt.subplots(nrow, ncol, figsize=(3.6 * ncol, 3.0 * nrow), constrained_layout=True, squeeze=False)
    for i, (ax, name) in enumerate(zip(axes.flat, names)):
        grid, costs = result.profiles[name]
        f = result.problem.free[result.problem.names.index(name)]
        ax.plot(f.from_scale(np.asarray(grid)), 2 * (np.asarray(costs) - result.cost), "o-", ms=3,
                label="profile")
        ax.axhline(CHI2_95, color="#d62728", ls="--", lw=1, label=f"95% threshold (Δχ² = {CHI2_95:.2f})")
        ax.axvline(float(f.from_scale(result.x[result.problem.names.index(name)])), color="grey", lw=0.8,
                   label="estimate")
        ax.set_xscale("log" if f.scale == "log" else "linear")
        _plain_ticks(ax.xaxis)
        ax.set_xlabel(f"{name} [{unit_label(f.unit)}]", fontsize=8)
        if i % ncol == 0:
            ax.set_ylabel("Δχ² [1]", fontsize=8)
        ax.tick_params(labelsize=7)
        if i == 0:
            ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(names):]:
        ax.axis("off")
    return fig


def _plain_ticks(axis) -> None:
    """Major ticks as plain numbers (``0.3``, ``2000``, not ``3×10⁻¹``), no labels on minor log ticks, no offset."""
    from matplotlib.ticker import FuncFormatter, NullFormatter

    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:.6g}"))
    axis.set_minor_formatter(NullFormatter())

