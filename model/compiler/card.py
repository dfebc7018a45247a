"""The model card: what the numerics read about the mechanism, without its equations.

Names, units, bounds, baselines, observables and dose routes of the states, parameters and expressions, as plain
frozen objects that need no sympy. :func:`card_of` takes them from the assembled mechanism; the card is kept
on disk beside the generated source (:func:`il2als.compiler.codegen.default_model`), so that a process that
only simulates (a trial's worker, a command's parent) gets the compiled model without importing sympy or
building the mechanism (~0.3 s a process). What needs the expressions themselves (SBML, the equations, unit
checks) uses :attr:`il2als.compiler.codegen.CompiledModel.mechanism`, built on first use.
"""

from __future__ import annotations

import functools
import json
from dataclasses import asdict, dataclass, fields

__all__ = ["ModelCard", "StateCard", "ParameterCard", "ExpressionCard", "RouteCard", "card_of"]


@dataclass(frozen=True)
class StateCard:
    """A state as :class:`il2als.mechanism.core.State` declares it, less its ``initial`` expression."""

    name: str
    unit: str
    description: str
    module: str
    baseline: str = "steady"
    output_unit: str | None = None
    observable: bool = False
    label: str | None = None
    tolerance_scale: float | None = None


@dataclass(frozen=True)
class ParameterCard:
    """A parameter as :class:`il2als.mechanism.core.Parameter` declares it: canonical unit and physical bounds."""

    name: str
    unit: str
    description: str
    module: str
    lower: float = 0.0
    upper: float = float("inf")


@dataclass(frozen=True)
class ExpressionCard:
    """A named expression (an observable) as :class:`il2als.mechanism.core.Expression`, less its ``formula``."""

    name: str
    unit: str
    description: str
    module: str
    output_unit: str | None = None
    observable: bool = False
    label: str | None = None


@dataclass(frozen=True)
class RouteCard:
    """A dose route as :class:`il2als.mechanism.core.DoseRoute`, less its ``scale`` expression (compiled into
    :attr:`il2als.compiler.codegen.CompiledModel.routes`): ``scale_parameters`` names the parameters it uses."""

    name: str
    state: str
    description: str
    bioavailability: str | None = None
    lag: str | None = None
    module: str = ""
    scale_parameters: tuple[str, ...] = ()


@dataclass(frozen=True)
class ModelCard:
    """The mechanism's declarations in model order, with the lookups the numerics use (the same names as on
    :class:`il2als.mechanism.core.Mechanism`)."""

    states: tuple[StateCard, ...]
    parameters: tuple[ParameterCard, ...]
    observables: tuple[StateCard | ExpressionCard, ...]
    dose_routes: tuple[RouteCard, ...]
    dosing_driven_states: tuple[str, ...]
    dose_parameter_names: tuple[str, ...]

    @functools.cached_property
    def state_names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.states)

    @functools.cached_property
    def parameter_names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.parameters)

    @functools.cached_property
    def _parameters(self) -> dict[str, ParameterCard]:
        return {p.name: p for p in self.parameters}

    def parameter(self, name: str) -> ParameterCard:
        """The parameter called ``name`` (KeyError if none)."""
        return self._parameters[name]

    def to_json(self) -> str:
        """The card as JSON text (:meth:`from_json` reads it back to an equal card)."""
        return json.dumps({
            "states": [asdict(s) for s in self.states],
            "parameters": [{**asdict(p), "upper": None if p.upper == float("inf") else p.upper}
                           for p in self.parameters],
            "observables": [{"kind": "state" if isinstance(o, StateCard) else "expression", **asdict(o)}
                            for o in self.observables],
            "dose_routes": [asdict(r) for r in self.dose_routes],
            "dosing_driven_states": list(self.dosing_driven_states),
            "dose_parameter_names": list(self.dose_parameter_names),
        }, indent=1)

    @classmethod
    def from_json(cls, text: str) -> "ModelCard":
        """A card from :meth:`to_json`'s text; ValueError (or KeyError/TypeError) when it is not one."""
        d = json.loads(text)

        def obs(o: dict) -> StateCard | ExpressionCard:
            kind = o.pop("kind")
            return StateCard(**o) if kind == "state" else ExpressionCard(**o)

        return cls(
            tuple(StateCard(**s) for s in d["states"]),
            tuple(ParameterCard(**{**p, "upper": float("inf") if p["upper"] is None else p["upper"]})
                  for p in d["parameters"]),
            tuple(obs(dict(o)) for o in d["observables"]),
            tuple(RouteCard(**{**r, "scale_parameters": tuple(r["scale_parameters"])}) for r in d["dose_routes"]),
            tuple(d["dosing_driven_states"]),
            tuple(d["dose_parameter_names"]),
        )


def _take(cls, obj: object, **more: object):  # noqa: ANN001, ANN202 - the card class's fields, off a mechanism object
    return cls(**{f.name: getattr(obj, f.name) for f in fields(cls) if f.name not in more}, **more)


def card_of(mech) -> ModelCard:  # noqa: ANN001 - an il2als.mechanism.Mechanism (not imported here: it needs sympy)
    """The card of an assembled mechanism."""
    from il2als.mechanism.core import State

    return ModelCard(
        tuple(_take(StateCard, s) for s in mech.states),
        tuple(_take(ParameterCard, p) for p in mech.parameters),
        tuple(_take(StateCard, o) if isinstance(o, State) else _take(ExpressionCard, o) for o in mech.observables),
        tuple(_take(RouteCard, r, scale_parameters=tuple(sorted(str(x) for x in r.scale.free_symbols)))
              for r in mech.dose_routes),
        tuple(mech.dosing_driven_states),
        tuple(mech.dose_parameter_names),
    )
