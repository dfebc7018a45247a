"""Virtual populations: patients sampled with inter-individual variability, covariates and trial eligibility.

``sample_population(spec, n, rng)`` draws eligible patients around a centre parameter set (the default, or a
slow/fast profile): log-normal variability with correlated deviates on the parameters that make progression
slow or fast and on PK; age and sex; a disease stage derived mechanistically (a reserve at symptom onset, lost
at the patient's own baseline loss rate over the symptom duration and the run-in); and the eligibility rules
(age, symptom duration, ALSFRS-R at screening). All randomness comes from the ``numpy.random.Generator``
given, so one seed reproduces a population exactly.
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np

from .compile import CompiledModel, default_model
from .errors import ParameterError, did_you_mean
from .parameters import ParameterSet, load_parameters

DAYS_PER_MONTH = 30.4375


@dataclass(frozen=True)
class PopulationSpec:
    """Variability (name -> omega, sd of the log; factor, median over the centre's value), correlations, disease stage, covariates and eligibility."""

    name: str
    centre: ParameterSet
    omega: dict[str, float]
    factor: dict[str, float]  # population median / centre value
    correlation: np.ndarray  # (n_varied, n_varied)
    reserve_at_onset: tuple[float, float, float]  # median, omega, max
    symptom_duration_months: tuple[float, float]  # median, omega
    age: tuple[float, float]  # mean, sd
    male_fraction: float
    eligible_age: tuple[float, float]
    max_symptom_duration_months: float
    min_alsfrs_r: float
    run_in_weeks: tuple[float, float]
    sources: dict[str, str] = field(default_factory=dict)
    pnfh_range: tuple[float, float] = (0.0, math.inf)  # enrichment: eligible baseline CSF-pNfH [pg/mL]

    @property
    def varied(self) -> list[str]:
        return list(self.omega)

    def centred_on(self, centre: ParameterSet) -> "PopulationSpec":
        """The same variability around another parameter set (e.g. a slow or fast profile)."""
        from dataclasses import replace

        return replace(self, centre=centre, name=f"{self.name}@{centre.name}")

    def enriched(self, low: float = 0.0, high: float = math.inf) -> "PopulationSpec":
        """Only patients whose baseline CSF-pNfH lies in [low, high] pg/mL are eligible."""
        from dataclasses import replace

        if not (0 <= low < high):
            raise ParameterError(f"CSF-pNfH enrichment range [{low}, {high}] pg/mL must have 0 <= low < high")
        return replace(self, pnfh_range=(float(low), float(high)), name=f"{self.name}[pNfH {low:g}-{high:g}]")


def load_population_spec(spec: str | Path = "population", centre: ParameterSet | None = None) -> PopulationSpec:
    """Read a population spec (TOML) by name (``population``) or path; ``centre`` defaults to ``default``."""
    s = str(spec)
    path = Path(s) if (s.endswith(".toml") or "/" in s) else resources.files("il2als.params") / f"{s}.toml"
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ParameterError(f"population spec '{spec}' not found; give 'population' or a path to a .toml file") from None
    except tomllib.TOMLDecodeError as exc:
        raise ParameterError(f"population spec '{spec}' is not valid TOML ({exc}); fix the syntax") from None
    centre = centre or load_parameters("default")
    model = default_model()
    known = set(model.parameter_names)
    try:
        omega = {}
        factor = {}
        sources = {}
        for name, e in data["variability"].items():
            if name not in known:
                raise ParameterError(f"{path}: variability of unknown parameter '{name}'{did_you_mean(name, known)}")
            w = float(e["omega"])
            if not (0 <= w < 3):
                raise ParameterError(f"{path}: omega of {name} = {w} must be in [0, 3)")
            omega[name] = w
            factor[name] = float(e.get("factor", 1.0))
            if not factor[name] > 0:
                raise ParameterError(f"{path}: factor of {name} = {factor[name]} must be positive")
            sources[name] = str(e.get("source", ""))
        names = list(omega)
        C = np.eye(len(names))
        for pair, r in data.get("correlations", {}).items():
            a, b = (x.strip() for x in pair.split(","))
            if a not in omega or b not in omega:
                bad = a if a not in omega else b
                raise ParameterError(f"{path}: correlation names '{bad}', which has no variability; add it to [variability]")
            if not -1 < float(r) < 1:
                raise ParameterError(f"{path}: correlation {pair} = {r} must lie strictly between -1 and 1")
            i, j = names.index(a), names.index(b)
            C[i, j] = C[j, i] = float(r)
        if np.min(np.linalg.eigvalsh(C)) <= 0:
            raise ParameterError(f"{path}: the correlation matrix is not positive definite; weaken the correlations")
        st = data["disease_stage"]
        cov = data["covariates"]
        el = data["eligibility"]
        return PopulationSpec(
            name=str(data.get("meta", {}).get("name", path.stem)), centre=centre, omega=omega, factor=factor, correlation=C,
            reserve_at_onset=(float(st["reserve_at_onset"]["median"]), float(st["reserve_at_onset"]["omega"]),
                              float(st["reserve_at_onset"]["max"])),
            symptom_duration_months=(float(st["symptom_duration_months"]["median"]),
                                     float(st["symptom_duration_months"]["omega"])),
            age=(float(cov["age"]["mean"]), float(cov["age"]["sd"])), male_fraction=float(cov["male_fraction"]["value"]),
            eligible_age=tuple(float(x) for x in el["age"]), max_symptom_duration_months=float(el["max_symptom_duration_months"]),
            min_alsfrs_r=float(el["min_alsfrs_r_at_screening"]), run_in_weeks=tuple(float(x) for x in el["run_in_weeks"]),
            sources=sources,
        )
    except KeyError as exc:
        raise ParameterError(f"{path}: missing field {exc}; see params/population.toml for the layout") from None


@dataclass(frozen=True, eq=False)
class Cohort:
    """N sampled eligible patients: parameters ``(N, n_parameters)`` in canonical units and covariates ``(N,)``.

    Covariates: ``age`` [year], ``male`` [bool], ``symptom_duration`` [month] at screening, ``run_in`` [week],
    ``reserve_at_onset`` [1], ``loss_rate`` [1/day] at baseline, ``alsfrs_r_screening`` [points].
    """

    params: np.ndarray
    covariates: dict[str, np.ndarray]
    spec_name: str
    n_screened: int
    states: np.ndarray | None = None  # baseline states (N, n_states), canonical units, when known

    def __len__(self) -> int:
        return len(self.params)

    def subset(self, mask: np.ndarray) -> "Cohort":
        return Cohort(self.params[mask], {k: v[mask] for k, v in self.covariates.items()}, self.spec_name,
                      self.n_screened, None if self.states is None else self.states[mask])


def _alsfrs(reserve: np.ndarray, P: np.ndarray, model: CompiledModel) -> np.ndarray:
    n50 = P[:, model.parameter_index("alsfrs_reserve_half")]
    h = P[:, model.parameter_index("alsfrs_hill")]
    return 48.0 / (1.0 + (n50 / reserve) ** h)


def sample_population(spec: PopulationSpec, n: int, rng: np.random.Generator, model: CompiledModel | None = None,
                      max_screened: int = 100) -> Cohort:
    """Draw ``n`` eligible patients (screening ``max_screened`` times ``n`` at most)."""
    from .population import population_baselines

    if not isinstance(n, (int, np.integer)) or n < 1:
        raise ParameterError(f"population size {n!r} must be a whole number >= 1")
    model = model or default_model()
    centre = spec.centre.vector(model)
    idx = [model.parameter_index(k) for k in spec.varied]
    omega = np.array([spec.omega[k] for k in spec.varied])
    factor = np.array([spec.factor[k] for k in spec.varied])
    L = np.linalg.cholesky(spec.correlation)
    i_loss_obs = model.observable_names.index("mn_loss_rate")
    i_res = model.parameter_index("mn_reserve_start")
    i_f = model.parameter_index("bioavailability")
    kept_P, kept_Y, kept_cov, screened = [], [], [], 0
    while sum(len(p) for p in kept_P) < n:
        if screened >= max_screened * n:
            raise ParameterError(f"only {sum(len(p) for p in kept_P)} of {screened} screened patients were eligible; "
                                 "relax the eligibility rules or check the spec")
        m = max(64, 2 * (n - sum(len(p) for p in kept_P)))
        screened += m
        z = rng.standard_normal((m, len(idx))) @ L.T
        P = np.tile(centre, (m, 1))
        P[:, idx] *= factor * np.exp(omega * z)
        P[:, i_f] = np.minimum(P[:, i_f], 0.95)
        age = rng.normal(spec.age[0], spec.age[1], m)
        male = rng.random(m) < spec.male_fraction
        dur = spec.symptom_duration_months[0] * np.exp(spec.symptom_duration_months[1] * rng.standard_normal(m))
        onset = np.minimum(spec.reserve_at_onset[0] * np.exp(spec.reserve_at_onset[1] * rng.standard_normal(m)),
                           spec.reserve_at_onset[2])
        run_in = rng.uniform(spec.run_in_weeks[0], spec.run_in_weeks[1], m)
        # the baseline loss rate does not depend on the reserve, so one baseline solve gives it
        Y0, st = population_baselines(P, model)
        loss = np.array([model.observe(np.zeros(1), Y0[j:j + 1], P[j])[0, i_loss_obs] for j in range(m)])
        screen_reserve = onset * np.exp(-loss * dur * DAYS_PER_MONTH)
        rand_reserve = screen_reserve * np.exp(-loss * run_in * 7.0)
        P[:, i_res] = rand_reserve
        alsfrs_screen = _alsfrs(screen_reserve, P, model)
        pnfh = Y0[:, model.state_index("pnfh_csf")]
        ok = ((st == 0) & (pnfh >= spec.pnfh_range[0]) & (pnfh <= spec.pnfh_range[1]) & (age >= spec.eligible_age[0]) & (age <= spec.eligible_age[1])
              & (dur <= spec.max_symptom_duration_months) & (alsfrs_screen >= spec.min_alsfrs_r)
              & np.isfinite(rand_reserve) & (rand_reserve > 0))
        # the steady states do not depend on the reserve (tested), so the screening solve is the baseline too
        Y0[:, model.state_index("mn_reserve")] = rand_reserve
        kept_Y.append(Y0[ok])
        kept_P.append(P[ok])
        kept_cov.append({"age": age[ok], "male": male[ok], "symptom_duration": dur[ok], "run_in": run_in[ok],
                         "reserve_at_onset": onset[ok], "loss_rate": loss[ok], "alsfrs_r_screening": alsfrs_screen[ok]})
    P = np.concatenate(kept_P)[:n]
    cov = {k: np.concatenate([c[k] for c in kept_cov])[:n] for k in kept_cov[0]}
    return Cohort(P, cov, spec.name, screened, np.concatenate(kept_Y)[:n])


def describe_cohort(cohort: Cohort, model: CompiledModel | None = None, months: float = 12.0) -> dict[str, float]:
    """Natural-history summary of a cohort on placebo: ALSFRS-R slope over ``months`` (mean, shares of slow
    < 0.5 and fast > 1 point/month), baseline CSF-pNfH strata shares (< 750, 750-3700, > 3700 pg/mL)."""
    from .population import simulate_population

    days = months * DAYS_PER_MONTH
    r = simulate_population(cohort.params, "placebo", f"{days} day", step=f"{days} day",
                            outputs=["alsfrs_r", "pnfh_csf", "nfl_serum"], model=model)
    a = r["alsfrs_r"]
    slope = (a[:, -1] - a[:, 0]) / months
    pn = r["pnfh_csf"][:, 0]
    return {
        "alsfrs_slope_mean": float(np.mean(slope)),
        "share_slow": float(np.mean(slope > -0.5)),
        "share_fast": float(np.mean(slope < -1.0)),
        "pnfh_below_750": float(np.mean(pn < 750)),
        "pnfh_750_3700": float(np.mean((pn >= 750) & (pn <= 3700))),
        "pnfh_above_3700": float(np.mean(pn > 3700)),
        "pnfh_median": float(np.median(pn)),
        "nfl_serum_median": float(np.median(r["nfl_serum"][:, 0])),
        "alsfrs_r_median": float(np.median(a[:, 0])),
    }
