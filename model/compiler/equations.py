"""Equations for the documentation, generated from the symbolic mechanism (never written by hand)."""

from __future__ import annotations

import sympy as sp

from il2als.inputs.units import unit_label
from il2als.mechanism import Mechanism, build_mechanism

__all__ = ["equations_markdown"]


def _tex_name(name: str) -> str:
    return r"\mathrm{" + name.replace("_", r"\_") + "}"


def _latex(expr: sp.Expr, mech: Mechanism) -> str:
    names = {sp.Symbol(n, real=True): _tex_name(n) for n in
             [*mech.state_names, *mech.parameter_names, *(e.name for e in mech.expressions)]}
    return sp.latex(expr, symbol_names=names, mul_symbol="dot", long_frac_ratio=3)


def equations_markdown(mech: Mechanism | None = None) -> str:
    """Markdown with one section per module: its named expressions and rate equations (LaTeX), and a table
    of its states and parameters with canonical units. Time is in days."""
    mech = mech or build_mechanism()
    out = ["Generated from the sympy mechanism by `il2als equations`; time $t$ in days.", ""]
    for m in mech.modules:
        out += [f"### {m.title} (`{m.name}`)", "", m.description, ""]
        eqs = []
        for e in m.expressions:
            eqs.append(f"{_tex_name(e.name)} &= {_latex(e.formula, mech)}")
        for name, rate in m.rates:
            eqs.append(rf"\frac{{d\,{_tex_name(name)}}}{{dt}} &= {_latex(rate, mech)}")
        if eqs:
            out += ["$$", r"\begin{aligned}", (r" \\" + "\n").join(eqs), r"\end{aligned}", "$$", ""]
        out += ["| symbol | kind | unit | meaning |", "|---|---|---|---|"]
        for s in m.states:
            out.append(f"| `{s.name}` | state | {unit_label(s.unit)} | {s.description} |")
        for e in m.expressions:
            out.append(f"| `{e.name}` | {'observable' if e.observable else 'expression'} | {unit_label(e.unit)} | {e.description} |")
        for p in m.parameters:
            out.append(f"| `{p.name}` | parameter | {unit_label(p.unit)} | {p.description} |")
        out.append("")
        for r in m.routes:
            parts = ([_latex(r.scale, mech)] if r.scale != 1 else []) + (
                [_tex_name(r.bioavailability)] if r.bioavailability else [])
            factor = r" \cdot ".join(parts)
            at = rf"t_\mathrm{{dose}} + {_tex_name(r.lag)}" if r.lag else r"t_\mathrm{dose}"
            out.append(rf"Dose route `{r.name}` ({r.description}): a bolus $A$ adds ${factor or '1'} \cdot A$ to "
                       rf"${_tex_name(r.state)}$ at ${at}$; an infusion adds ${factor or '1'} \cdot A/T$ to its rate for $T$.")
            out.append("")
    return "\n".join(out)
