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
    #: the spreads before a centre's [population] table changed them (so re-centring starts from the file's)
    unadjusted: tuple[dict[str, float], dict[str, float], np.ndarray] | None = field(default=None, repr=False)

    @property
    def varied(self) -> list[str]:
        return list(self.omega)

    def centred_on(self, centre: ParameterSet) -> "PopulationSpec":
        """The same variability around another parameter set (e.g. a slow or fast profile).

        A set that carries a ``[population]`` table (a hypothesis variant, ``mirocals-informed``) changes the
        spreads, median factors and correlations it names; setting is idempotent, so re-centring is safe."""
        from dataclasses import replace

        base = self.name.split("@")[0]
        plain = self.unadjusted or (self.omega, self.factor, self.correlation)
        spec = replace(self, omega=dict(plain[0]), factor=dict(plain[1]), correlation=plain[2], unadjusted=None)
        pop = getattr(centre, "population", None) or {}
        if pop:
            label = f"parameter set '{centre.name}' [population]"
            omega, factor = dict(spec.omega), dict(spec.factor)
            for key, target, hi in (("omega", omega, 3.0), ("factor", factor, 1e6)):
                for k, v in pop.get(key, {}).items():
                    if k not in target:
                        raise ParameterError(f"{label}: {key} of '{k}', which has no variability"
                                             f"{did_you_mean(k, list(target))}")
                    target[k] = _num(v, f"{label}: {key} of {k}", 0.0, hi, open_lo=key == "factor")
            C = correlation_matrix(spec.varied, pop.get("correlations", {}), label, start=spec.correlation)
            spec = replace(spec, omega=omega, factor=factor, correlation=C, unadjusted=plain)
        return replace(spec, centre=centre, name=f"{base}@{centre.name}")

    def enriched(self, low: float = 0.0, high: float = math.inf) -> "PopulationSpec":
        """Only patients whose baseline CSF-pNfH lies in [low, high] pg/mL are eligible."""
        from dataclasses import replace

        if not (0 <= low < high):
            raise ParameterError(f"CSF-pNfH enrichment range [{low}, {high}] pg/mL must have 0 <= low < high")
        return replace(self, pnfh_range=(float(low), float(high)), name=f"{self.name}[pNfH {low:g}-{high:g}]")


