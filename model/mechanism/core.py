"""Building blocks of the symbolic mechanism: states, parameters, named expressions and modules.

A module is a declaration: sympy symbols with units and descriptions, and a rate law for each state it owns.
It holds no values and runs nothing on import. Modules refer to another module's symbols by name
(:meth:`ModuleBuilder.uses`); :class:`Mechanism` assembles them and checks that every symbol is declared once,
every state has one rate, every parameter is used, and every term is dimensionally consistent.

Time inside the mechanism is in days: a rate of a state in unit ``u`` must have unit ``u/day``.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Literal

import sympy as sp

from il2als.errors import ModelError

TIME_UNIT = "day"
t = sp.Symbol("t", real=True)

Baseline = Literal["steady", "fixed"]


def symbol(name: str) -> sp.Symbol:
    """The one sympy symbol for ``name`` (shared by every module)."""
    return sp.Symbol(name, real=True)


@dataclass(frozen=True)
class Symbolic:
    """What every declared symbol has: a name, a canonical unit, a description and its module."""

    name: str
    unit: str
    description: str
    module: str

    @property
    def sym(self) -> sp.Symbol:
        return symbol(self.name)


@dataclass(frozen=True)
class State(Symbolic):
    """A state variable: canonical ``unit`` inside the solver, ``output_unit`` for tables and plots.

    ``baseline`` says how its pre-treatment value is set: ``"steady"``, the model's own steady state for
    the patient (with the ``"fixed"`` states held), ``initial`` being the starting guess; ``"fixed"``, the value
    of ``initial`` (an expression of parameters, e.g. the motor-neuron reserve at entry).

    ``tolerance_scale`` is the typical size, in ``unit``, of a state that starts at or near zero: the solvers'
    absolute tolerance is ``atol`` times the larger of it and the state's starting size
    (:func:`il2als.solve.single.absolute_tolerances`). Left at ``None``, 1e-3.
    """

    baseline: Baseline = "steady"
    initial: sp.Expr = sp.Integer(0)
    output_unit: str | None = None
    observable: bool = False
    label: str | None = None
    tolerance_scale: float | None = None


@dataclass(frozen=True)
class Parameter(Symbolic):
    """A parameter: canonical ``unit`` and physical bounds (a value outside them is an error)."""

    lower: float = 0.0
    upper: float = float("inf")


@dataclass(frozen=True)
class Expression(Symbolic):
    """A named intermediate or observable: ``formula`` in canonical ``unit``."""

    formula: sp.Expr = sp.Integer(0)
    output_unit: str | None = None
    observable: bool = False
    label: str | None = None


@dataclass(frozen=True)
class Module:
    """One mechanism module: the states it owns, their rates, its parameters and named expressions."""

    name: str
    title: str
    description: str
    states: tuple[State, ...]
    parameters: tuple[Parameter, ...]
    expressions: tuple[Expression, ...]
    rates: tuple[tuple[str, sp.Expr], ...]
    uses: tuple[str, ...] = ()
    references: tuple[str, ...] = ()
    routes: tuple["DoseRoute", ...] = ()
    dosing_driven: bool = False


@dataclass(frozen=True)
class DoseRoute:
    """Where a dose goes: ``amount`` IU given by this route adds ``scale * F * amount`` to ``state`` at
    ``t_dose + lag`` (a bolus), or ``scale * F * amount / duration`` to d(state)/dt from then for ``duration``
    days (a zero-order infusion). ``bioavailability`` and ``lag`` name parameters, or are None (1 and 0);
    ``scale`` converts IU to the state's unit (1 for an amount, ``1/volume`` for a concentration)."""

    name: str
    state: str
    description: str
    scale: sp.Expr = sp.Integer(1)
    bioavailability: str | None = None
    lag: str | None = None
    module: str = ""


