"""The effector arm: conventional effector T and NK cells, about 20-fold less sensitive to IL-2 than Tregs.

They are activated only at higher exposure (the reason the dose is low) and feed neuroinflammation.

References: Rosenzwajg 2015 (20-fold selectivity); Seelig 2022 (no effector expansion at low dose).
"""

import sympy as sp

from .core import ModuleBuilder

m = ModuleBuilder(
    "effectors",
    "Effector T and NK cells",
    "Activation by IL-2 with an EC50 'selectivity' times that of Tregs; relaxes to baseline.",
    references=("Rosenzwajg2015", "Seelig2022"),
    dosing_driven=True,
)
conc, ec50 = m.uses("il2_plasma", "ec50_treg")
eff = m.state("effector_activation", "dimensionless", "activation of effector T/NK cells, fold over baseline",
              observable=True, output_unit="dimensionless", label="E", initial=sp.Integer(1))
sel = m.parameter("treg_selectivity", "dimensionless", "EC50 of effector/NK cells over that of Tregs", lower=1.0)
emax = m.parameter("effector_max_increase", "dimensionless", "maximal rise of effector activation at full stimulation")
ke = m.parameter("k_effector", "1/day", "relaxation rate of effector activation")
stim = m.expression("effector_stimulus", "dimensionless", conc / (sel * ec50 + conc),
                    "IL-2 receptor occupancy on effector/NK cells (0-1)", label="sigma_E")
m.rate(eff, ke * (1 + emax * stim - eff))

MODULE = m.build()
