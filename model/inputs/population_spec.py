"""Population specifications: typical values, between-patient spreads, correlations and eligibility, read from TOML."""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np

from il2als.compiler.codegen import default_model
from il2als.errors import ParameterError, did_you_mean
from il2als.inputs.parameters import ParameterSet, load_parameters

__all__ = ["PopulationSpec", "correlation_matrix", "load_population_spec"]


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
    """Read a population specification (TOML) by name or path.

    Parameters
    ----------
    spec : str or Path
        ``population`` (the shipped one, matched to PRO-ACT and MIROCALS baseline distributions) or a path.
    centre : ParameterSet, optional
        The set the population is centred on (default: ``default``); a set with its own ``[population]`` table moves
        the spreads with it.

    Returns
    -------
    PopulationSpec
        Between-patient spreads (log-normal omegas), correlations, disease stage, covariates and eligibility.
    """
    from il2als.inputs.textfiles import read_text

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
