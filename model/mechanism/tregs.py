"""Circulating regulatory T cells: count and suppressive function.

Count: homeostatic production and death plus IL-2-driven proliferation, driven by the delayed signal and
logistic towards a capacity, so that long daily dosing saturates. A patient-specific production rate sets the
baseline count (lower in fast progressors).

Function: suppressive function per Treg is a state. Without IL-2 it sits at the patient's own level
(``treg_function``, lower in ALS and more so in fast progressors); IL-2 signalling raises it towards a
patient-specific ceiling (``treg_function_ceiling``: what IL-2 can restore, lower in aggressive disease, where
Tregs are epigenetically unstable), and it relaxes back to the patient's level over weeks to months. So the
function rises course after course, persists between 4-weekly courses while the counts fall back, and fades
over the months after the last course.

References: Henkel 2013, Beers 2011 (Treg deficit in rapid progressors); Beers 2017 (Treg dysfunction grows
with progression rate, TSDR methylation; IL-2 expansion restores suppression ex vivo); Faridar 2023 (function
rises over monthly courses, holds between them, fades after); Giovannelli 2021 (cumulative immune-regulatory
response to IMODALS courses); Thonhoff 2022 (Tregs dysfunctional in rapid progressors); Koreth 2011.
"""

from .core import ModuleBuilder, symbol

m = ModuleBuilder(
    "tregs",
    "Regulatory T cells",
    "Production, death and signal-driven logistic proliferation; %CD4 from a conventional CD4 count; suppressive "
    "function raised by IL-2 signalling towards a patient-specific ceiling and relaxing back over weeks.",
    references=("Henkel2013", "Beers2011", "Beers2017", "Faridar2023", "Giovannelli2021", "Thonhoff2022", "Koreth2011"),
    dosing_driven=True,
)
s2, sig = m.uses("treg_signal_2", "treg_stimulus")
treg = m.state("treg", "cell/uL", "circulating Treg count", label="T",
               initial=symbol("treg_production") / symbol("treg_death"))
fn = m.state("treg_suppressive_function", "dimensionless", "suppressive function per Treg relative to healthy",
             observable=True, output_unit="dimensionless", label="F", initial=symbol("treg_function"))
prod = m.parameter("treg_production", "cell/(uL*day)", "homeostatic Treg production (thymic output and homeostatic renewal)")
death = m.parameter("treg_death", "1/day", "Treg loss rate (death and redistribution)")
kp = m.parameter("treg_max_proliferation", "1/day", "Treg proliferation rate at full signal")
cap = m.parameter("treg_capacity", "cell/uL", "Treg count at which proliferation stops (logistic capacity)")
cd4 = m.parameter("cd4_conventional", "cell/uL", "conventional (non-Treg) CD4 T-cell count")
f0 = m.parameter("treg_function", "dimensionless", "the patient's suppressive function per Treg without IL-2, "
                 "relative to healthy", upper=10.0)
fmax = m.parameter("treg_function_ceiling", "dimensionless", "suppressive function per Treg that IL-2 signalling can "
                   "restore (the ceiling; lower in aggressive disease)", upper=10.0)
kfg = m.parameter("k_treg_function_gain", "1/day", "rate at which IL-2 signalling (full occupancy) raises Treg "
                  "function towards its ceiling")
kfl = m.parameter("k_treg_function_loss", "1/day", "rate at which Treg function relaxes back to the patient's own level")

m.rate(treg, prod - death * treg + kp * s2 * treg * (1 - treg / cap))
m.rate(fn, kfg * sig * (fmax - fn) - kfl * (fn - f0))
m.expression("treg_count", "cell/uL", treg, "circulating Treg count", observable=True, output_unit="cell/uL")
m.expression("treg_pct_cd4", "dimensionless", treg / (treg + cd4), "Tregs as a share of CD4 T cells",
             observable=True, output_unit="percent")
m.expression("functional_treg", "cell/uL", fn * treg, "Treg count weighted by suppressive function",
             observable=True, output_unit="cell/uL", label="T_F")

MODULE = m.build()
