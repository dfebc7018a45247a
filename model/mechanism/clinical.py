"""Clinical read-outs: ALSFRS-R as a function of motor-neuron reserve, and a death hazard.

ALSFRS-R is a Hill function of the reserve, ``48 / (1 + (N50/N)^h)``: with exponential loss it is exactly the
sigmoidal D50 model in time (Poesen/Steinbach; Dreger 2021) with D50 at reserve N50. The death hazard rises as
the reserve falls (respiratory and bulbar failure) and with the current rate of loss, ``(lambda/lambda_ref)^q``
(survival depends on both the current ALSFRS-R and its current rate of change: van Eijk 2025, PRECISION-ALS), on
top of background mortality; survival = exp(-H).

References: Dreger 2021 (D50 model); Benatar 2024 (survival by progression quartile); PRO-ACT 2018
(ALSFRS-R slope).
"""

import sympy as sp

from .core import ModuleBuilder

m = ModuleBuilder(
    "clinical",
    "ALSFRS-R and survival",
    "ALSFRS-R as a Hill function of the reserve (the D50 model); death hazard rising as the reserve falls.",
    references=("Dreger2021", "Benatar2024", "PROACT2018", "vanEijk2025"),
)
n, loss = m.uses("mn_reserve", "mn_loss_rate")
cumhaz = m.state("cumulative_hazard", "dimensionless", "cumulative hazard of death since the start", baseline="fixed", label="H")
n50 = m.parameter("alsfrs_reserve_half", "dimensionless", "reserve at which ALSFRS-R is 24 (half of 48)", upper=1.0)
h = m.parameter("alsfrs_hill", "dimensionless", "steepness of ALSFRS-R in the reserve")
hmax = m.parameter("hazard_max", "1/day", "death hazard when the reserve is exhausted")
nh50 = m.parameter("hazard_reserve_half", "dimensionless", "reserve at which the ALS hazard is half of its maximum", upper=1.0)
p = m.parameter("hazard_hill", "dimensionless", "steepness of the hazard in the reserve")
hb = m.parameter("hazard_background", "1/day", "background (non-ALS) mortality")
q = m.parameter("hazard_rate_exponent", "dimensionless",
                "how the ALS hazard scales with the current loss rate (0: on the reserve alone)", upper=5.0)
lref = m.parameter("hazard_loss_reference", "1/day", "loss rate at which the rate factor of the hazard is 1")

m.expression("alsfrs_r", "dimensionless", 48 / (1 + (n50 / n) ** h), "ALSFRS-R total score (0-48)",
             observable=True, output_unit="alsfrs_point", label="ALSFRS")
haz = m.expression("death_hazard", "1/day", hb + hmax * (loss / lref) ** q / (1 + (n / nh50) ** p),
                   "instantaneous death hazard: the reserve and the current rate of loss",
                   observable=True, output_unit="1/year", label="h")
m.rate(cumhaz, haz)
m.expression("survival", "dimensionless", sp.exp(-cumhaz), "probability of being alive since the start",
             observable=True, output_unit="dimensionless", label="S")

MODULE = m.build()
