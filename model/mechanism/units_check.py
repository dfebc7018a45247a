"""Dimensional and scale check of every term of the mechanism against the declared units.

Each symbol stands for one unit of its declared unit; numbers are dimensionless. Every sum must add terms
whose units convert to each other with factor 1 (so ``mL/day`` plus ``L/day`` fails, not only ``mL`` plus
``day``); powers with a symbolic exponent and the arguments of ``exp``/``log`` must be dimensionless; and each
rate must come out in ``state unit / day``. A failure raises :class:`UnitError` naming the equation and term.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pint
import sympy as sp

from il2als.errors import UnitError
from il2als.inputs.units import Q_

if TYPE_CHECKING:
    from .core import Mechanism

_ONE = Q_(1.0, "")


def _same_scale(a: pint.Quantity, b: pint.Quantity) -> bool:
    try:
        f = (a / b).to("").magnitude
    except pint.DimensionalityError:
        return False
    return abs(f - 1.0) < 1e-9


def unit_of(formula: sp.Expr, units: dict[str, pint.Quantity], where: str) -> pint.Quantity:
    """The unit (as a Quantity of magnitude 1) of ``formula``; raises :class:`UnitError` on an inconsistency."""
    if formula.is_Symbol:
        if formula.name not in units:
            raise UnitError(f"{where}: symbol '{formula.name}' has no declared unit")
        return units[formula.name]
    if formula.is_Number:
        return _ONE
    if formula.is_Add:
        terms = [(a, unit_of(a, units, where)) for a in formula.args]
        a0, u0 = terms[0]
        for a, u in terms[1:]:
            if not _same_scale(u, u0):
                raise UnitError(
                    f"{where}: term '{a}' is in {u.units:~} but term '{a0}' is in {u0.units:~}; "
                    "terms of a sum must share one unit"
                )
        return u0
    if formula.is_Mul:
        out = _ONE
        for a in formula.args:
            out = out * unit_of(a, units, where)
        return out
    if formula.is_Pow:
        base, exp = formula.args
        ub = unit_of(base, units, where)
        if exp.is_Number:
            return ub ** float(exp)
        ue = unit_of(exp, units, where)
        for part, u in (("base", ub), ("exponent", ue)):
            if not _same_scale(u, _ONE):
                raise UnitError(f"{where}: {part} of '{formula}' is in {u.units:~}; a symbolic power needs dimensionless operands")
        return _ONE
    if isinstance(formula, sp.Function):
        for a in formula.args:
            u = unit_of(a, units, where)
            if not _same_scale(u, _ONE):
                raise UnitError(f"{where}: argument of '{formula}' is in {u.units:~}; it must be dimensionless")
        return _ONE
    raise UnitError(f"{where}: cannot check the units of '{formula}' ({type(formula).__name__})")


def check_units(mech: "Mechanism") -> None:
    """Check every expression, rate and initial value of ``mech``; raise :class:`UnitError` at the first fault."""
    units: dict[str, pint.Quantity] = {"t": Q_(1.0, "day")}
    for group in (mech.states, mech.parameters, mech.expressions):
        for it in group:
            try:
                units[it.name] = Q_(1.0, it.unit)
            except Exception as exc:
                raise UnitError(f"'{it.name}' declares unit '{it.unit}', which pint cannot read ({exc})") from None
    for e in mech.expressions:
        got = unit_of(e.formula, units, f"expression {e.name}")
        if not _same_scale(got, units[e.name]):
            raise UnitError(f"expression {e.name} = {e.formula} comes out in {got.units:~}, but is declared in {e.unit}")
    for s in mech.states:
        want = units[s.name] / Q_(1.0, "day")
        where = f"d{s.name}/dt"
        rate = mech.rates[s.name]
        got = unit_of(rate, units, where)
        if not _same_scale(got, want):
            raise UnitError(f"{where} = {rate} comes out in {got.units:~}, but must be in {want.units:~}")
        if s.baseline == "fixed":
            got = unit_of(s.initial, units, f"initial {s.name}")
            if not (s.initial == 0 or _same_scale(got, units[s.name])):
                raise UnitError(f"initial value of {s.name} is in {got.units:~}, but the state is in {s.unit}")
    for r in mech.dose_routes:
        got = unit_of(r.scale, units, f"scale of dose route {r.name}") * Q_(1.0, "IU")
        if not _same_scale(got, units[r.state]):
            raise UnitError(f"dose route {r.name}: scale x IU comes out in {got.units:~}, but {r.state} is in "
                            f"{units[r.state].units:~}")
        for n in (r.bioavailability, r.lag):
            if n and n not in units:
                raise UnitError(f"dose route {r.name} names '{n}', which is not a parameter")
        if r.lag and not _same_scale(units[r.lag], Q_(1.0, "day")):
            raise UnitError(f"dose route {r.name}: lag '{r.lag}' must be in days")
