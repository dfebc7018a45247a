"""Competing hypotheses of why IL-2LD helps slow and not fast ALS, as named variants of one mechanism.

A variant is a parameter file in ``params/variants/`` (``base = "calibrated"``: the literature-only set) that
switches parts of the one symbolic mechanism on or off through its parameters, plus an optional
``[population]`` table that changes the virtual population's spreads or correlations (the part of a hypothesis
about how patients differ; carried by the parameter set, see :meth:`il2als.inputs.population_spec.PopulationSpec.centred_on`),
and a ``[variant]`` table that says what the hypothesis is, its literature support, and which coupling
parameters (at most two, each with bounds) the trial-informed step may fit. Variants never copy the
mechanism; they are values.
"""

from __future__ import annotations

import math
import tomllib
import warnings
from dataclasses import dataclass, replace
from importlib import resources

from il2als.errors import ParameterError, did_you_mean
from il2als.inputs.parameters import ParameterSet, PlausibilityWarning, load_parameters
from il2als.inputs.population_spec import PopulationSpec, load_population_spec

__all__ = ["Variant", "VARIANTS", "MAX_COUPLINGS", "load_variant", "trial_informed"]

#: The shipped variants, in the order tables list them.
VARIANTS = ("restorable", "refractory", "time_to_benefit", "null")
#: The trial gives one number (a hazard ratio); a variant may fit at most two parameters to it.
MAX_COUPLINGS = 2


@dataclass(frozen=True)
class Variant:
    """A hypothesis: its parameter set, its population, what it claims and what the trial may fit."""

    name: str
    title: str
    hypothesis: str
    support: str
    params: ParameterSet
    spec: PopulationSpec
    couplings: tuple[str, ...]  # the parameters the trial-informed step fits (empty: nothing to fit)
    bounds: tuple[tuple[float, float], ...]  # (low, high) per coupling, canonical units

    @property
    def coupling(self) -> str | None:
        """The first coupling parameter (None for a variant with nothing to fit)."""
        return self.couplings[0] if self.couplings else None

    def with_couplings(self, **values: float) -> "Variant":
        """This variant with coupling parameters at ``values`` (canonical units), population centred on it.

        For the Treg -> microglia coupling the natural history is held: the resolution rate without Tregs is
        rescaled so that the centre's baseline resolution, ``k_r (1 + gain F T / T_ref)``, stays what the
        literature calibration gave. The coupling then changes only how strongly activation responds to a *change*
        in functional Tregs, and every natural-history target stays as calibrated. The Treg-function ceiling
        acts only under IL-2 and needs no such hold."""
        from il2als.compiler.codegen import default_model
        from il2als.solve.single import baseline_state

        unknown = [k for k in values if k not in self.couplings]
        if unknown:
            raise ParameterError(f"variant '{self.name}' cannot set '{unknown[0]}': its couplings are "
                                 f"{', '.join(self.couplings) or 'none'}")
        changes = {}
        for k, value in values.items():
            unit = self.params.get(k).unit
            changes[k] = f"{float(value)!r} {unit}" if unit != "dimensionless" else f"{float(value)!r}"
        if "treg_suppression_gain" in values:
            m = default_model()
            y = baseline_state(self.params.vector(m), m)
            tf = y[m.state_index("treg_suppressive_function")] * y[m.state_index("treg")] / self.params.value("treg_reference")
            s_old = self.params.value("treg_suppression_gain") * tf
            kr = float(self.params.value("k_microglia_resolution") * (1 + s_old)
                       / (1 + float(values["treg_suppression_gain"]) * tf))
            changes["k_microglia_resolution"] = f"{kr!r} 1/day"
        label = ",".join(f"{k}={v:.4g}" for k, v in values.items())
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", PlausibilityWarning)
            ps = self.params.updated(name=f"{self.params.name}@{label}", **changes)
        return replace(self, params=ps, spec=self.spec.centred_on(ps))

    def with_coupling(self, value: float) -> "Variant":
        """This variant with its first coupling parameter at ``value`` (see :meth:`with_couplings`)."""
        if self.coupling is None:
            raise ParameterError(f"variant '{self.name}' has no coupling parameter to set")
        return self.with_couplings(**{self.coupling: value})


def _variant_path(name: str):
    path = resources.files("il2als.params") / "variants" / f"{name}.toml"
    if not path.is_file():
        raise ParameterError(f"unknown variant '{name}'{did_you_mean(name, VARIANTS)}")
    return path


def load_variant(name: str) -> Variant:
    """Load a shipped variant by name (see :data:`VARIANTS`)."""
    path = _variant_path(name)
    label = f"params/variants/{name}.toml"
    info = tomllib.loads(path.read_text(encoding="utf-8")).get("variant", {})
    for key in ("title", "hypothesis", "support"):
        if not isinstance(info.get(key), str):
            raise ParameterError(f"{label}: [variant] needs '{key}' (text)")
    with warnings.catch_warnings():  # a variant may move values outside the calibrated set's plausible ranges
        warnings.simplefilter("ignore", PlausibilityWarning)
        ps = load_parameters(str(path))
    spec = load_population_spec().centred_on(ps)
    table = info.get("couplings", {})
    if not isinstance(table, dict) or len(table) > MAX_COUPLINGS:
        raise ParameterError(f"{label}: [variant.couplings] maps at most {MAX_COUPLINGS} parameter names to "
                             "[low, high] bounds")
    bounds = []
    for k, rng in table.items():
        ps.get(k)
        if not (isinstance(rng, list) and len(rng) == 2 and all(isinstance(x, (int, float)) for x in rng)
                and 0 < rng[0] < rng[1] and all(map(math.isfinite, rng))):
            raise ParameterError(f"{label}: coupling {k} bounds must be [low, high] with 0 < low < high")
        bounds.append((float(rng[0]), float(rng[1])))
    return Variant(name, info["title"], info["hypothesis"], info["support"], ps, spec, tuple(table), tuple(bounds))


def trial_informed(params: str = "mirocals-informed") -> dict[str, object]:
    """What a trial-informed parameter set records about its fit (its ``[trial_informed]`` table): the variant
    it belongs to, and as :class:`Variant` objects every variant at its fitted couplings (``fits``) and the
    chosen variant at the weakest couplings the trial allows (``weak_end``, None if not recorded)."""
    from il2als.inputs.parameters import _resolve

    label, text = _resolve(params)
    table = tomllib.loads(text).get("trial_informed")
    if not isinstance(table, dict) or not isinstance(table.get("variant"), str):
        raise ParameterError(f"{label}: no [trial_informed] table naming its variant; give a set written by "
                             "experiments/learn_and_confirm.py --write-params")
    fits = {}
    for name, values in (table.get("fits") or {}).items():
        fits[name] = load_variant(name).with_couplings(**{k: float(v) for k, v in values.items()})
    weak = table.get("weak_end")
    chosen = table["variant"]
    return {"variant": chosen, "fits": fits, "intervals": table.get("intervals", {}),
            "weak_end": load_variant(chosen).with_couplings(**{k: float(v) for k, v in weak.items()}) if weak else None}
