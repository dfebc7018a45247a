"""Motor-neuron reserve: cell-autonomous loss plus inflammation-driven loss.

The reserve is the surviving fraction of the healthy motor-neuron (motor-unit) complement. Its fractional
loss rate is a patient-specific cell-autonomous part, which IL-2LD cannot change, plus a part proportional to
microglial activation, which it can. The reserve at entry is an input (the disease stage).

References: Shefner 2011 (MUNE at entry); Ebersbach 2023 (MUNIX loss leads function by ~14 months).
"""

from .core import ModuleBuilder, symbol

m = ModuleBuilder(
    "neurons",
    "Motor-neuron reserve",
    "Exponential loss at a rate that is cell-autonomous plus proportional to microglial activation.",
    references=("Shefner2011", "Ebersbach2023"),
)
mg = m.uses("microglia_activation")
n = m.state("mn_reserve", "dimensionless", "surviving fraction of the healthy motor-neuron complement",
            baseline="fixed", initial=symbol("mn_reserve_start"), observable=True, output_unit="percent", label="N")
kauto = m.parameter("k_autonomous", "1/day", "cell-autonomous fractional loss rate of motor neurons")
kinf = m.parameter("k_inflammatory", "1/day", "inflammation-driven fractional loss rate at full microglial activation")
m.parameter("mn_reserve_start", "dimensionless", "motor-neuron reserve at the start of the simulation (disease stage)", upper=1.0)
loss = m.expression("mn_loss_rate", "1/day", kauto + kinf * mg, "fractional motor-neuron loss rate",
                    observable=True, output_unit="percent/month", label="lambda")
m.rate(n, -loss * n)

MODULE = m.build()
