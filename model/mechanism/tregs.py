"""Circulating regulatory T cells: homeostatic production and death, IL-2-driven proliferation.

Proliferation is driven by the delayed signal and is logistic towards a capacity, so that long daily dosing
saturates. A patient-specific production rate sets the baseline count (lower in fast progressors), and a
suppressive-function factor (lower in ALS, more so in fast progressors) scales what the Tregs achieve.

References: Henkel 2013, Beers 2011 (Treg deficit in rapid progressors); Beers 2017 (Treg function);
Faridar 2023, Camu 2020 (return to baseline between 4-weekly courses); Koreth 2011 (long daily dosing).
"""

from .core import ModuleBuilder, symbol

m = ModuleBuilder(
    "tregs",
    "Regulatory T cells",
    "Production, death and signal-driven logistic proliferation; %CD4 from a conventional CD4 count.",
    references=("Henkel2013", "Beers2011", "Beers2017", "Faridar2023", "Koreth2011"),
)
s2 = m.uses("treg_signal_2")
treg = m.state("treg", "cell/uL", "circulating Treg count", label="T",
               initial=symbol("treg_production") / symbol("treg_death"))
prod = m.parameter("treg_production", "cell/(uL*day)", "homeostatic Treg production (thymic output and homeostatic renewal)")
death = m.parameter("treg_death", "1/day", "Treg loss rate (death and redistribution)")
kp = m.parameter("treg_max_proliferation", "1/day", "Treg proliferation rate at full signal")
cap = m.parameter("treg_capacity", "cell/uL", "Treg count at which proliferation stops (logistic capacity)")
cd4 = m.parameter("cd4_conventional", "cell/uL", "conventional (non-Treg) CD4 T-cell count")
m.parameter("treg_function", "dimensionless", "suppressive function per Treg relative to healthy", upper=10.0)

m.rate(treg, prod - death * treg + kp * s2 * treg * (1 - treg / cap))
m.expression("treg_count", "cell/uL", treg, "circulating Treg count", observable=True, output_unit="cell/uL")
m.expression("treg_pct_cd4", "dimensionless", treg / (treg + cd4), "Tregs as a share of CD4 T cells",
             observable=True, output_unit="percent")

MODULE = m.build()
