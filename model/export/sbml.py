"""SBML Level 3 Version 2 export, generated from the symbolic mechanism (never a hand-written copy).

What the document holds:

* each state as a non-constant parameter with a rate rule, the module's own rate law (parameters, not species,
  because SBML restricts species units to amounts and the states here are concentrations, cells/uL and scores);
* each named expression as a non-constant parameter with an assignment rule (observables among them);
* each mechanism parameter as a constant parameter, value and unit from the parameter set;
* the regimen as dose slots: parameters ``dose_<k>_time`` [day] and ``dose_<k>_amount`` [IU] and an event
  that adds ``bioavailability * dose_<k>_amount`` to the depot at ``dose_<k>_time + absorption_lag``;
* the patient's baseline (the model's own steady state) as initial amounts; states whose baseline is fixed by
  an expression of the parameters (the reserve at entry) also get that expression as an initial assignment;
* ``hold_fixed_states`` (0 by default): at 1 the fixed states stop moving, so that a simulator's steady-state
  pre-equilibration (PEtab's ``preequilibrationConditionId``) reproduces il2als's baseline definition;
* units as SBML unit definitions (pint decomposition; IU and cells map to ``item``), and for every element an
  annotation naming its module, its il2als unit and kind, plus its description as notes.

Needs ``python-libsbml`` (``pip install "il2als[formats]"``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from html import escape

import sympy as sp
from sympy.printing.str import StrPrinter

from il2als.compiler.codegen import CompiledModel, default_model
from il2als.errors import Il2alsError
from il2als.inputs.parameters import ParameterSet
from il2als.inputs.regimens import Regimen
from il2als.inputs.units import ureg
from il2als.solve.single import baseline_state

__all__ = ["ANNOTATION_NS", "HOLD", "formula", "unit_id", "SbmlExport", "to_sbml"]

ANNOTATION_NS = "https://il2als.org/ns/sbml"
HOLD = "hold_fixed_states"
_SBML_KIND = {"meter": "metre", "gram": "gram", "second": "second", "international_unit": "item", "cell": "item"}


def _libsbml():
    try:
        import libsbml
    except ImportError:  # pragma: no cover - exercised only without the optional dependency
        raise Il2alsError("SBML needs python-libsbml; install it with: pip install python-libsbml") from None
    return libsbml


class _L3Printer(StrPrinter):
    """Infix text that libSBML's L3 formula parser reads: pow(), exp(), time, full-precision floats."""

    def _print_Pow(self, expr: sp.Pow) -> str:
        if expr.base is sp.E:
            return f"exp({self._print(expr.exp)})"
        return f"pow({self._print(expr.base)}, {self._print(expr.exp)})"

    # Literal numbers carry sbml:units (dimensionless), so that libSBML can check the units of every formula.
    def _print_Float(self, expr: sp.Float) -> str:
        return f"{float(expr)!r} dimensionless"

    def _print_Integer(self, expr: sp.Integer) -> str:
        return f"{int(expr)} dimensionless" if expr >= 0 else f"-{-int(expr)} dimensionless"

    def _print_Rational(self, expr: sp.Rational) -> str:
        return f"({expr.p} dimensionless/{expr.q} dimensionless)"

    def _print_Symbol(self, expr: sp.Symbol) -> str:
        return "time" if expr.name == "t" else expr.name

    def _print_Exp1(self, expr) -> str:
        return "exponentiale"


def formula(expr: sp.Expr) -> str:
    """``expr`` as an SBML L3 infix formula."""
    return _L3Printer().doprint(sp.sympify(expr))


def unit_id(unit: str) -> str:
    """An SBML identifier for a pint unit string (``IU/mL`` -> ``u_IU_per_mL``)."""
    if unit in ("dimensionless", ""):
        return "dimensionless"
    s = unit.replace("**", "_pow_").replace("*", "_").replace("/", "_per_").replace(" ", "")
    return "u_" + re.sub(r"[^A-Za-z0-9_]", "_", s)