def _num(value: object, where: str, lo: float = -math.inf, hi: float = math.inf, *, open_lo: bool = False) -> float:
    """A number from a spec file, inside [lo, hi] (or (lo, hi]), else a one-line :class:`ParameterError`."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ParameterError(f"{where} = {value!r} must be a number")
    v = float(value)
    if not math.isfinite(v) or v > hi or v < lo or (open_lo and v == lo):
        bracket = "(" if open_lo else "["
        raise ParameterError(f"{where} = {value!r} must be a finite number in {bracket}{lo:g}, {hi:g}]")
    return v


def _table(data: dict, key: str, where: str) -> dict:
    v = data.get(key)
    if not isinstance(v, dict):
        raise ParameterError(f"{where}: [{key}] is missing or not a table; see params/population.toml for the layout")
    return v


def _pair(value: object, where: str, lo: float, hi: float) -> tuple[float, float]:
    if not isinstance(value, list) or len(value) != 2:
        raise ParameterError(f"{where} = {value!r} must be [low, high]")
    a, b = (_num(x, where, lo, hi) for x in value)
    if a > b:
        raise ParameterError(f"{where} = {value!r} must have low <= high")
    return a, b


def correlation_matrix(names: list[str], table: object, where: str, start: np.ndarray | None = None) -> np.ndarray:
    """The correlation matrix of the deviates of ``names`` from a ``{"a,b": r}`` table (on top of ``start``, else
    the identity), checked: known names, -1 < r < 1, positive definite; else a one-line :class:`ParameterError`."""
    if not isinstance(table, dict):
        raise ParameterError(f"{where}: [correlations] must be a table of \"a,b\" = r")
    C = np.eye(len(names)) if start is None else np.array(start, dtype=float)
    for pair, r in table.items():
        parts = [x.strip() for x in str(pair).split(",")]
        if len(parts) != 2:
            raise ParameterError(f"{where}: correlation key '{pair}' must name two parameters, \"a,b\"")
        a, b = parts
        if a not in names or b not in names:
            bad = a if a not in names else b
            raise ParameterError(f"{where}: correlation names '{bad}', which has no variability; add it to [variability]")
        rv = _num(r, f"{where}: correlation {pair}", -1.0, 1.0)
        if a == b or abs(rv) >= 1:
            raise ParameterError(f"{where}: correlation {pair} = {r} must join two parameters and lie strictly between -1 and 1")
        i, j = names.index(a), names.index(b)
        C[i, j] = C[j, i] = rv
    if len(names) and np.min(np.linalg.eigvalsh(C)) <= 0:
        raise ParameterError(f"{where}: the correlation matrix is not positive definite; weaken the correlations")
    return C


def load_population_spec(spec: str | Path = "population", centre: ParameterSet | None = None) -> PopulationSpec:
    """Read a population spec (TOML) by name (``population``) or path; ``centre`` defaults to ``default``.

    Every field is checked on load (numbers, shapes, ranges: omegas in [0, 3), the reserve at onset in (0, 1],
    a male fraction in [0, 1], ...); a bad spec is a one-line :class:`ParameterError` naming the field."""
    from .textfiles import read_text

    s = str(spec)
    path = Path(s) if (s.endswith(".toml") or "/" in s) else resources.files("il2als.params") / f"{s}.toml"
    if isinstance(path, Path):
        text = read_text(path, "population spec", "'population' or a path to a .toml file", ParameterError)
    else:
        if not path.is_file():
            raise ParameterError(f"population spec '{spec}' not found; give 'population' or a path to a .toml file")
        text = path.read_text(encoding="utf-8")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ParameterError(f"population spec '{spec}' is not valid TOML ({exc}); fix the syntax") from None
    centre = centre or load_parameters("default")
    model = default_model()
    known = set(model.parameter_names)
    omega, factor, sources = {}, {}, {}
    for name, e in _table(data, "variability", str(path)).items():
        if name not in known:
            raise ParameterError(f"{path}: variability of unknown parameter '{name}'{did_you_mean(name, known)}")
        if not isinstance(e, dict) or "omega" not in e:
            raise ParameterError(f"{path}: variability of {name} must be a table {{ omega = ..., source = ... }}")
        extra = sorted(set(e) - {"omega", "factor", "source"})
        if extra:
            raise ParameterError(f"{path}: variability of {name} has unknown field '{extra[0]}' (valid: omega, factor, source)")
        w = _num(e["omega"], f"{path}: omega of {name}", 0.0, 3.0)
        if w >= 3:
            raise ParameterError(f"{path}: omega of {name} = {w} must be in [0, 3)")
        omega[name] = w
        factor[name] = _num(e.get("factor", 1.0), f"{path}: factor of {name}", 0.0, 1e6, open_lo=True)
        sources[name] = str(e.get("source", ""))
    C = correlation_matrix(list(omega), data.get("correlations", {}), str(path))
    st = _table(data, "disease_stage", str(path))
    cov = _table(data, "covariates", str(path))
    el = _table(data, "eligibility", str(path))

    def field_(table: dict, key: str, sub: str | None, where: str, lo: float, hi: float, open_lo: bool = False) -> float:
        t = table.get(key)
        if sub is not None:
            if not isinstance(t, dict) or sub not in t:
                raise ParameterError(f"{path}: missing field {where}.{key}.{sub}; see params/population.toml for the layout")
            t = t[sub]
        elif t is None:
            raise ParameterError(f"{path}: missing field {where}.{key}; see params/population.toml for the layout")
        return _num(t, f"{path}: {where}.{key}{'.' + sub if sub else ''}", lo, hi, open_lo=open_lo)

    onset_max = field_(st, "reserve_at_onset", "max", "disease_stage", 0.0, 1.0, open_lo=True)
    onset = (field_(st, "reserve_at_onset", "median", "disease_stage", 0.0, onset_max, open_lo=True),
             field_(st, "reserve_at_onset", "omega", "disease_stage", 0.0, 3.0), onset_max)
    duration = (field_(st, "symptom_duration_months", "median", "disease_stage", 0.0, 600.0, open_lo=True),
                field_(st, "symptom_duration_months", "omega", "disease_stage", 0.0, 3.0))
    age = (field_(cov, "age", "mean", "covariates", 0.0, 120.0), field_(cov, "age", "sd", "covariates", 0.0, 60.0))
    male = field_(cov, "male_fraction", "value", "covariates", 0.0, 1.0)
    if "age" not in el or "run_in_weeks" not in el:
        raise ParameterError(f"{path}: [eligibility] needs age = [low, high] and run_in_weeks = [low, high]")
    meta = data.get("meta", {})
    if not isinstance(meta, dict):
        raise ParameterError(f"{path}: [meta] must be a table")
    spec = PopulationSpec(
        name=str(meta.get("name", Path(str(path)).stem)), centre=centre, omega=omega, factor=factor, correlation=C,
        reserve_at_onset=onset, symptom_duration_months=duration, age=age, male_fraction=male,
        eligible_age=_pair(el["age"], f"{path}: eligibility.age", 0.0, 150.0),
        max_symptom_duration_months=field_(el, "max_symptom_duration_months", None, "eligibility", 0.0, 600.0, open_lo=True),
        min_alsfrs_r=field_(el, "min_alsfrs_r_at_screening", None, "eligibility", 0.0, 48.0),
        run_in_weeks=_pair(el["run_in_weeks"], f"{path}: eligibility.run_in_weeks", 0.0, 520.0),
        sources=sources,
    )
    return spec.centred_on(centre) if centre.population else spec


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


#: At most this many patients in one population (the parameter matrix alone is ~440 bytes a patient).
MAX_PATIENTS = 1_000_000


def _vary(centre: np.ndarray, factor: np.ndarray, omega: np.ndarray, z: np.ndarray, upper: np.ndarray) -> np.ndarray:
    """Patients' values ``(m, k)`` from the centre values: log-normal, ``c * factor * exp(omega * z)``, for
    parameters bounded only below (by 0); logit-normal on ``(0, upper)`` for parameters with a finite upper
    bound (a fraction, a reserve), so that no patient is sampled outside the mechanism's physical bounds."""
    out = centre * factor * np.exp(omega * z)
    bounded = np.isfinite(upper)
    if np.any(bounded):
        u = upper[bounded]
        med = np.clip(centre[:, bounded] * factor[bounded], 1e-12 * u, u * (1 - 1e-9))
        logit = np.log(med / (u - med)) + omega[bounded] * z[:, bounded]
        out[:, bounded] = u / (1.0 + np.exp(-logit))
    return out


