"""Neuroinflammation: activated (pro-inflammatory) microglia/macrophages and the CCL2 they release.

Activation is driven by a patient-specific inflammatory drive, by debris of dying motor neurons (a
feed-forward loop: more loss, more activation, more loss) and by activated effector cells; resolution is
accelerated by Treg suppression, which saturates in the functional Treg count. CCL2 in plasma and CSF relax
to a basal level plus a part proportional to activation, so CCL2 falls when Tregs rise.

References: Gille 2019, Guo 2017 (CCL2 and progression); Thonhoff 2022 (serum CCL2 falls with Tregs);
2017 Neurologia cohort (CSF CCL2 in ALS and controls); Beers 2011 (Tregs suppress microglia).
"""

from .core import ModuleBuilder

m = ModuleBuilder(
    "inflammation",
    "Neuroinflammation and CCL2",
    "Activated microglia/macrophages with debris feed-forward and Treg-accelerated resolution; CCL2 in plasma and CSF.",
    references=("Beers2011", "Gille2019", "Guo2017", "Thonhoff2022", "Neurologia2017"),
)
treg, fn, eff, loss = m.uses("treg", "treg_function", "effector_activation", "mn_loss_rate")

mg = m.state("microglia_activation", "dimensionless", "fraction of microglia/macrophages in the pro-inflammatory state",
             observable=True, output_unit="dimensionless", label="M")
cp = m.state("ccl2_plasma", "pg/mL", "plasma CCL2 (MCP-1)", observable=True, output_unit="pg/mL")
cc = m.state("ccl2_csf", "pg/mL", "CSF CCL2 (MCP-1)", observable=True, output_unit="pg/mL")

ka = m.parameter("k_microglia_activation", "1/day", "activation rate per unit of inflammatory stimulus")
kr = m.parameter("k_microglia_resolution", "1/day", "resolution rate without Treg suppression")
drive = m.parameter("inflammatory_drive", "dimensionless", "patient-specific drive of activation (disease-intrinsic)")
gdeb = m.parameter("debris_gain", "day", "activation stimulus per unit of fractional motor-neuron loss rate")
geff = m.parameter("effector_gain", "dimensionless", "activation stimulus per unit rise of effector activation")
smax = m.parameter("treg_suppression_max", "dimensionless", "maximal relative acceleration of resolution by Tregs")
t50 = m.parameter("treg_suppression_half", "cell/uL", "functional Treg count at half-maximal suppression")
cpb = m.parameter("ccl2_plasma_basal", "pg/mL", "plasma CCL2 without activated microglia/macrophages")
cpa = m.parameter("ccl2_plasma_per_activation", "pg/mL", "plasma CCL2 added at full activation")
kcp = m.parameter("k_ccl2_plasma", "1/day", "plasma CCL2 turnover rate")
ccb = m.parameter("ccl2_csf_basal", "pg/mL", "CSF CCL2 without activated microglia")
cca = m.parameter("ccl2_csf_per_activation", "pg/mL", "CSF CCL2 added at full activation")
kcc = m.parameter("k_ccl2_csf", "1/day", "CSF CCL2 turnover rate")

supp = m.expression("treg_suppression", "dimensionless", smax * fn * treg / (t50 + fn * treg),
                    "relative acceleration of resolution by functional Tregs", label="Sup")
stim = m.expression("inflammatory_stimulus", "dimensionless", drive + gdeb * loss + geff * (eff - 1),
                    "stimulus of activation: intrinsic drive, neuronal debris, effector cells", label="I")
m.rate(mg, ka * stim * (1 - mg) - kr * (1 + supp) * mg)
m.rate(cp, kcp * (cpb + cpa * mg - cp))
m.rate(cc, kcc * (ccb + cca * mg - cc))

MODULE = m.build()
