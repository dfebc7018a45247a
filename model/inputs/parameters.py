"""Parameter sets: values with units, sources and plausible ranges, read from TOML and checked.

A parameter file holds ``[meta]`` (name, title, optional ``base`` to derive from another set),
``[references]`` (key = full citation) and ``[parameters]``, one inline table per parameter::

    clearance = { value = 120, unit = "mL/min", range = [60, 240], source = "Konrad1990",
                  description = "linear plasma clearance of IL-2", note = "mainly renal" }

An optional ``[population]`` table (``omega``, ``factor``, ``correlations`` sub-tables, as in
``params/population.toml``) is the part of a hypothesis about how patients differ: a virtual population
centred on the set adopts it (:meth:`il2als.inputs.population_spec.PopulationSpec.centred_on`).

``source`` is a reference key, or text starting ``assumed:``, ``derived:`` or ``calibrated:`` that says why.
Loading rejects unknown or missing names, unparseable or wrong-dimension units, non-finite values and values
outside the physical bounds declared by the mechanism (one-line :class:`ParameterError`); a value outside its
plausible range only warns.
"""

from __future__ import annotations

import math
import tomllib
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING

import numpy as np
import pint

from il2als.errors import ParameterError, did_you_mean
from il2als.inputs.textfiles import read_text
from il2als.inputs.units import Q_, parse_unit, quantity

if TYPE_CHECKING:
    from il2als.compiler.codegen import CompiledModel

__all__ = ["SOURCE_PREFIXES", "PROFILES", "PlausibilityWarning", "ParameterValue", "ParameterSet", "available",
           "load_parameters"]


def _default_model() -> "CompiledModel":
    """The package's compiled model, imported on first need (listing parameter sets needs no sympy)."""
    from il2als.compiler.codegen import default_model

    return default_model()

SOURCE_PREFIXES = ("assumed:", "derived:", "calibrated:")
PROFILES = ("slow", "fast")


class PlausibilityWarning(UserWarning):
    """A parameter lies outside its plausible range (but within physical bounds)."""


@dataclass(frozen=True)
class ParameterValue:
    """One parameter's value: ``value`` in the mechanism's canonical ``unit``; ``given`` as written."""

    name: str
    value: float
    unit: str
    given: str
    source: str
    plausible: tuple[float, float]
    description: str = ""
    note: str = ""

    @property
    def quantity(self) -> pint.Quantity:
        return Q_(self.value, self.unit)