def sample_population(spec: PopulationSpec, n: int, rng: np.random.Generator, model: CompiledModel | None = None,
                      max_screened: int = 100) -> Cohort:
    """Draw ``n`` eligible patients (screening ``max_screened`` times ``n`` at most)."""
    from .population import population_baselines

    if not isinstance(n, (int, np.integer)) or n < 1:
        raise ParameterError(f"population size {n!r} must be a whole number >= 1")
    if n > MAX_PATIENTS:
        raise ParameterError(f"population size {n:,} is above the cap of {MAX_PATIENTS:,} patients for one run "
                             "(il2als.cohort.MAX_PATIENTS); sample in several runs")
    model = model or default_model()
    centre = spec.centre.vector(model)
    idx = [model.parameter_index(k) for k in spec.varied]
    omega = np.array([spec.omega[k] for k in spec.varied])
    factor = np.array([spec.factor[k] for k in spec.varied])
    L = np.linalg.cholesky(spec.correlation)
    upper = np.array([model.mechanism.parameter(k).upper for k in spec.varied])
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
        P[:, idx] = _vary(P[:, idx], factor, omega, z, upper)
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
    < 0.5 and fast > 1 point/month), baseline CSF-pNfH strata shares (< 750, 750-3700, > 3700 pg/mL), and the
    correlation of log CSF pNfH with the log rate of ALSFRS-R decline."""
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
        "corr_log_pnfh_log_progression": _log_corr(pn, -slope),
        "sd_log_progression": float(np.std(np.log(-slope[slope < 0]))) if np.sum(slope < 0) > 2 else math.nan,
    }


def _log_corr(x: np.ndarray, y: np.ndarray) -> float:
    """Pearson correlation of log x with log y over the patients where both are positive (NaN if < 3)."""
    ok = (x > 0) & (y > 0)
    return float(np.corrcoef(np.log(x[ok]), np.log(y[ok]))[0, 1]) if ok.sum() >= 3 else math.nan
