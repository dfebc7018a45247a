"""Neuroinflammation: activated (pro-inflammatory) microglia/macrophages, the CCL2 they release, and a
Treg-refractory inflammatory drive.

Activation is driven by a patient-specific inflammatory drive, by debris of dying motor neurons (a
feed-forward loop: more loss, more activation, more loss) and by activated effector cells; Tregs speed its
resolution in proportion to the functional Treg count (count x suppressive function), normalised to a healthy
count: this term is not saturated at baseline, so a rise in functional Tregs moves activation in proportion.
CCL2 in plasma and CSF relax to a basal level plus a part proportional to activation, so CCL2 falls when
functional Tregs rise.

The Treg-refractory drive stands for pathways Tregs do not restrain (IL-17, oxidised LDL in rapid
progressors): a patient-specific level, larger in aggressive disease, that adds to motor-neuron loss without
passing through the Treg-suppressible microglial state.

References: Gille 2019, Guo 2017 (CCL2 and progression); Thonhoff 2022 (IL-17 and oxidised LDL in rapid
progressors not restrained by Treg therapy; serum CCL2 falls with Tregs); Thome 2023 (CCL2 follows Treg
therapy); 2017 Neurologia cohort (CSF CCL2); Beers 2011, Beers 2017 (Tregs suppress microglia; function).
"""

from .core import ModuleBuilder

m = ModuleBuilder(
    "inflammation",
    "Neuroinflammation and CCL2",
    "Activated microglia/macrophages with debris feed-forward and resolution sped by functional Tregs "
    "(unsaturated); CCL2 in plasma and CSF; a Treg-refractory inflammatory drive.",
    references=("Beers2011", "Beers2017", "Gille2019", "Guo2017", "Thonhoff2022", "Thome2023", "Neurologia2017"),
)
tf, eff, loss = m.uses("functional_treg", "effector_activation", "mn_loss_rate")

mg = m.state("microglia_activation", "dimensionless", "fraction of microglia/macrophages in the pro-inflammatory state",
             observable=True, output_unit="dimensionless", label="M")
cp = m.state("ccl2_plasma", "pg/mL", "plasma CCL2 (MCP-1)", observable=True, output_unit="pg/mL")
cc = m.state("ccl2_csf", "pg/mL", "CSF CCL2 (MCP-1)", observable=True, output_unit="pg/mL")

ka = m.parameter("k_microglia_activation", "1/day", "activation rate per unit of inflammatory stimulus")
kr = m.parameter("k_microglia_resolution", "1/day", "resolution rate without Treg suppression")
drive = m.parameter("inflammatory_drive", "dimensionless", "patient-specific drive of activation (disease-intrinsic)")
gdeb = m.parameter("debris_gain", "day", "activation stimulus per unit of fractional motor-neuron loss rate")
geff = m.parameter("effector_gain", "dimensionless", "activation stimulus per unit rise of effector activation")
sg = m.parameter("treg_suppression_gain", "dimensionless",
                 "acceleration of resolution by a healthy count of fully functional Tregs (relative to no Tregs)")
tref = m.parameter("treg_reference", "cell/uL", "healthy circulating Treg count that normalises suppression")
m.parameter("refractory_drive", "dimensionless",
            "patient-specific Treg-refractory inflammatory drive (IL-17, oxidised LDL), larger in aggressive disease")
cpb = m.parameter("ccl2_plasma_basal", "pg/mL", "plasma CCL2 without activated microglia/macrophages")
cpa = m.parameter("ccl2_plasma_per_activation", "pg/mL", "plasma CCL2 added at full activation")
kcp = m.parameter("k_ccl2_plasma", "1/day", "plasma CCL2 turnover rate")
ccb = m.parameter("ccl2_csf_basal", "pg/mL", "CSF CCL2 without activated microglia")
cca = m.parameter("ccl2_csf_per_activation", "pg/mL", "CSF CCL2 added at full activation")
kcc = m.parameter("k_ccl2_csf", "1/day", "CSF CCL2 turnover rate")

supp = m.expression("treg_suppression", "dimensionless", sg * tf / tref,
                    "relative acceleration of resolution by functional Tregs (linear: unsaturated)", label="Sup")
stim = m.expression("inflammatory_stimulus", "dimensionless", drive + gdeb * loss + geff * (eff - 1),
                    "stimulus of activation: intrinsic drive, neuronal debris, effector cells", label="I")
m.rate(mg, ka * stim * (1 - mg) - kr * (1 + supp) * mg)
m.rate(cp, kcp * (cpb + cpa * mg - cp))
m.rate(cc, kcc * (ccb + cca * mg - cc))

MODULE = m.build()
