"""The il2als mechanism, one module per file, assembled in causal order.

``MECHANISM`` is the checked assembly (symbols, units, rates); nothing here holds values.
"""

from . import clinical, effectors, inflammation, neurofilament, neurons, pk, signalling, tregs
from .core import Expression, Mechanism, Module, ModuleBuilder, Parameter, State, symbol

MODULES = (pk.MODULE, signalling.MODULE, effectors.MODULE, tregs.MODULE, inflammation.MODULE,
           neurons.MODULE, neurofilament.MODULE, clinical.MODULE)


def build_mechanism(modules: tuple[Module, ...] = MODULES) -> Mechanism:
    """Assemble and check ``modules`` (units included); raises ModelError or UnitError on a fault."""
    return Mechanism.assemble(modules)


__all__ = ["MODULES", "Expression", "Mechanism", "Module", "ModuleBuilder", "Parameter", "State", "build_mechanism", "symbol"]
