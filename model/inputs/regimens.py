"""Dosing regimens: frozen dose events built by small factories, parsed from a sentence or read from a CSV.

A :class:`Regimen` is a sorted tuple of :class:`Dose` events (time in days, amount in one of four canonical
kinds: ``IU``, ``mg`` of aldesleukin, ``IU/m**2`` or ``mg/m**2``). It is resolved to IU for a patient (body
surface area, specific activity) only when simulated. Two ways to the same object::

    cycles("2 MIU", days_on=5, period="28 days", n_cycles=18) == parse_regimen("2 MIU daily for 5 days every 28 days, 18 cycles")
"""

from __future__ import annotations

import csv
import functools
import io
import math
import re
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from il2als.errors import RegimenError, UnitError, did_you_mean
from il2als.inputs.textfiles import csv_rows, read_text
from il2als.inputs.units import (ACTIVITY, ACTIVITY_PER_AREA, MASS, MASS_PER_AREA, Q_, dose_to_iu, parse_unit, quantity,
                                 to_unit)

__all__ = ["MAX_DOSE_IU", "LOW_DOSE_WARN_IU", "MAX_DOSES", "check_dose_count", "DoseWarning", "Dose", "Regimen",
           "none", "bolus", "course", "cycles", "on_days", "custom", "WEEKLY_DAYS", "SENTENCE_FORMS", "parse_regimen", "NAMED", "named",
           "read_regimen_csv", "as_regimen", "regimen"]

#: No IL-2 regimen gives more than this in one injection (high-dose IV is ~50 MIU); larger is a unit slip.
MAX_DOSE_IU = 1e8
LOW_DOSE_WARN_IU = 1e7  # a mass that converts to more than this is probably a unit slip (mg for MIU)
#: At most this many dose events in one regimen (daily dosing for 27 years); more is a typing slip that would
#: otherwise run for hours or exhaust memory. Raise it deliberately with ``il2als.inputs.regimens.MAX_DOSES = ...``.
MAX_DOSES = 10_000


def check_dose_count(n: int, what: str) -> None:
    """Refuse a regimen of more than :data:`MAX_DOSES` doses (one-line :class:`RegimenError`)."""
    if n > MAX_DOSES:
        raise RegimenError(f"{what} would give {n:,} doses, above the cap of {MAX_DOSES:,} per regimen "
                           "(il2als.inputs.regimens.MAX_DOSES); check the counts, or raise the cap in Python")


class DoseWarning(UserWarning):
    """A dose that is valid but probably not what was meant (e.g. '2 mg' typed for '2 MIU')."""


_KINDS = {ACTIVITY: "IU", MASS: "mg", ACTIVITY_PER_AREA: "IU/m**2", MASS_PER_AREA: "mg/m**2"}