@dataclass
class ModuleBuilder:
    """Declare a module line by line; :meth:`build` freezes it into a :class:`Module`."""

    name: str
    title: str
    description: str
    references: tuple[str, ...] = ()
    #: True for the pharmacology (PK, signalling, cells dosing moves within days): a steady-state dose brings these
    #: modules' states to their periodic steady state and holds the others (the disease) where they are
    dosing_driven: bool = False
    _states: list[State] = field(default_factory=list)
    _params: list[Parameter] = field(default_factory=list)
    _exprs: list[Expression] = field(default_factory=list)
    _rates: dict[str, sp.Expr] = field(default_factory=dict)
    _uses: list[str] = field(default_factory=list)
    _routes: list[DoseRoute] = field(default_factory=list)

    def dose_route(self, name: str, state: sp.Symbol, description: str, scale: sp.Expr = sp.Integer(1),
                   bioavailability: sp.Symbol | None = None, lag: sp.Symbol | None = None) -> None:
        """Declare a dose route into one of this module's states (see :class:`DoseRoute`)."""
        self._routes.append(DoseRoute(name, state.name, description, sp.sympify(scale),
                                      bioavailability.name if bioavailability is not None else None,
                                      lag.name if lag is not None else None, self.name))

    def state(self, name: str, unit: str, description: str, **kw: object) -> sp.Symbol:
        self._states.append(State(name, unit, description, self.name, **kw))  # type: ignore[arg-type]
        return symbol(name)

    def parameter(self, name: str, unit: str, description: str, **kw: object) -> sp.Symbol:
        self._params.append(Parameter(name, unit, description, self.name, **kw))  # type: ignore[arg-type]
        return symbol(name)

    def expression(self, name: str, unit: str, formula: sp.Expr, description: str, **kw: object) -> sp.Symbol:
        self._exprs.append(Expression(name, unit, description, self.name, sp.sympify(formula), **kw))  # type: ignore[arg-type]
        return symbol(name)

    def uses(self, *names: str) -> tuple[sp.Symbol, ...] | sp.Symbol:
        """Symbols declared by other modules (resolved and checked at assembly)."""
        self._uses.extend(names)
        syms = tuple(symbol(n) for n in names)
        return syms[0] if len(syms) == 1 else syms

    def rate(self, state: sp.Symbol, formula: sp.Expr) -> None:
        if state.name in self._rates:
            raise ModelError(f"module {self.name}: state '{state.name}' has two rate laws; give it one")
        self._rates[state.name] = sp.sympify(formula)

    def build(self) -> Module:
        return Module(
            self.name,
            self.title,
            self.description,
            tuple(self._states),
            tuple(self._params),
            tuple(self._exprs),
            tuple(self._rates.items()),
            tuple(self._uses),
            self.references,
            tuple(self._routes),
            self.dosing_driven,
        )


