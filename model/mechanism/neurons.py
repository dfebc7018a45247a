"""Motor-neuron reserve: cell-autonomous loss, Treg-refractory inflammatory loss and Treg-suppressible
(microglial) inflammatory loss.

The reserve is the surviving fraction of the healthy motor-neuron (motor-unit) complement. Its fractional
loss rate has three parts: a patient-specific cell-autonomous part and a Treg-refractory inflammatory part,
which IL-2LD cannot change, plus a part proportional to microglial activation, which it can. The reserve at
entry is an input (the disease stage).

References: Shefner 2011 (MUNE at entry); Ebersbach 2023 (MUNIX loss leads function by ~14 months);
Thonhoff 2022 (Treg-refractory drivers in rapid progressors).
"""

from .core import ModuleBuilder, symbol

m = ModuleBuilder(
    "neurons",
    "Motor-neuron reserve",
    "Exponential loss at a rate that is cell-autonomous plus Treg-refractory inflammatory plus proportional to "
    "microglial activation.",
    references=("Shefner2011", "Ebersbach2023", "Thonhoff2022"),
)
mg, rdrive = m.uses("microglia_activation", "refractory_drive")
n = m.state("mn_reserve", "dimensionless", "surviving fraction of the healthy motor-neuron complement",
            baseline="fixed", initial=symbol("mn_reserve_start"), observable=True, output_unit="percent", label="N")
kauto = m.parameter("k_autonomous", "1/day", "cell-autonomous fractional loss rate of motor neurons")
kinf = m.parameter("k_inflammatory", "1/day", "inflammation-driven fractional loss rate at full microglial activation")
kref = m.parameter("k_refractory", "1/day", "fractional loss rate per unit of Treg-refractory inflammatory drive")
m.parameter("mn_reserve_start", "dimensionless", "motor-neuron reserve at the start of the simulation (disease stage)", upper=1.0)
m.expression("microglial_loss_rate", "1/day", kinf * mg, "the Treg-suppressible (microglial) part of the loss rate",
             observable=True, output_unit="percent/month", label="lambda_M")
loss = m.expression("mn_loss_rate", "1/day", kauto + kref * rdrive + kinf * mg, "fractional motor-neuron loss rate",
                    observable=True, output_unit="percent/month", label="lambda")
m.rate(n, -loss * n)

MODULE = m.build()
