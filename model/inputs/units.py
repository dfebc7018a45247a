"""The package's single pint registry and the conversions at its boundaries.

Canonical units inside the solver are the units declared by the mechanism (days, IU, mL, pg, cells ...);
everything that enters or leaves the package is a pint Quantity or a string pint can parse.

* ``IU`` (international unit of IL-2 activity) has its own dimension ``[activity]``; ``MIU`` is mega-IU.
* Aldesleukin mass and activity convert through the ``aldesleukin`` context (16.4 MIU/mg by default,
  Proleukin label), overridable: ``q.to("MIU", "aldesleukin", specific_activity=...)``.
* ``cell`` counts cells (dimension ``[cell]``), so ``cells/uL`` is a concentration of cells.
* Doses per body-surface area (``MIU/m**2``) are resolved with a patient's BSA by :func:`dose_to_iu`.
"""

from __future__ import annotations

import math
import re

import pint

from il2als.errors import UnitError

__all__ = ["ureg", "Q_", "ALDESLEUKIN_SPECIFIC_ACTIVITY", "ACTIVITY", "MASS", "ACTIVITY_PER_AREA", "MASS_PER_AREA",
           "TIME", "VOCABULARY", "SPELLINGS", "parse_unit", "quantity", "to_unit", "dose_to_iu", "unit_label"]

def _registry() -> pint.UnitRegistry:
    """pint's registry, its parsed definitions cached on disk (10 ms instead of 100 ms per process); without a
    writable cache folder, parsed afresh (the same registry, only slower)."""
    from il2als._cache import cache_root

    try:
        folder = cache_root() / "pint"
        folder.mkdir(parents=True, exist_ok=True)
        return pint.UnitRegistry(autoconvert_offset_to_baseunit=True, cache_folder=folder)
    except Exception:  # an unwritable or corrupt cache must not stop a run
        return pint.UnitRegistry(autoconvert_offset_to_baseunit=True)


ureg = _registry()
ureg.define("international_unit = [activity] = IU")
ureg.define("cell = [cell] = cells")
ureg.define("alsfrs_point = [] = points")  # one point of the ALSFRS-R scale (0-48), dimensionless
ureg.formatter.default_format = "~"
Q_ = ureg.Quantity
_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"

#: Proleukin label: 18 MIU per 1.1 mg after reconstitution.
ALDESLEUKIN_SPECIFIC_ACTIVITY = Q_(16.4, "MIU/mg")

_ald = pint.Context("aldesleukin", defaults={"specific_activity": ALDESLEUKIN_SPECIFIC_ACTIVITY})
_ald.add_transformation("[mass]", "[activity]", lambda ureg, x, specific_activity: x * specific_activity)
_ald.add_transformation("[activity]", "[mass]", lambda ureg, x, specific_activity: x / specific_activity)
ureg.add_context(_ald)

ACTIVITY = ureg.IU.dimensionality
MASS = ureg.gram.dimensionality
ACTIVITY_PER_AREA = (ureg.IU / ureg.meter**2).dimensionality
MASS_PER_AREA = (ureg.gram / ureg.meter**2).dimensionality
TIME = ureg.day.dimensionality


#: The units il2als reads: every unit in a quantity or a column header must be one of these, with a decimal SI
#: prefix or none. Anything else is refused rather than read as something unintended (pint reads 'Miu' as
#: mebi-atomic-mass-units, 'kat' as an enzyme activity).
VOCABULARY = frozenset({"international_unit", "gram", "liter", "meter", "second", "minute", "hour", "day", "week",
                        "month", "year", "cell", "alsfrs_point", "percent", "dimensionless"})
_DECIMAL_PREFIXES = frozenset({"", "pico", "nano", "micro", "milli", "centi", "deci", "kilo", "mega", "giga", "femto"})
#: Spellings offered as corrections (case-insensitive) when a unit is refused.
SPELLINGS = ("IU", "kIU", "MIU", "MIU/m**2", "IU/m**2", "ug", "mg", "mg/m**2", "ug/m**2", "g", "kg", "m**2", "h",
             "hour", "min", "s", "day", "week", "month", "year", "mL", "L", "uL", "pg/mL", "ng/mL", "IU/mL",
             "cells/uL", "percent", "points", "points/month", "1/day", "1/year")


def _suggest(token: str) -> str:
    import difflib

    low = {s.lower(): s for s in SPELLINGS}
    t = token.strip().lower().replace("m2", "m**2").replace("^2", "**2")
    if t in low:
        return f"; did you mean '{low[t]}'?"
    close = difflib.get_close_matches(t, list(low), n=1, cutoff=0.6)
    return (f"; did you mean '{low[close[0]]}'?" if close else
            "; write a number and a unit il2als knows, e.g. '2 MIU', '122 ug', '0.3 MIU/m**2', '6 h' or '18 month'")


