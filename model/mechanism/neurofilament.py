"""Neurofilament light (CSF, serum) and phosphorylated heavy chain (CSF).

Dying axons release neurofilament at a rate proportional to the fractional loss rate of the reserve: as
the reserve shrinks, surviving motor units grow by collateral reinnervation, so each loss releases more, and
the level stays roughly constant within a patient (Lu 2015). Each marker relaxes to a healthy level plus a part
proportional to the loss rate; serum NfL is fed from the CSF (a CSF/serum gradient) and a peripheral source.

References: Lu 2015, Verde 2019 (stable, 4x controls; CSF~serum); Sugimoto 2020 (serum NfL slow vs fast);
Maier 2023 (fall when degeneration slows: turnover); Poesen 2017 (CSF pNfH).
"""

from .core import ModuleBuilder

m = ModuleBuilder(
    "neurofilament",
    "Neurofilaments",
    "CSF NfL and pNfH released in proportion to the loss rate and cleared over weeks; serum NfL fed from CSF.",
    references=("Lu2015", "Verde2019", "Sugimoto2020", "Maier2023", "Poesen2017"),
)
loss = m.uses("mn_loss_rate")
nc = m.state("nfl_csf", "pg/mL", "CSF neurofilament light", observable=True, output_unit="pg/mL")
pc = m.state("pnfh_csf", "pg/mL", "CSF phosphorylated neurofilament heavy", observable=True, output_unit="pg/mL")
ns = m.state("nfl_serum", "pg/mL", "serum neurofilament light", observable=True, output_unit="pg/mL")

nch = m.parameter("nfl_csf_healthy", "pg/mL", "CSF NfL from normal axonal turnover")
ncr = m.parameter("nfl_csf_per_loss_rate", "pg*day/mL", "steady CSF NfL added per unit fractional loss rate")
knc = m.parameter("k_nfl_csf", "1/day", "CSF NfL clearance rate")
pch = m.parameter("pnfh_csf_healthy", "pg/mL", "CSF pNfH from normal axonal turnover")
pcr = m.parameter("pnfh_csf_per_loss_rate", "pg*day/mL", "steady CSF pNfH added per unit fractional loss rate")
kpc = m.parameter("k_pnfh_csf", "1/day", "CSF pNfH clearance rate")
nsp = m.parameter("nfl_serum_peripheral", "pg/mL", "serum NfL from outside the CNS and normal turnover")
ratio = m.parameter("nfl_csf_serum_gradient", "dimensionless", "CSF over serum concentration of CNS-derived NfL", lower=1.0)
kns = m.parameter("k_nfl_serum", "1/day", "serum NfL clearance rate")

m.rate(nc, knc * (nch + ncr * loss - nc))
m.rate(pc, kpc * (pch + pcr * loss - pc))
m.rate(ns, kns * (nsp + nc / ratio - ns))

MODULE = m.build()