@dataclass(frozen=True)
class ParameterSet:
    """A complete, checked parameter set for the compiled model (frozen; derive variants with :meth:`updated`)."""

    name: str
    values: Mapping[str, ParameterValue]
    references: Mapping[str, str] = field(default_factory=dict)
    title: str = ""
    files: tuple[str, ...] = ()
    #: population adjustments carried by the set: {"omega": {name: sd}, "factor": {...}, "correlations": {"a,b": r}}
    population: Mapping[str, Mapping[str, float]] = field(default_factory=dict)

    def __getitem__(self, name: str) -> pint.Quantity:
        return self.get(name).quantity

    # Read-only mappings do not pickle; process pools and Dask workers need to ship parameter sets.
    def __getstate__(self) -> dict:
        return {**self.__dict__, "values": dict(self.values), "references": dict(self.references)}

    def __setstate__(self, state: dict) -> None:
        for k, v in state.items():
            object.__setattr__(self, k, MappingProxyType(v) if k in ("values", "references") else v)

    def get(self, name: str) -> ParameterValue:
        try:
            return self.values[name]
        except KeyError:
            raise ParameterError(f"unknown parameter '{name}'{did_you_mean(name, self.values)}") from None

    def value(self, name: str) -> float:
        """Canonical plain value of ``name``."""
        return self.get(name).value

    def vector(self, model: CompiledModel | None = None) -> np.ndarray:
        """Values in the model's parameter order and canonical units, shape ``(n_parameters,)``."""
        model = model or _default_model()
        return np.array([self.values[n].value for n in model.parameter_names], dtype=float)

    def updated(self, name: str | None = None, **changes: object) -> "ParameterSet":
        """A copy with some values changed: ``ps.updated(clearance="100 mL/min")`` (units required)."""
        model = _default_model()
        vals = dict(self.values)
        for key, val in changes.items():
            old = self.get(key)
            p = model.card.parameter(key)
            q = quantity(val, f"parameter {key}")
            vals[key] = replace(old, value=_convert(key, q, p.unit), given=f"{q:~}", source="user: set by the caller")
            _check_bounds(vals[key], p)
        return replace(self, name=name or self.name, values=MappingProxyType(vals))

    def with_vector(self, vector: np.ndarray, name: str | None = None, source: str = "user: from a vector") -> "ParameterSet":
        """A copy whose values are ``vector`` (canonical units, model order), e.g. a virtual patient."""
        model = _default_model()
        vector = np.asarray(vector, dtype=float)
        if vector.shape != (len(model.parameter_names),) or not np.all(np.isfinite(vector)):
            raise ParameterError(f"parameter vector must be {len(model.parameter_names)} finite numbers in model order")
        vals = {n: (self.values[n] if self.values[n].value == v else
                    replace(self.values[n], value=float(v), given=f"{v:g} {self.values[n].unit}", source=source))
                for n, v in zip(model.parameter_names, vector)}
        return replace(self, name=name or self.name, values=MappingProxyType(vals))

    def with_profile(self, profile: str) -> "ParameterSet":
        """This set with a profile's deltas on the default set applied (e.g. the ``fast`` patient on a
        calibrated or fitted base)."""
        prof, default = load_parameters(profile), load_parameters("default")
        delta = {n: v.value for n, v in prof.values.items() if default.values[n] != v}
        return self.with_vector(np.array([delta.get(n, v.value) for n, v in self.values.items()]),
                                name=f"{self.name}+{profile}")

    def profiles(self) -> dict[str, "ParameterSet"]:
        """This set as ``default`` with the ``slow`` and ``fast`` profiles applied to it: the three sets the
        calibration targets are stated for."""
        return {"default": self, "slow": self.with_profile("slow"), "fast": self.with_profile("fast")}

    def cited(self) -> dict[str, str]:
        """The references behind the values of this set (key -> citation), in first-use order."""
        out: dict[str, str] = {}
        for v in self.values.values():
            for key in _source_keys(v.source):
                if key in self.references:
                    out.setdefault(key, self.references[key])
        return out

    def table(self) -> list[dict[str, object]]:
        """Rows for display: name, value, unit, plausible range, source, description."""
        return [
            {"name": v.name, "value": v.value, "unit": v.unit, "given": v.given, "range": v.plausible,
             "source": v.source, "description": v.description}
            for v in self.values.values()
        ]


def _source_keys(source: str) -> list[str]:
    if source.startswith(SOURCE_PREFIXES) or source.startswith("user:"):
        return []
    return [s.strip() for s in source.replace(";", ",").split(",") if s.strip()]


def _convert(name: str, q: pint.Quantity, unit: str) -> float:
    try:
        v = float(q.to(unit).magnitude)
    except pint.DimensionalityError:
        raise ParameterError(
            f"parameter {name}: '{q:~}' has dimension {q.dimensionality}; it must be convertible to '{unit}'"
        ) from None
    if not math.isfinite(v):
        raise ParameterError(f"parameter {name}: value {v} is not finite; give a finite number")
    return v


def _check_bounds(v: ParameterValue, p) -> None:
    if not (p.lower <= v.value <= p.upper):
        raise ParameterError(
            f"parameter {v.name} = {v.given} is non-physical: it must lie in [{p.lower:g}, {p.upper:g}] {p.unit}"
        )
    lo, hi = v.plausible
    if not (lo <= v.value <= hi):
        warnings.warn(
            f"parameter {v.name} = {v.given} is outside its plausible range [{lo:g}, {hi:g}] {v.unit}",
            PlausibilityWarning,
            stacklevel=3,
        )