def _check_vocabulary(units: pint.Unit, text: str, what: str, error: type[Exception] = UnitError) -> None:
    for name in units._units:
        parsed = ureg.parse_unit_name(name)
        prefix, base = (parsed[0][0], parsed[0][1]) if parsed else ("", name)
        if base not in VOCABULARY or prefix not in _DECIMAL_PREFIXES:
            raise error(f"{what}: unit '{text}' reads as '{name}', which is not a unit il2als works in"
                            f"{_suggest(text)}")


def parse_unit(text: object, what: str = "unit", error: type[Exception] = UnitError) -> pint.Unit:
    """Parse a unit string (a column header's unit, a parameter file's ``unit``) strictly.

    Raises
    ------
    UnitError
        When the string is not a unit, or uses a unit outside :data:`VOCABULARY` (with a suggested spelling).
    """
    s = str(text).strip()
    if s in ("", "1", "dimensionless"):
        return ureg.dimensionless
    try:
        u = ureg.Unit(s)
    except Exception:  # pint raises several types (UndefinedUnitError, DefinitionSyntaxError, ValueError ...)
        raise error(f"{what}: '{s}' is not a unit{_suggest(s)}") from None
    _check_vocabulary(u, s, what, error)
    return u


def quantity(value: object, what: str = "value") -> pint.Quantity:
    """Parse ``value`` (a Quantity, or a string such as ``"2 MIU"``) into a Quantity of this registry."""
    if isinstance(value, pint.Quantity):
        if value._REGISTRY is not ureg:
            value = Q_(value.magnitude, str(value.units))
        return value
    if isinstance(value, str):
        text = value.strip()
        unit = re.sub(rf"^\s*(?:{_NUMBER})\s*", "", text)  # the unit part, for the checks and the suggestion
        if not text:
            raise UnitError(f"{what}: empty; give a number with a unit, e.g. '2 MIU'")
        try:
            q = ureg.Quantity(text)
        except Exception as exc:  # pint raises several types (UndefinedUnitError, DefinitionSyntaxError, ...)
            raise UnitError(f"{what}: cannot read '{value}' as a quantity ({exc}){_suggest(unit)}") from None
        if not isinstance(q, pint.Quantity):
            q = Q_(q, "")
        _check_vocabulary(q.units, unit or text, what)
        return q
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        raise UnitError(f"{what}: {value!r} has no unit; give a quantity with a unit, e.g. '{value} day'")
    raise UnitError(f"{what}: expected a quantity with a unit, got {type(value).__name__}")


def to_unit(value: object, unit: str, what: str = "value") -> float:
    """Convert ``value`` to a plain float in ``unit``; a wrong dimension raises :class:`UnitError`."""
    q = quantity(value, what)
    try:
        m = q.to(unit).magnitude
    except pint.DimensionalityError:
        raise UnitError(
            f"{what}: '{q:~}' has dimension {q.dimensionality} but must be convertible to '{unit}'"
        ) from None
    m = float(m)
    if math.isnan(m):
        raise UnitError(f"{what}: is NaN; give a finite number")
    return m


def dose_to_iu(
    amount: pint.Quantity,
    *,
    body_surface_area: pint.Quantity | None = None,
    specific_activity: pint.Quantity = ALDESLEUKIN_SPECIFIC_ACTIVITY,
) -> float:
    """Return a dose in IU from an activity (IU, MIU), a mass (ug, mg) or a per-area amount (MIU/m**2).

    Mass converts with ``specific_activity`` (default 16.4 MIU/mg, Proleukin label); per-area amounts need
    ``body_surface_area``.
    """
    q = quantity(amount, "dose amount")
    dim = q.dimensionality
    if dim in (ACTIVITY_PER_AREA, MASS_PER_AREA):
        if body_surface_area is None:
            raise UnitError(f"dose '{q:~}' is per body-surface area; give the patient's body_surface_area (e.g. '1.9 m**2')")
        q = q * quantity(body_surface_area, "body_surface_area")
        dim = q.dimensionality
    if dim == ACTIVITY:
        return float(q.to("IU").magnitude)
    if dim == MASS:
        return float(q.to("IU", "aldesleukin", specific_activity=quantity(specific_activity)).magnitude)
    raise UnitError(
        f"dose '{q:~}' has dimension {q.dimensionality}; a dose is an activity (IU, MIU), a mass of aldesleukin "
        "(ug, mg) or an amount per area (MIU/m**2)"
    )


def unit_label(unit: str) -> str:
    """Label for a column header: the declared unit as written, '1' for dimensionless, '%' for percent."""
    if unit in ("", "dimensionless", "1"):
        return "1"
    return _LABELS.get(unit, unit.replace("percent", "%"))


_LABELS = {"percent": "%", "alsfrs_point": "points", "alsfrs_point/month": "points/month"}
