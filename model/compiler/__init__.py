"""Compile the symbolic mechanism: generated Python for the right-hand side, Jacobian, observables and sparse LU;
the model card (the declarations, without sympy); the numba batch engine built from it and cached on disk; the
equations for the documentation.
"""

from il2als._lazy import attach

#: public name -> the submodule that defines it
_EXPORTS = {
    **dict.fromkeys(("CompiledModel", "compile_mechanism", "default_model",), "codegen"),
    **dict.fromkeys(("ModelCard", "StateCard", "ParameterCard", "ExpressionCard", "RouteCard", "card_of"), "card"),
    **dict.fromkeys(("STATUS_TEXT", "NEGATIVE_STATE", "cache_dir", "lane_width", "module_source", "load_engine", "report_compiled",), "engine"),
    **dict.fromkeys(("equations_markdown",), "equations"),
}

__all__, __getattr__, __dir__ = attach(__name__, _EXPORTS)