def _read_toml(path: Path | str, text: str | None = None) -> dict:
    try:
        if text is None:
            text = Path(path).read_text(encoding="utf-8")
        return tomllib.loads(text)
    except FileNotFoundError:
        raise ParameterError(f"parameter file '{path}' not found; give an existing file, or a name: {', '.join(available())}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ParameterError(f"parameter file '{path}' is not valid TOML ({exc}); fix the syntax") from None
    except UnicodeDecodeError:
        raise ParameterError(f"parameter file '{path}' is not UTF-8 text; give a TOML file") from None


def _parse_entries(path: str, data: dict, model: CompiledModel) -> dict[str, ParameterValue]:
    table = data.get("parameters")
    if not isinstance(table, dict):
        raise ParameterError(f"{path}: no [parameters] table; add one with an entry per parameter")
    known = set(model.parameter_names)
    out = {}
    for name, entry in table.items():
        if name not in known:
            raise ParameterError(f"{path}: unknown parameter '{name}'{did_you_mean(name, known)}")
        if not isinstance(entry, dict):
            raise ParameterError(f"{path}: parameter {name} must be a table {{ value = ..., unit = ..., source = ... }}")
        extra = set(entry) - {"value", "unit", "range", "source", "description", "note"}
        if extra:
            field_ = sorted(extra)[0]
            raise ParameterError(
                f"{path}: parameter {name} has unknown field '{field_}'"
                f"{did_you_mean(field_, ['value', 'unit', 'range', 'source', 'description', 'note'])}"
            )
        for req in ("value", "unit", "source"):
            if req not in entry:
                raise ParameterError(f"{path}: parameter {name} is missing '{req}'; every parameter needs value, unit and source")
        val, unit = entry["value"], entry["unit"]
        if not isinstance(val, (int, float)) or isinstance(val, bool):
            raise ParameterError(f"{path}: parameter {name} value {val!r} is not a number")
        if not math.isfinite(val):
            raise ParameterError(f"{path}: parameter {name} value {val} is not finite; give a finite number")
        u = parse_unit(unit, f"{path}: parameter {name} unit", ParameterError)
        p = model.card.parameter(name)
        q = Q_(float(val), u)
        value = _convert(name, q, p.unit)
        rng = entry.get("range")
        if rng is None:
            raise ParameterError(f"{path}: parameter {name} has no plausible 'range = [low, high]' (in {unit}); add one")
        if (not isinstance(rng, list) or len(rng) != 2
                or not all(isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) for x in rng)
                or rng[0] > rng[1]):
            raise ParameterError(f"{path}: parameter {name} range {rng!r} must be [low, high], two finite numbers "
                                 "with low <= high")
        plaus = (_convert(name, Q_(float(rng[0]), u), p.unit), _convert(name, Q_(float(rng[1]), u), p.unit))
        source = str(entry["source"]).strip()
        if not source:
            raise ParameterError(f"{path}: parameter {name} has an empty source; cite a reference key or write 'assumed: why'")
        out[name] = ParameterValue(name, value, p.unit, f"{q:~}", source, plaus, entry.get("description", p.description),
                                   entry.get("note", ""))
    return out


def _params_dir() -> resources.abc.Traversable:
    return resources.files("il2als.params")


def available() -> list[str]:
    """Names of the shipped parameter sets and profiles.

    Returns
    -------
    list of str
        ``default`` (the calibrated set), ``calibrated``, ``mirocals-informed``, ``handset``, the profiles ``slow`` and
        ``fast``, and the variants.
    """
    d = _params_dir()
    names = sorted(p.name[:-5] for p in d.iterdir() if p.name.endswith(".toml") and p.name != "population.toml")
    return ["default"] + [n for n in names if n != "default"] + list(PROFILES)


def _is_path(s: str) -> bool:
    return s.endswith(".toml") or "/" in s or "\\" in s


def _resolve(spec: str | Path) -> tuple[str, str]:
    """(label, text) of a parameter file given by name, profile name or path."""
    s = str(spec)
    if _is_path(s):
        return s, read_text(s, "parameter file", f"an existing TOML file, or a name: {', '.join(available())}",
                            ParameterError)
    d = _params_dir()
    if s == "default":
        # the default set is the calibrated one once it exists, else the hand-set one
        s = "calibrated" if (d / "calibrated.toml").is_file() else "handset"
        if not (d / f"{s}.toml").is_file():
            s = "default"
    for cand in (d / f"{s}.toml", d / "profiles" / f"{s}.toml"):
        if cand.is_file():
            return f"params/{'profiles/' if 'profiles' in str(cand) else ''}{s}.toml", cand.read_text(encoding="utf-8")
    raise ParameterError(f"unknown parameter set '{s}'{did_you_mean(s, available())}; or give a path to a .toml file")


