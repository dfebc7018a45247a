"""Competing hypotheses of why IL-2LD helps slow and not fast ALS, as named variants of one mechanism.

A variant is a parameter file in ``params/variants/`` (``base = "calibrated"``: the literature-only set) that
switches parts of the one symbolic mechanism on or off through its parameters, plus an optional
``[population]`` table that changes the virtual population's spreads or correlations (the part of a hypothesis
that is about how patients differ), and a ``[variant]`` table that says what the hypothesis is, its literature
support, and which coupling parameter the trial-informed step may fit (one, with its range). Variants never
copy the mechanism; they are values.
"""

from __future__ import annotations

import math
import tomllib
import warnings
from dataclasses import dataclass, replace
from importlib import resources

from .cohort import PopulationSpec, _num, correlation_matrix, load_population_spec
from .errors import ParameterError, did_you_mean
from .parameters import ParameterSet, PlausibilityWarning, load_parameters

__all__ = ["Variant", "VARIANTS", "load_variant"]

#: The shipped variants, in the order tables list them.
VARIANTS = ("restorable", "refractory", "time_to_benefit", "null")


@dataclass(frozen=True)
class Variant:
    """A hypothesis: its parameter set, its population, what it claims and what the trial may fit."""

    name: str
    title: str
    hypothesis: str
    support: str
    params: ParameterSet
    spec: PopulationSpec
    coupling: str | None  # the one parameter the trial-informed step fits (None: nothing to fit)
    coupling_range: tuple[float, float] | None

    def with_coupling(self, value: float) -> "Variant":
        """This variant with its coupling parameter at ``value`` (canonical unit), population centred on it.

        For the Treg -> microglia coupling the natural history is held: the resolution rate without Tregs is
        rescaled so that the centre's baseline resolution, ``k_r (1 + gain F T / T_ref)``, stays what the
        literature calibration gave. The coupling then changes only how strongly activation responds to a *change*
        in functional Tregs, at most in proportion to it, and every natural-history target stays as calibrated."""
        from .compile import default_model
        from .simulate import baseline_state

        if self.coupling is None:
            raise ParameterError(f"variant '{self.name}' has no coupling parameter to set")
        unit = self.params.get(self.coupling).unit
        changes = {self.coupling: f"{float(value)!r} {unit}" if unit != "dimensionless" else f"{float(value)!r}"}
        if self.coupling == "treg_suppression_gain":
            m = default_model()
            y = baseline_state(self.params.vector(m), m)
            tf = y[m.state_index("treg_suppressive_function")] * y[m.state_index("treg")] / self.params.value("treg_reference")
            s_old = self.params.value("treg_suppression_gain") * tf
            kr = float(self.params.value("k_microglia_resolution") * (1 + s_old) / (1 + float(value) * tf))
            changes["k_microglia_resolution"] = f"{kr!r} 1/day"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", PlausibilityWarning)
            ps = self.params.updated(name=f"{self.params.name}@{self.coupling}={value:.4g}", **changes)
        return replace(self, params=ps, spec=self.spec.centred_on(ps))


def _variant_text(name: str) -> tuple[str, str]:
    path = resources.files("il2als.params") / "variants" / f"{name}.toml"
    if not path.is_file():
        raise ParameterError(f"unknown variant '{name}'{did_you_mean(name, VARIANTS)}")
    return f"params/variants/{name}.toml", path.read_text(encoding="utf-8")


def load_variant(name: str) -> Variant:
    """Load a shipped variant by name (see :data:`VARIANTS`)."""
    label, text = _variant_text(name)
    data = tomllib.loads(text)
    info = data.get("variant", {})
    for key in ("title", "hypothesis", "support"):
        if not isinstance(info.get(key), str):
            raise ParameterError(f"{label}: [variant] needs '{key}' (text)")
    with warnings.catch_warnings():  # a variant may move values outside the calibrated set's plausible ranges
        warnings.simplefilter("ignore", PlausibilityWarning)
        ps = load_parameters(str(resources.files("il2als.params") / "variants" / f"{name}.toml"))
    spec = load_population_spec()
    pop = data.get("population", {})
    if pop:
        omega, factor = dict(spec.omega), dict(spec.factor)
        for key, target, lo, open_lo in (("omega", omega, 0.0, False), ("factor", factor, 0.0, True)):
            for k, v in pop.get(key, {}).items():
                if k not in target:
                    raise ParameterError(f"{label}: [population.{key}] names '{k}', which has no variability")
                target[k] = _num(v, f"{label}: {key} of {k}", lo, 3.0 if key == "omega" else 1e6, open_lo=open_lo)
        C = correlation_matrix(spec.varied, pop.get("correlations", {}), label, start=spec.correlation)
        spec = replace(spec, omega=omega, factor=factor, correlation=C, name=f"{spec.name}+{name}")
    spec = spec.centred_on(ps)
    coupling = info.get("coupling")
    rng = info.get("coupling_range")
    if coupling is not None:
        ps.get(coupling)
        if not (isinstance(rng, list) and len(rng) == 2 and 0 < rng[0] < rng[1] and all(map(math.isfinite, rng))):
            raise ParameterError(f"{label}: coupling_range must be [low, high] with 0 < low < high")
    return Variant(name, info["title"], info["hypothesis"], info["support"], ps, spec, coupling,
                   tuple(float(x) for x in rng) if coupling is not None else None)