def _add_unit_definition(lsb, model, unit: str) -> str:
    uid = unit_id(unit)
    if uid == "dimensionless" or model.getUnitDefinition(uid) is not None:
        return uid
    root = ureg.Quantity(1.0, unit).to_root_units()
    ud = model.createUnitDefinition()
    ud.setId(uid)
    ud.setName(unit)
    mag = float(root.magnitude)
    items = [(str(k), float(e)) for k, e in root.unit_items()]
    if not items:
        items = [("dimensionless", 1.0)]
    for i, (name, exp) in enumerate(items):
        kind = _SBML_KIND.get(name, "dimensionless")
        u = ud.createUnit()
        u.setKind(getattr(lsb, f"UNIT_KIND_{kind.upper()}"))
        u.setExponent(exp)
        u.setScale(0)
        u.setMultiplier(mag ** (1.0 / exp) if i == 0 else 1.0)
    return uid


def _annotate(element, module: str, kind: str, unit: str, description: str, output_unit: str | None = None) -> None:
    attrs = f'module="{escape(module)}" kind="{kind}" unit="{escape(unit)}"'
    if output_unit and output_unit != unit:
        attrs += f' output_unit="{escape(output_unit)}"'
    element.setAnnotation(f'<il2als:info xmlns:il2als="{ANNOTATION_NS}" {attrs}/>')
    if description:
        element.setNotes(f'<body xmlns="http://www.w3.org/1999/xhtml"><p>{escape(description)}</p></body>')


def _math(lsb, model, text: str):
    ast = lsb.parseL3FormulaWithModel(text, model)
    if ast is None:  # pragma: no cover - would be a printer bug
        raise Il2alsError(f"SBML: cannot parse generated formula '{text}': {lsb.getLastParseL3Error()}")
    return ast


@dataclass(frozen=True)
class SbmlExport:
    """An exported document: the XML text, the dose slots it carries, and libSBML's consistency report."""

    xml: str
    n_dose_slots: int
    errors: tuple[str, ...]
    warnings: tuple[str, ...]


