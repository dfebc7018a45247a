"""Dosing and pharmacokinetics of subcutaneous IL-2 (aldesleukin).

A dose enters by a declared route: ``sc`` into the depot after a lag, scaled by the bioavailability (the dose
events do this: the depot jumps by ``F * dose`` at ``t_dose + lag``), or ``iv`` into plasma at once (the
concentration jumps by ``dose / volume``); infusions by either route add ``rate x the same factor`` to the state's
rate of change while they run. The depot empties first-order into plasma; plasma IL-2 is cleared
linearly (mainly renal) and by a saturable, receptor-mediated sink on CD25+ Tregs that grows with the Treg
count and their CD25 expression: the target-mediated part of tachyphylaxis.

References: Piscitelli 1997 (SC Tmax, lag, apparent t1/2); Konrad 1990 (clearance, IV half-lives,
IM bioavailability); Kirchner 1998 (receptor sink).
"""

from .core import ModuleBuilder

m = ModuleBuilder(
    "pk",
    "Dosing and pharmacokinetics",
    "SC depot with lag and bioavailability, one plasma compartment, linear clearance and a saturable sink on CD25+ Tregs.",
    references=("Piscitelli1997", "Konrad1990", "Kirchner1998"),
    dosing_driven=True,
)
treg, cd25 = m.uses("treg", "cd25_treg")

depot = m.state("il2_depot", "IU", "IL-2 remaining in the subcutaneous depot", label="depot")
conc = m.state(
    "il2_plasma", "IU/mL", "plasma IL-2 concentration", observable=True, output_unit="IU/mL", label="C"
)

F = m.parameter("bioavailability", "dimensionless", "fraction of an SC dose reaching plasma", upper=1.0)
lag = m.parameter("absorption_lag", "day", "delay between injection and the start of absorption")
m.parameter("body_surface_area", "m**2", "patient body-surface area, for doses per m**2")
m.parameter("aldesleukin_specific_activity", "IU/mg", "IL-2 activity per mass of aldesleukin, for doses by mass")
ka = m.parameter("ka", "1/day", "first-order SC absorption rate constant")
cl = m.parameter("clearance", "mL/day", "linear plasma clearance of IL-2")
vol = m.parameter("volume", "mL", "apparent volume of distribution of IL-2")
upt = m.parameter(
    "il2_uptake_per_treg", "IU*uL/(day*cell)", "maximal receptor-mediated IL-2 uptake per Treg (per cell/uL), at baseline CD25"
)
km = m.parameter("sink_km", "IU/mL", "plasma IL-2 at half-maximal receptor-mediated uptake")

sink = m.expression(
    "il2_receptor_sink", "IU/day", upt * treg * cd25 * conc / (km + conc),
    "IL-2 consumed by CD25+ Tregs (saturable, grows with Treg count and CD25)",
)
m.dose_route("sc", depot, "subcutaneous: into the depot after the absorption lag, times the bioavailability",
             bioavailability=F, lag=lag)
m.dose_route("iv", conc, "intravenous: into plasma at once (an IU amount over the volume of distribution)", scale=1 / vol)
m.rate(depot, -ka * depot)
m.rate(conc, (ka * depot - cl * conc - sink) / vol)

MODULE = m.build()