@dataclass(frozen=True)
class Mechanism:
    """The assembled, checked mechanism: ordered states, parameters, expressions and rates.

    Attributes are in declaration order, which fixes the order of the state vector ``y`` and of the
    parameter vector ``p`` used by the compiled model.
    """

    modules: tuple[Module, ...]
    states: tuple[State, ...]
    parameters: tuple[Parameter, ...]
    expressions: tuple[Expression, ...]
    rates: dict[str, sp.Expr]
    dose_routes: tuple[DoseRoute, ...] = ()

    @classmethod
    def assemble(cls, modules: tuple[Module, ...], check_units: bool = True) -> "Mechanism":
        states = tuple(s for m in modules for s in m.states)
        params = tuple(p for m in modules for p in m.parameters)
        exprs = tuple(e for m in modules for e in m.expressions)
        names: dict[str, str] = {}
        for kind, items in (("state", states), ("parameter", params), ("expression", exprs)):
            for it in items:
                if it.name in names or it.name == "t":
                    raise ModelError(f"'{it.name}' is declared twice ({names.get(it.name, 'reserved')} and {kind}); rename one")
                names[it.name] = kind
        rates: dict[str, sp.Expr] = {}
        for m in modules:
            own = {s.name for s in m.states}
            for name, formula in m.rates:
                if name not in own:
                    raise ModelError(f"module {m.name} gives a rate for '{name}', which it does not own; move the rate to its module")
                rates[name] = formula
            for u in m.uses:
                if u not in names:
                    raise ModelError(f"module {m.name} uses '{u}', which no module declares; declare it or fix the name")
        for s in states:
            if s.name not in rates:
                raise ModelError(f"state '{s.name}' has no rate law; add one in module {s.module}")
        known = set(names) | {"t"}
        for label, formula in [*((f"d{k}/dt", v) for k, v in rates.items()), *((e.name, e.formula) for e in exprs),
                               *((f"initial {s.name}", s.initial) for s in states)]:
            unknown = {str(x) for x in formula.free_symbols} - known
            if unknown:
                raise ModelError(f"{label} uses undeclared symbol(s) {sorted(unknown)}; declare them in a module")
        routes = tuple(r for m in modules for r in m.routes)
        for m in modules:
            for r in m.routes:
                if r.state not in {s.name for s in m.states}:
                    raise ModelError(f"module {m.name}: dose route '{r.name}' goes into '{r.state}', which it does not own")
                bad = {str(x) for x in r.scale.free_symbols} - {p.name for p in params}
                if bad:
                    raise ModelError(f"dose route '{r.name}': scale uses {sorted(bad)}, which are not parameters")
        if len({r.name for r in routes}) != len(routes):
            raise ModelError("two dose routes share a name; name each route once")
        mech = cls(tuple(modules), states, params, exprs, rates, routes)
        mech._check_acyclic()
        used = set()
        for formula in [*rates.values(), *(e.formula for e in exprs), *(s.initial for s in states),
                        *(r.scale for r in routes)]:
            used |= {str(x) for x in formula.free_symbols}
        used |= {n for r in routes for n in (r.bioavailability, r.lag) if n}
        unused = [p.name for p in params if p.name not in used and p.name not in mech.dose_parameter_names]
        if unused:
            raise ModelError(f"parameter(s) {unused} are declared but used nowhere; remove them or use them")
        if check_units:
            from .units_check import check_units as _check

            _check(mech)
        return mech

    # -- names and lookups ------------------------------------------------------------------------------
    dose_parameter_names = ("body_surface_area", "aldesleukin_specific_activity")

    @property
    def dosing_driven_states(self) -> tuple[str, ...]:
        """States of the dosing-driven modules (see :class:`ModuleBuilder`): what a steady-state dose resets."""
        return tuple(s.name for m in self.modules if m.dosing_driven for s in m.states)

    def route(self, name: str) -> DoseRoute:
        """The dose route called ``name`` (``"sc"``, ``"iv"``)."""
        for r in self.dose_routes:
            if r.name == name:
                return r
        from il2als.errors import did_you_mean

        raise ModelError(f"unknown dose route '{name}'{did_you_mean(name, [r.name for r in self.dose_routes])}")

    # cached: the solvers look names up for every patient (a frozen dataclass keeps its __dict__ for this)
    @functools.cached_property
    def state_names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.states)

    @functools.cached_property
    def parameter_names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.parameters)

    def parameter(self, name: str) -> Parameter:
        for p in self.parameters:
            if p.name == name:
                return p
        raise KeyError(name)

    def unit_of(self, name: str) -> str:
        for group in (self.states, self.parameters, self.expressions):
            for it in group:
                if it.name == name:
                    return it.unit
        raise KeyError(name)

    def _check_acyclic(self) -> None:
        enames = {e.name for e in self.expressions}
        deps = {e.name: {str(s) for s in e.formula.free_symbols} & enames for e in self.expressions}
        seen: set[str] = set()
        stack: set[str] = set()

        def visit(n: str) -> None:
            if n in stack:
                raise ModelError(f"expression '{n}' depends on itself; break the cycle")
            if n in seen:
                return
            stack.add(n)
            for d in deps[n]:
                visit(d)
            stack.discard(n)
            seen.add(n)

        for n in deps:
            visit(n)

    def expand(self, formula: sp.Expr) -> sp.Expr:
        """``formula`` with every named expression replaced by its definition (states and parameters only)."""
        subs = {e.sym: e.formula for e in self.expressions}
        for _ in range(len(self.expressions) + 1):
            new = formula.xreplace(subs)
            if new == formula:
                return formula
            formula = new
        return formula

    @property
    def observables(self) -> tuple[State | Expression, ...]:
        """States and expressions flagged as observables, in declaration order."""
        return tuple(x for m in self.modules for x in (*m.states, *m.expressions) if x.observable)