def load_parameters(spec: str | Path = "default", model: CompiledModel | None = None, _depth: int = 0) -> ParameterSet:
    """Load a parameter set by name or from a TOML file.

    A file with ``base = "..."`` in ``[meta]`` overrides that set; otherwise it must give every parameter. Every
    value is checked for its unit (against the mechanism's) and its source; a value outside its plausible range
    warns (:class:`PlausibilityWarning`).

    Parameters
    ----------
    spec : str or Path
        ``default``, ``slow``, ``fast``, ``calibrated``, ``mirocals-informed``, ... (see :func:`available`), or a path.
    model : CompiledModel, optional
        The compiled model whose parameters the set must give (default: the package's).

    Returns
    -------
    ParameterSet
        Frozen: values in canonical units, sources, plausible ranges; ``cited()`` lists the references.
    """
    model = model or _default_model()
    if _depth > 5:
        raise ParameterError(f"parameter set '{spec}': 'base' chain is too deep or circular; fix [meta] base")
    label, text = _resolve(spec)
    data = _read_toml(label, text)
    meta = data.get("meta", {})
    if not isinstance(meta, dict):
        raise ParameterError(f"{label}: [meta] must be a table")
    population = _population_table(label, data.get("population", {}))
    refs = data.get("references", {})
    if not isinstance(refs, dict) or not all(isinstance(v, str) for v in refs.values()):
        raise ParameterError(f"{label}: [references] must map keys to citation strings")
    entries = _parse_entries(label, data, model)
    base_name = meta.get("base")
    files: tuple[str, ...] = (label,)
    if base_name is not None and (not isinstance(base_name, str) or not base_name.strip()):
        raise ParameterError(f"{label}: [meta] base must be a parameter set name or a file path, e.g. base = \"default\"")
    if base_name and _is_path(base_name) and not Path(base_name).is_absolute() and _is_path(label):
        base_name = str(Path(label).parent / base_name)  # a relative base is relative to the file naming it
    if base_name:
        base = load_parameters(base_name, model, _depth + 1)
        merged = dict(base.values)
        merged.update(entries)
        entries = merged
        refs = {**base.references, **refs}
        files = base.files + files
        population = {k: {**base.population.get(k, {}), **population.get(k, {})}
                      for k in ("omega", "factor", "correlations") if k in base.population or k in population}
    missing = [n for n in model.parameter_names if n not in entries]
    if missing:
        raise ParameterError(f"{label}: missing parameter(s) {', '.join(missing)}; give each, or set [meta] base = \"default\"")
    for v in entries.values():
        for key in _source_keys(v.source):
            if key not in refs:
                raise ParameterError(
                    f"{label}: parameter {v.name} cites '{key}', which is not in [references]; add it or write 'assumed: why'"
                )
    ordered = {n: entries[n] for n in model.parameter_names}
    for n, v in ordered.items():
        _check_bounds(v, model.card.parameter(n))
    name = str(meta.get("name", Path(label).stem))
    return ParameterSet(name, MappingProxyType(ordered), MappingProxyType(dict(refs)), str(meta.get("title", "")), files,
                        population)


def _population_table(label: str, table: object) -> dict[str, dict[str, float]]:
    """The ``[population]`` table's shape: sub-tables of numbers (names and ranges are checked where a
    population is built on the set, :meth:`il2als.inputs.population_spec.PopulationSpec.centred_on`)."""
    if not isinstance(table, dict):
        raise ParameterError(f"{label}: [population] must be a table with omega, factor or correlations sub-tables")
    out: dict[str, dict[str, float]] = {}
    for key, sub in table.items():
        if key not in ("omega", "factor", "correlations"):
            raise ParameterError(f"{label}: [population] has unknown table '{key}'"
                                 f"{did_you_mean(key, ['omega', 'factor', 'correlations'])}")
        if not isinstance(sub, dict) or not all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                                and math.isfinite(v) for v in sub.values()):
            raise ParameterError(f"{label}: [population.{key}] must map names to finite numbers")
        out[key] = {str(k): float(v) for k, v in sub.items()}
    return out


