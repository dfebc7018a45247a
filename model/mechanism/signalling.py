"""IL-2 signalling on Tregs: CD25 up-regulation, a delayed proliferative signal, and desensitisation.

The stimulus is the occupancy of the high-affinity receptor, ``C / (EC50/CD25 + C)``: more CD25 makes a Treg
more sensitive. Signalling capacity is lost to desensitisation while stimulated and recovers over days
(tachyphylaxis under continued dosing). The proliferative signal reaches the Tregs through two transit
compartments, so that Tregs have not yet expanded at the end of a 5-day course but peak days after it.

References: Louapre 2023 (CD25 x2 at day 5; Tregs not expanded at day 5); Whangbo 2019 (tachyphylaxis);
Rosenzwajg 2015 (Treg sensitivity).
"""

import sympy as sp

from .core import ModuleBuilder

m = ModuleBuilder(
    "signalling",
    "IL-2 signalling on Tregs",
    "Receptor occupancy scaled by CD25, CD25 up-regulation, desensitisation, and a two-compartment delay to proliferation.",
    references=("Louapre2023", "Whangbo2019", "Rosenzwajg2015"),
    dosing_driven=True,
)
conc = m.uses("il2_plasma")

cd25 = m.state("cd25_treg", "dimensionless", "CD25 (IL-2Ralpha) expression on Tregs, fold over baseline",
               observable=True, output_unit="dimensionless", label="CD25", initial=sp.Integer(1))
# Fractions (0-1) that start at zero and peak at tenths under the doses studied: their absolute tolerance is
# taken on 1% of that range (the 1e-3 default had them 1e-7 absolute at the trials' tolerances, 400x tighter than
# any other state relative to its size, and they set the first steps after every dose)
des = m.state("treg_desensitisation", "dimensionless", "fraction of Treg IL-2 signalling capacity lost to desensitisation",
              label="D", tolerance_scale=0.01)
s1 = m.state("treg_signal_1", "dimensionless", "proliferative signal, first transit compartment", label="S_1",
             tolerance_scale=0.01)
s2 = m.state("treg_signal_2", "dimensionless", "proliferative signal reaching the Tregs", label="S_2",
             tolerance_scale=0.01)

ec50 = m.parameter("ec50_treg", "IU/mL", "plasma IL-2 at half-maximal Treg stimulation (baseline CD25)")
emax = m.parameter("cd25_max_increase", "dimensionless", "maximal rise of CD25 fold at full stimulation")
kc = m.parameter("k_cd25", "1/day", "turnover rate of CD25 expression")
ktr = m.parameter("k_signal_transit", "1/day", "transit rate of the proliferative signal (mean delay 2/k)")
kdes = m.parameter("k_desensitisation", "1/day", "rate of desensitisation at full stimulation")
kres = m.parameter("k_resensitisation", "1/day", "recovery rate of signalling capacity")

stim = m.expression(
    "treg_stimulus", "dimensionless", (1 - des) * cd25 * conc / (ec50 + cd25 * conc),
    "IL-2 receptor occupancy on Tregs, net of desensitisation (0-1)", label="sigma_T",
)
m.rate(cd25, kc * (1 + emax * stim - cd25))
m.rate(des, kdes * stim * (1 - des) - kres * des)
m.rate(s1, ktr * (stim - s1))
m.rate(s2, ktr * (s1 - s2))

MODULE = m.build()