def to_sbml(params: ParameterSet, regimen: Regimen, *, model: CompiledModel | None = None,
            dose_slots: int | None = None, model_id: str = "il2als") -> SbmlExport:
    """The mechanism, ``params`` and ``regimen`` as an SBML Level 3 Version 2 document.

    Parameters
    ----------
    params : ParameterSet
    regimen : Regimen
        SC bolus doses only (others are refused with the reason).
    dose_slots : int, optional
        Dose events reserved (default: the regimen's doses).
    model_id : str

    Returns
    -------
    SbmlExport
        The XML text and what it holds; libSBML-validated when libSBML is installed.
    """
    lsb = _libsbml()
    model = model or default_model()
    mech = model.mechanism
    p = params.vector(model)
    y0 = baseline_state(p, model)
    if not regimen.plain:
        raise Il2alsError(f"regimen '{regimen.name}': the SBML export carries SC bolus doses only (dose slots into the "
                          "depot); IV doses, infusions, steady-state doses and resets are not written yet: simulate them "
                          "with il2als, or export an SC bolus regimen")
    times = regimen.times()
    amounts = regimen.amounts_iu(params.value("body_surface_area"), params.value("aldesleukin_specific_activity"))
    n_slots = len(times) if dose_slots is None else int(dose_slots)
    if n_slots < len(times):
        raise Il2alsError(f"{n_slots} dose slots cannot hold {len(times)} doses; give at least {len(times)}")

    doc = lsb.SBMLDocument(3, 2)
    m = doc.createModel()
    m.setId(model_id)
    m.setName("il2als: low-dose IL-2 in ALS (PK -> Tregs -> neuroinflammation -> motor neurons)")
    refs = sorted({r for mod in mech.modules for r in mod.references})
    m.setNotes('<body xmlns="http://www.w3.org/1999/xhtml">'
               f"<p>Generated by il2als from the symbolic mechanism. Parameter set: {escape(params.name)}. "
               f"Regimen: {escape(regimen.summary())}. Time unit: day.</p>"
               f"<p>Modules: {escape(', '.join(mod.name for mod in mech.modules))}. "
               f"References: {escape(', '.join(refs))}.</p></body>")
    day = m.createUnitDefinition()
    day.setId("day")
    u = day.createUnit()
    u.setKind(lsb.UNIT_KIND_SECOND)
    u.setExponent(1)
    u.setScale(0)
    u.setMultiplier(86400.0)
    m.setTimeUnits("day")

    def parameter(pid: str, value: float, unit: str, constant: bool = True):
        q = m.createParameter()
        q.setId(pid)
        q.setConstant(constant)
        if value is not None:
            q.setValue(float(value))
        q.setUnits(_add_unit_definition(lsb, m, unit))
        return q

    for par, v in zip(mech.parameters, p):
        _annotate(parameter(par.name, v, par.unit), par.module, "parameter", par.unit, par.description)
    _annotate(parameter(HOLD, 0.0, "dimensionless"), "il2als", "parameter", "dimensionless",
              "1 holds the fixed-baseline states (pre-equilibration to il2als's baseline); 0 in a simulation")

    fixed = {s.name for s in mech.states if s.baseline == "fixed"}
    for s, v in zip(mech.states, y0):
        _annotate(parameter(s.name, v, s.unit, constant=False), s.module, f"state ({s.baseline} baseline)", s.unit,
                  s.description, s.output_unit)
        if s.name in fixed:
            ia = m.createInitialAssignment()
            ia.setSymbol(s.name)
            ia.setMath(_math(lsb, m, formula(s.initial)))

    for e in mech.expressions:
        _annotate(parameter(e.name, None, e.unit, constant=False), e.module,
                  "observable" if e.observable else "expression", e.unit, e.description, e.output_unit)
        rule = m.createAssignmentRule()
        rule.setVariable(e.name)
        rule.setMath(_math(lsb, m, formula(e.formula)))

    for s in mech.states:
        rate = mech.rates[s.name]
        if s.name in fixed:
            rate = (1 - sp.Symbol(HOLD, real=True)) * rate
        rule = m.createRateRule()
        rule.setVariable(s.name)
        rule.setMath(_math(lsb, m, formula(rate)))

    depot = "il2_depot"
    for k in range(n_slots):
        t_k = float(times[k]) if k < len(times) else 0.0
        a_k = float(amounts[k]) if k < len(times) else 0.0
        parameter(f"dose_{k}_time", t_k, "day").setName(f"time of dose {k + 1}")
        parameter(f"dose_{k}_amount", a_k, "IU").setName(f"amount of dose {k + 1} (IU, before bioavailability)")
        ev = m.createEvent()
        ev.setId(f"dose_{k}")
        ev.setUseValuesFromTriggerTime(True)
        tr = ev.createTrigger()
        tr.setInitialValue(False)
        tr.setPersistent(True)
        tr.setMath(_math(lsb, m, f"time >= dose_{k}_time + absorption_lag"))
        ea = ev.createEventAssignment()
        ea.setVariable(depot)
        ea.setMath(_math(lsb, m, f"{depot} + bioavailability * dose_{k}_amount"))

    doc.checkConsistency()
    errs, warns = [], []
    for i in range(doc.getNumErrors()):
        err = doc.getError(i)
        msg = f"{err.getSeverityAsString()} {err.getErrorId()}: {err.getMessage().strip()}"
        (errs if err.getSeverity() >= lsb.LIBSBML_SEV_ERROR else warns).append(msg)
    return SbmlExport(lsb.writeSBMLToString(doc), n_slots, tuple(errs), tuple(warns))