def _amount(value: object, what: str = "dose amount") -> tuple[float, str]:
    """(value, canonical unit) of a dose amount; rejects wrong dimensions, NaN, infinite, zero or negative."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        raise UnitError(f"{what} {value!r} has no unit; give an amount with its unit, e.g. '{value:g} MIU' or '{value:g} ug'")
    q = quantity(value, what) if not isinstance(value, tuple) else Q_(*value)
    unit = _KINDS.get(q.dimensionality)
    if unit is None:
        raise UnitError(
            f"{what} '{q:~}' has dimension {q.dimensionality}; a dose is an activity (IU, MIU), a mass of "
            "aldesleukin (ug, mg) or per body-surface area (MIU/m**2)"
        )
    v = float(q.to(unit).magnitude)
    if not math.isfinite(v):
        raise RegimenError(f"{what} '{q:~}' is not finite; give a finite amount")
    if v <= 0:
        raise RegimenError(f"{what} '{q:~}' must be positive; use the regimen 'none' for no dosing")
    iu = dose_to_iu(q, body_surface_area=Q_(2.0, "m**2"))
    if iu > MAX_DOSE_IU:
        typed_miu = unit == "IU" and abs(float(q.to("MIU").magnitude) - q.magnitude) <= 1e-12 * abs(q.magnitude)
        hint = ("check the amount (low-dose IL-2 is 1-3 MIU)" if typed_miu else
                f"check the unit (did you mean '{q.magnitude:g} MIU'?)")
        raise RegimenError(f"{what} '{q:~}' is {iu / 1e6:.3g} MIU, above the {MAX_DOSE_IU / 1e6:g} MIU ceiling of any "
                           f"IL-2 dose; {hint}")
    if unit in ("mg", "mg/m**2") and iu > LOW_DOSE_WARN_IU:
        warnings.warn(f"{what} '{q:~}' of aldesleukin is {iu / 1e6:.3g} MIU, far above low-dose IL-2 "
                      f"(1-3 MIU); did you mean '{q.magnitude:g} MIU'?", DoseWarning, stacklevel=3)
    return v, unit


def _days(value: object, what: str) -> float:
    v = to_unit(value, "day", what)
    if not math.isfinite(v):
        raise RegimenError(f"{what}: {value} is not finite; give a finite time")
    return v


@dataclass(frozen=True, order=True)
class Dose:
    """One dose: ``time`` in days from the start, ``amount`` in canonical ``unit``.

    ``route`` is a route the mechanism declares (``"sc"``, the default, or ``"iv"``); ``duration`` > 0 (days) makes
    it a zero-order infusion of ``amount`` over that time; ``steady_state_interval`` > 0 (days) makes it a
    steady-state dose (NONMEM SS = 1): just before it is given, the dosing-driven states (pharmacokinetics, IL-2
    signalling, effector and regulatory T cells) are reset to their periodic steady state under this dose repeated
    every interval, while the disease states (inflammation, motor neurons, neurofilaments, clinical) are held
    where they are, as the baseline holds its fixed states."""

    time: float
    amount: float
    unit: str = "IU"
    route: str = "sc"
    duration: float = 0.0
    steady_state_interval: float = 0.0

    def __post_init__(self) -> None:
        if not math.isfinite(self.time) or self.time < 0:
            raise RegimenError(f"dose time {self.time} day must be finite and >= 0")
        if self.unit not in _KINDS.values():
            raise RegimenError(f"dose unit '{self.unit}' must be one of {', '.join(_KINDS.values())}")
        if not math.isfinite(self.amount) or self.amount <= 0:
            raise RegimenError(f"dose amount {self.amount} {self.unit} must be finite and positive")
        if not (isinstance(self.route, str) and self.route.isidentifier()):
            raise RegimenError(f"dose route {self.route!r} must be a route name such as 'sc' or 'iv'")
        for name in ("duration", "steady_state_interval"):
            v = getattr(self, name)
            if not (math.isfinite(v) and v >= 0):
                raise RegimenError(f"dose {name.replace('_', ' ')} {v} day must be finite and >= 0")
        if self.duration > 0 and self.steady_state_interval > 0:
            raise RegimenError("a steady-state infusion (SS with RATE) is not supported; give steady-state bolus doses")

    @property
    def kind(self) -> tuple[str, bool, bool]:
        """What makes two doses at one time distinct: route, infusion, steady state."""
        return (self.route, self.duration > 0, self.steady_state_interval > 0)

    def label(self) -> str:
        if self.unit == "IU" and self.amount >= 1e5:
            return f"{self.amount / 1e6:g} MIU"
        if self.unit == "IU/m**2" and self.amount >= 1e4:
            return f"{self.amount / 1e6:g} MIU/m**2"
        if self.unit == "mg" and self.amount < 1:
            return f"{self.amount * 1e3:g} ug"
        return f"{self.amount:g} {self.unit}"


@dataclass(frozen=True)
class Regimen:
    """A sorted tuple of dose events; ``name`` and ``description`` are labels (not compared)."""

    doses: tuple[Dose, ...] = ()
    name: str = field(default="custom", compare=False)
    description: str = field(default="", compare=False)
    #: times (days) at which every state is reset to the patient's baseline (NONMEM EVID 3 and 4)
    resets: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        check_dose_count(len(self.doses), f"regimen '{self.name}'")
        times = [d.time for d in self.doses]
        if any(b < a for a, b in zip(times, times[1:])):
            raise RegimenError(f"regimen '{self.name}': dose times are not sorted; sort them by time")
        for a, b in zip(self.doses, self.doses[1:]):
            if b.time == a.time and b.kind == a.kind:
                raise RegimenError(f"regimen '{self.name}': two doses at day {a.time:g}; combine them into one dose")
        if any(not (math.isfinite(r) and r >= 0) for r in self.resets) or list(self.resets) != sorted(self.resets):
            raise RegimenError(f"regimen '{self.name}': reset times must be finite, >= 0 and sorted")

    @functools.cached_property
    def plain(self) -> bool:
        """True when every dose is an SC bolus and nothing resets: what the sentence grammar, SBML and PEtab
        exports express."""
        return not self.resets and all(d.kind == ("sc", False, False) for d in self.doses)

    def __len__(self) -> int:
        return len(self.doses)

    @property
    def end(self) -> float:
        """Time of the last dose (days), 0 for no doses."""
        return self.doses[-1].time if self.doses else 0.0

    def times(self) -> np.ndarray:
        """Dose times in days, shape ``(n_doses,)``."""
        return np.array([d.time for d in self.doses], dtype=float)

    def amounts_iu(self, body_surface_area: "float | np.ndarray",
                   specific_activity: "float | np.ndarray") -> np.ndarray:
        """Dose amounts in IU for a patient (BSA in m**2, specific activity in IU/mg), shape ``(n_doses,)``; for
        patients' arrays of both ``(N,)``, shape ``(N, n_doses)``.

        Amounts are stored in the four canonical kinds, so this is plain arithmetic (no unit parsing).
        """
        bsa, sa = np.asarray(body_surface_area, dtype=float), np.asarray(specific_activity, dtype=float)
        factor = {"IU": np.ones_like(sa), "mg": sa, "IU/m**2": bsa, "mg/m**2": sa * bsa}
        if not self.doses:
            return np.empty((*np.shape(sa), 0))
        return np.stack([d.amount * factor[d.unit] for d in self.doses], axis=-1)

    def __add__(self, other: "Regimen") -> "Regimen":
        return Regimen(tuple(sorted(self.doses + other.doses)), f"{self.name}+{other.name}",
                       resets=tuple(sorted(self.resets + other.resets)))

    def shifted(self, by: object) -> "Regimen":
        dt = _days(by, "shift")
        return Regimen(tuple(replace(d, time=d.time + dt) for d in self.doses), self.name, self.description,
                       tuple(r + dt for r in self.resets))

    def summary(self) -> str:
        """One line: number of doses, amounts and span."""
        if not self.doses:
            return "no doses"
        amounts = sorted({d.label() for d in self.doses})
        return f"{len(self.doses)} doses of {', '.join(amounts)} from day {self.doses[0].time:g} to day {self.end:g}"

    def to_csv(self) -> str:
        """The event table as CSV text with units in the headers."""
        units = {d.unit for d in self.doses} or {"IU"}
        if len(units) > 1:
            raise RegimenError("regimen mixes amount kinds (IU, mg, per m**2); write one table per kind")
        unit = units.pop()
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(["time [day]", f"amount [{unit}]"])
        for d in self.doses:
            w.writerow([repr(d.time), repr(d.amount)])
        return buf.getvalue()


# -- factories -----------------------------------------------------------------------------------------------
def none() -> Regimen:
    """No dosing (placebo).

    Returns
    -------
    Regimen
        An empty regimen (no doses).
    """
    return Regimen((), "none", "no IL-2 (placebo)")


def bolus(amount: object, at: object = "0 day") -> Regimen:
    """A single SC dose of ``amount`` at time ``at``.

    Parameters
    ----------
    amount : str or pint Quantity
        IU (``"2 MIU"``), aldesleukin mass (``"0.1 mg"``) or per body-surface area (``"1 MIU/m**2"``).
    at : str or pint Quantity
        Time of the dose from the start (``"0 day"``).

    Returns
    -------
    Regimen
    """
    v, u = _amount(amount)
    return Regimen((Dose(_days(at, "dose time"), v, u),), "bolus")


def course(amount: object, n_doses: int, every: object = "1 day", start: object = "0 day") -> Regimen:
    """``n_doses`` doses of ``amount`` every ``every`` from ``start``.

    Parameters
    ----------
    amount : str or pint Quantity
        Dose amount (IU, aldesleukin mass or per m²).
    n_doses : int
        Number of doses, >= 1.
    every : str or pint Quantity
        Dose interval (``"1 day"``).
    start : str or pint Quantity
        Time of the first dose.

    Returns
    -------
    Regimen
    """
    if not isinstance(n_doses, int) or isinstance(n_doses, bool) or n_doses < 1:
        raise RegimenError(f"number of doses {n_doses!r} must be a whole number >= 1")
    check_dose_count(n_doses, "this course")
    v, u = _amount(amount)
    step = _days(every, "dose interval")
    if step <= 0:
        raise RegimenError(f"dose interval {every} must be positive")
    t0 = _days(start, "start")
    return Regimen(tuple(Dose(t0 + i * step, v, u) for i in range(n_doses)), "course")


def cycles(amount: object, days_on: int, period: object, n_cycles: int, start: object = "0 day",
           every: object = "1 day") -> Regimen:
    """``n_cycles`` courses of ``days_on`` doses (one every ``every``), a course starting every ``period``.

    Parameters
    ----------
    amount : str or pint Quantity
        Dose amount (IU, aldesleukin mass or per m²).
    days_on : int
        Doses per course.
    period : str or pint Quantity
        From the start of one course to the start of the next (``"28 day"``); longer than a course.
    n_cycles : int
        Number of courses, >= 1.
    start, every : str or pint Quantity
        First dose time, and the interval between doses within a course.

    Returns
    -------
    Regimen
        ``cycles("2 MIU", 5, "28 day", 18)`` is the MIROCALS schedule.

    References
    ----------
    Bensimon G, et al. Low-dose interleukin-2 in ALS (MIROCALS): a phase 2b trial. Lancet 2025.
    """
    if not isinstance(n_cycles, int) or isinstance(n_cycles, bool) or n_cycles < 1:
        raise RegimenError(f"number of cycles {n_cycles!r} must be a whole number >= 1")
    if isinstance(days_on, int) and not isinstance(days_on, bool):
        check_dose_count(days_on * n_cycles, f"{n_cycles} cycles of {days_on} doses")
    one = course(amount, days_on, every, start)
    p = _days(period, "cycle period")
    if p <= one.end - one.doses[0].time:
        raise RegimenError(f"cycle period {period} must be longer than one course ({days_on} doses)")
    doses = tuple(Dose(d.time + k * p, d.amount, d.unit) for k in range(n_cycles) for d in one.doses)
    return Regimen(doses, "cycles")


def on_days(amount: object, days: "list[int] | tuple[int, ...]", period: object, n_cycles: int | None = None,
            start: object = "0 day", span: object = None) -> Regimen:
    """Doses of ``amount`` on ``days`` of every ``period`` (days counted from 1: day 1 is the period's first day),
    for ``n_cycles`` periods, or for ``span`` (doses falling within it), from ``start``.

    ``on_days("3 MIU", [1, 4], "7 day", span="8 week")`` is "3 MIU twice weekly for 8 weeks" (days 1 and 4 of
    each week, as twice-weekly injections are scheduled: 16 doses)."""
    days = list(days)
    if not days or any(not isinstance(d, int) or isinstance(d, bool) or d < 1 for d in days):
        raise RegimenError(f"dosing days {days!r} must be whole numbers >= 1 (day 1 is the first day of a period)")
    if any(b <= a for a, b in zip(days, days[1:])):
        raise RegimenError(f"dosing days {days} must be increasing, each once")
    p = _days(period, "period")
    if days[-1] - 1 >= p:
        raise RegimenError(f"day {days[-1]} does not fall within a period of {period}")
    if (n_cycles is None) == (span is None):
        raise RegimenError("give the number of cycles or the span (e.g. '8 weeks'), one of them")
    if n_cycles is not None:
        if not isinstance(n_cycles, int) or isinstance(n_cycles, bool) or n_cycles < 1:
            raise RegimenError(f"number of cycles {n_cycles!r} must be a whole number >= 1")
        k = n_cycles
    else:
        total = _days(span, "span")
        k = int(math.ceil(total / p - 1e-9))
    check_dose_count(k * len(days), f"{k} cycles of {len(days)} doses")
    t0 = _days(start, "start")
    v, u = _amount(amount)
    offsets = [c * p + (d - 1) for c in range(k) for d in days]
    if span is not None:
        offsets = [o for o in offsets if o < total - 1e-9]
        if not offsets:
            raise RegimenError(f"no dosing day falls within {span}")
    return Regimen(tuple(Dose(t0 + o, v, u) for o in offsets), "on days")


def custom(times: list[object], amounts: list[object] | object) -> Regimen:
    """Doses at ``times`` with ``amounts`` (one per time, or one for all).

    Parameters
    ----------
    times : list of str or pint Quantity
        Dose times from the start.
    amounts : list, str or pint Quantity
        One amount per time, or one for every dose.

    Returns
    -------
    Regimen
    """
    if not isinstance(amounts, (list, tuple)):
        amounts = [amounts] * len(times)
    if len(amounts) != len(times):
        raise RegimenError(f"{len(times)} dose times but {len(amounts)} amounts; give one amount per time")
    doses = [Dose(_days(t, f"dose time {i + 1}"), *_amount(a, f"dose amount {i + 1}")) for i, (t, a) in enumerate(zip(times, amounts))]
    return Regimen(tuple(doses), "custom")


# -- sentences ----------------------------------------------------------------------------------------------
_NUM = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|nan|inf"
_AMOUNT = rf"(?P<amount>(?:{_NUM})\s*[A-Za-zµμ]+(?:\s*/\s*m(?:\*\*2|\^2|2|²))?)"
_DUR = rf"(?:{_NUM})\s*(?:[A-Za-z]+)"
_PATTERNS = [
    ("cycles", re.compile(
        rf"^{_AMOUNT}\s+(?:daily|once daily|once a day|every day) for (?P<n>\d+) days?"
        rf"(?:\s+every (?P<period>{_DUR})\s*(?:,|for)?\s*(?P<k>\d+) cycles?)?"
        rf"(?:,?\s+(?:starting|from|start) (?:at |on )?(?:day )?(?P<start>{_DUR}|{_NUM}))?$", re.I)),
    ("every", re.compile(
        rf"^{_AMOUNT}\s+every (?P<interval>{_DUR})\s*(?:,|for|x)?\s*(?:(?P<n>\d+) doses?|(?P<span>{_DUR}))"
        rf"(?:,?\s+(?:starting|from|start) (?:at |on )?(?:day )?(?P<start>{_DUR}|{_NUM}))?$", re.I)),
    ("on_days", re.compile(
        rf"^{_AMOUNT}\s+on days? (?P<days>\d+(?:\s*(?:,|and|&)\s*\d+)*) every (?P<period>{_DUR})"
        rf"\s*(?:,|for|x)?\s*(?:(?P<k>\d+) cycles?|(?P<span>{_DUR}))"
        rf"(?:,?\s+(?:starting|from|start) (?:at |on )?(?:day )?(?P<start>{_DUR}|{_NUM}))?$", re.I)),
    ("weekly", re.compile(
        rf"^{_AMOUNT}\s+(?P<freq>once|twice|three times|thrice)?\s*(?:weekly|a week|per week)"
        rf"\s*(?:,|for|x)?\s*(?:(?P<k>\d+) weeks?|(?P<span>{_DUR}))"
        rf"(?:,?\s+(?:starting|from|start) (?:at |on )?(?:day )?(?P<start>{_DUR}|{_NUM}))?$", re.I)),
    ("once", re.compile(rf"^(?:single |one )?{_AMOUNT}(?:\s+once)?(?:\s+at (?:day )?(?P<at>{_DUR}|{_NUM}))?$", re.I)),
]
#: days of the week a weekly frequency doses on (day 1 = the first day): the usual clinic schedules
WEEKLY_DAYS = {"once": (1,), "twice": (1, 4), "three times": (1, 3, 5), "thrice": (1, 3, 5)}
SENTENCE_FORMS = (
    "'2 MIU daily for 5 days every 28 days, 18 cycles'",
    "'1 MIU daily for 5 days'",
    "'0.26 MIU/m**2 every 3 days for 10 doses' (or 'for 8 weeks')",
    "'2 MIU once at 1 day'",
    "'3 MIU twice weekly for 8 weeks' (days 1 and 4 of each week; once / three times weekly: days 1 / 1, 3, 5)",
    "'2 MIU on days 1 and 4 every 7 days for 3 cycles' (or 'for 8 weeks')",
    "'none'",
)


def _norm_amount(text: str) -> str:
    text = re.sub(r"\s*/\s*m(?:\*\*2|\^2|2|²)$", "/m**2", text.strip())
    return text.replace("μ", "u").replace("µ", "u")


def _time(text: str, what: str) -> object:
    text = text.strip()
    return f"{text} day" if re.fullmatch(_NUM, text) else text


def parse_regimen(sentence: str) -> Regimen:
    """Parse a regimen written as a sentence into the object the factories build.

    Parameters
    ----------
    sentence : str
        One of :data:`SENTENCE_FORMS`, e.g. ``"2 MIU daily for 5 days every 28 days, 18 cycles"``,
        ``"3 MIU twice weekly for 8 weeks"``, ``"2 MIU on days 1 and 4 every 7 days for 3 cycles"``.

    Returns
    -------
    Regimen
        Named after the sentence; its doses equal those of the matching factory call.
    """
    s = " ".join(str(sentence).strip().split())
    if s.lower() in ("none", "placebo", "no dose", "no doses"):
        return none()
    for kind, rx in _PATTERNS:
        m = rx.match(s)
        if not m:
            continue
        amount = _norm_amount(m["amount"])
        given = m.groupdict().get("start")  # every form but a single dose may say when it starts
        start = _time(given, "start") if given else "0 day"
        if kind == "cycles":
            if m["period"]:
                reg = cycles(amount, int(m["n"]), m["period"], int(m["k"]), start=start)
            else:
                reg = course(amount, int(m["n"]), "1 day", start=start)
        elif kind in ("on_days", "weekly"):
            if kind == "on_days":
                days = [int(d) for d in re.split(r"\s*(?:,|and|&)\s*", m["days"].strip())]
                period = m["period"]
            else:
                days = list(WEEKLY_DAYS[(m["freq"] or "once").lower()])
                period = "7 day"
            k = int(m["k"]) if m["k"] else None
            reg = on_days(amount, days, period, k, start=start, span=None if k is not None else m["span"])
        elif kind == "every":
            if m["n"]:
                n = int(m["n"])
            else:
                span, interval = _days(m["span"], "span"), _days(m["interval"], "dose interval")
                if interval <= 0:
                    raise RegimenError(f"regimen '{sentence}': the dose interval must be positive")
                n = int(math.floor(span / interval + 1e-9))
                if n < 1:
                    raise RegimenError(f"regimen '{sentence}': the span is shorter than one interval")
            reg = course(amount, n, m["interval"], start=start)
        else:
            reg = bolus(amount, _time(m["at"], "at") if m["at"] else "0 day")
        return Regimen(reg.doses, s, s)
    raise RegimenError(f"cannot read regimen '{sentence}'; write it like {SENTENCE_FORMS[0]} or a name: {', '.join(NAMED)}")


# -- named regimens -----------------------------------------------------------------------------------------
NAMED: dict[str, tuple[str, str]] = {
    "mirocals": ("2 MIU daily for 5 days every 28 days, 18 cycles",
                 "MIROCALS phase 2b (Bensimon 2025): 2 MIU SC once daily for 5 days every 28 days, 18 cycles (90 doses)"),
    "imodals-1miu": ("1 MIU daily for 5 days every 28 days, 3 cycles",
                     "IMODALS phase 2a (Camu 2020), low arm: 1 MIU SC daily for 5 days every 28 days, 3 cycles"),
    "imodals-2miu": ("2 MIU daily for 5 days every 28 days, 3 cycles",
                     "IMODALS phase 2a (Camu 2020), high arm: 2 MIU SC daily for 5 days every 28 days, 3 cycles"),
    "mirocals-10day": ("2 MIU daily for 10 days every 28 days, 18 cycles",
                       "longer courses: 2 MIU SC daily for 10 days every 28 days, 18 cycles"),
    "mirocals-biweekly": ("2 MIU daily for 5 days every 14 days, 36 cycles",
                          "more frequent courses: 2 MIU SC daily for 5 days every 14 days, 36 cycles"),
    "mirocals-6miu": ("6 MIU daily for 5 days every 28 days, 18 cycles",
                      "higher dose: 6 MIU SC daily for 5 days every 28 days, 18 cycles"),
    "maintenance-q3d": ("1 MIU every 3 days for 168 doses",
                        "every-3-days maintenance (after DILfrequency, Seelig 2022): 1 MIU SC every 3 days for 72 weeks"),
    "ms-il2": ("1 MIU daily for 5 days", "MS-IL2 (Louapre 2023): one course of 1 MIU SC daily for 5 days"),
    "single-2miu": ("2 MIU once", "a single 2 MIU SC dose (PK study)"),
    "placebo": ("none", "placebo: no IL-2 (riluzole only, as in the MIROCALS control arm)"),
    "none": ("none", "no IL-2"),
}


def named(name: str) -> Regimen:
    """A named regimen (see :data:`NAMED` or ``il2als regimens``).

    Parameters
    ----------
    name : str
        ``mirocals``, ``imodals-1miu``, ``placebo``, ... (case-insensitive).

    Returns
    -------
    Regimen
        With the description that cites the trial it comes from.
    """
    key = name.strip().lower()
    if key not in NAMED:
        raise RegimenError(f"unknown regimen '{name}'{did_you_mean(key, NAMED)}; or give a CSV path or a sentence")
    sentence, desc = NAMED[key]
    reg = parse_regimen(sentence)
    return Regimen(reg.doses, key, desc)


# -- CSV event tables ---------------------------------------------------------------------------------------
_HEADER = re.compile(r"^\s*(?P<name>[A-Za-z_]+)\s*\[(?P<unit>[^\]]+)\]\s*$")


def read_regimen_csv(path: str | Path) -> Regimen:
    """Read a dose event table.

    Columns ``time [unit]`` and ``amount [unit]`` (e.g. ``time [h]``, ``amount [MIU]``); rows sorted by time without
    duplicates; amounts positive and finite; lines starting with '#' are comments.

    Parameters
    ----------
    path : str or Path

    Returns
    -------
    Regimen
        Named after the file.
    """
    p = Path(path)
    text = read_text(p, "regimen file", "an existing CSV or a regimen name", RegimenError)
    rows = csv_rows(text, str(path), RegimenError)
    if not rows:
        raise RegimenError(f"regimen file '{path}' is empty; give a header 'time [h],amount [MIU]' and one row per dose")
    cols = {}
    for i, h in enumerate(rows[0]):
        m = _HEADER.match(h)
        if not m:
            raise RegimenError(f"{path}: header '{h}' must be 'name [unit]', e.g. 'time [h]' or 'amount [MIU]'")
        name = m["name"].lower()
        if name in cols:
            raise RegimenError(f"{path}: column '{name}' appears twice; keep one")
        if name not in ("time", "amount"):
            raise RegimenError(f"{path}: unknown column '{h}'; a regimen table has only 'time [unit]' and 'amount [unit]'")
        cols[name] = (i, parse_unit(m["unit"], f"{path}: column '{h.strip()}'"))
    for need in ("time", "amount"):
        if need not in cols:
            raise RegimenError(f"{path}: no '{need} [unit]' column; the table needs 'time [h]' and 'amount [MIU]'")
    ti, tu = cols["time"]
    ai, au = cols["amount"]
    doses = []
    for n, r in enumerate(rows[1:], start=2):
        try:
            tv, av = float(r[ti]), float(r[ai])
        except (ValueError, IndexError):
            raise RegimenError(f"{path}: row {n} {r} needs a number in the time and amount columns") from None
        if math.isnan(tv) or math.isnan(av):
            raise RegimenError(f"{path}: row {n} has NaN; give finite numbers")
        t = _days(Q_(tv, tu), f"{path}: row {n} time")
        if t < 0:
            raise RegimenError(f"{path}: row {n} time {tv} {tu} is negative; times start at 0")
        v, u = _amount(Q_(av, au), f"{path}: row {n} amount")
        if doses and t < doses[-1].time:
            raise RegimenError(f"{path}: row {n} time {tv} {tu} is earlier than the row before; sort the rows by time")
        if doses and t == doses[-1].time:
            raise RegimenError(f"{path}: row {n} repeats the time {tv} {tu}; combine the doses into one row")
        doses.append(Dose(t, v, u))
    if not doses:
        raise RegimenError(f"regimen file '{path}' has a header but no dose rows; add one row per dose (or use 'none')")
    return Regimen(tuple(doses), p.stem, f"event table {p.name}")


def as_regimen(spec: "str | Path | Regimen") -> Regimen:
    """A regimen from a name, a CSV path, a sentence, or a Regimen (returned as is).

    Parameters
    ----------
    spec : str, Path or Regimen
        A named regimen (``il2als regimens``), a CSV dose table (``time [unit]``, ``amount [unit]``), a sentence
        (see :data:`SENTENCE_FORMS`), or a :class:`Regimen`.

    Returns
    -------
    Regimen
        Dose times in days from the start, amounts with their units.
    """
    if isinstance(spec, Regimen):
        return spec
    s = str(spec).strip()
    if s.lower() in NAMED:
        return named(s)
    if s.lower().endswith(".csv") or Path(s).is_file():
        return read_regimen_csv(s)
    if re.match(rf"^(?:single |one )?(?:{_NUM})", s, re.I):
        return parse_regimen(s)
    raise RegimenError(f"unknown regimen '{s}'{did_you_mean(s.lower(), NAMED)}; give a name, a CSV path or a sentence like {SENTENCE_FORMS[0]}")


#: the same function under the short name users type (``il2als.regimen("mirocals")``)
regimen = as_regimen
