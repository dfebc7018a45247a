"""NONMEM-style datasets: reading them (every record kind, with units in the headers) and writing them back."""

from __future__ import annotations

import csv
import io
import math
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from il2als.compiler.codegen import CompiledModel, default_model
from il2als.errors import Il2alsError, RegimenError, did_you_mean
from il2als.inputs.parameters import ParameterSet, PlausibilityWarning
from il2als.inputs.regimens import Dose, Regimen, _amount, check_dose_count
from il2als.inputs.textfiles import csv_rows, read_text
from il2als.inputs.units import Q_, dose_to_iu, parse_unit

__all__ = ["CMT_DEPOT", "compartments", "Observation", "Dataset", "read_dataset", "parse_dataset",
           "replicate_dataset", "dataset_csv"]


_HEADER = re.compile(r"^\s*(?P<name>[A-Za-z_][A-Za-z0-9_]*)\s*(?:\[(?P<unit>[^\]]+)\])?\s*$")


CMT_DEPOT = 1


_RESERVED = {"ID", "TIME", "AMT", "EVID", "CMT", "DV", "MDV", "OBSERVABLE", "DVUNIT", "ADDL", "II", "RATE", "SS", "DUR"}


_MISSING = ("", ".", "NA", "nan", "NaN")


def compartments(model: CompiledModel | None = None) -> dict[int, str]:
    """CMT number -> what it is: 1 the SC depot (doses), then one per observable."""
    model = model or default_model()
    return {CMT_DEPOT: "il2_depot", **{i + 2: n for i, n in enumerate(model.observable_names)}}


@dataclass(frozen=True)
class Observation:
    id: str
    time: float  # day
    observable: str
    value: float  # in the observable's output unit


@dataclass(frozen=True)
class Dataset:
    """Per-ID regimens, observations (times in days, values in the observables' output units), per-ID parameter
    values from parameter-named columns (canonical units) and other covariates (as read)."""

    regimens: dict[str, Regimen]
    observations: tuple[Observation, ...]
    source: str
    parameters: dict[str, dict[str, float]] = field(default_factory=dict)
    covariates: dict[str, dict[str, str]] = field(default_factory=dict)

    @property
    def ids(self) -> list[str]:
        return list(self.regimens)

    def parameter_matrix(self, base: ParameterSet, model: CompiledModel | None = None) -> np.ndarray:
        """``(n_ids, n_parameters)`` canonical values: ``base`` with each ID's parameter columns applied."""
        model = model or default_model()
        P = np.tile(base.vector(model), (len(self.ids), 1))
        outside: dict[str, list[str]] = {}
        for i, pid in enumerate(self.ids):
            for k, v in self.parameters.get(pid, {}).items():
                P[i, model.parameter_index(k)] = v
                lo, hi = base.get(k).plausible
                if not lo <= v <= hi:
                    outside.setdefault(k, []).append(pid)
        for k, ids in outside.items():  # the same rule as a parameter file: physical bounds fail, plausible warns
            warnings.warn(f"{self.source}: {k} of ID {ids[0]}{f' (and {len(ids) - 1} more)' if len(ids) > 1 else ''} is "
                          f"outside its plausible range [{base.get(k).plausible[0]:g}, {base.get(k).plausible[1]:g}] "
                          f"{base.get(k).unit}", PlausibilityWarning, stacklevel=2)
        return P

    def params_for(self, pid: str, base: ParameterSet) -> ParameterSet:
        """``base`` with this ID's parameter columns applied."""
        own = self.parameters.get(pid, {})
        if not own:
            return base
        model = default_model()
        return base.updated(name=f"{base.name} (ID {pid})",
                            **{k: f"{v!r} {model.card.parameter(k).unit}" for k, v in own.items()})


def _float(text: str, what: str, where: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise Il2alsError(f"{where}: {what} '{text}' is not a number") from None


def _whole(text: str, what: str, where: str) -> int:
    """A column that holds whole numbers (EVID, CMT, MDV, ADDL): '2' or '2.0', never '2.5'."""
    v = _float(text, what, where)
    if not math.isfinite(v) or v != int(v):
        raise Il2alsError(f"{where}: {what} '{text}' must be a whole number")
    return int(v)


def read_dataset(path: str | Path) -> Dataset:
    """Read and check a NONMEM-style CSV.

    Columns ``ID, TIME [unit], AMT [unit], EVID, CMT, DV [unit], MDV`` and the observable's name; ``ADDL/II``,
    ``RATE`` (or ``RATE -2`` with ``DUR``), ``SS 1``, ``EVID 3/4`` and covariate columns named after parameters.

    Parameters
    ----------
    path : str or Path

    Returns
    -------
    Dataset
        Per ID: its regimen (doses in IU), observations (value, unit, time in days) and covariates. Errors name the
        row and the fix.
    """
    text = read_text(path, "data file", "a CSV with ID, TIME [unit], AMT [unit], DV [unit], observable")
    return parse_dataset(text, str(path))


def parse_dataset(text: str, source: str = "<data>") -> Dataset:
    """:func:`read_dataset` on CSV text."""
    path = source
    rows = csv_rows(text, path)
    if len(rows) < 2:
        raise Il2alsError(f"{path}: no data rows; give a header and one row per dose or observation")
    model = default_model()
    cols: dict[str, tuple[int, str | None]] = {}
    names: dict[str, str] = {}
    for i, h in enumerate(rows[0]):
        m = _HEADER.match(h)
        if not m:
            raise Il2alsError(f"{path}: header '{h}' must be 'NAME' or 'NAME [unit]'")
        key = m["name"] if m["name"] in model.parameter_names else m["name"].upper()
        if key in cols:
            raise Il2alsError(f"{path}: column '{m['name']}' appears twice; keep one")
        unit = m["unit"].strip() if m["unit"] else None
        if unit is not None:
            parse_unit(unit, f"{path}: column '{h.strip()}'")
        cols[key] = (i, unit)
        names[key] = h.strip()
    for need in ("ID", "TIME", "DV"):
        if need not in cols:
            raise Il2alsError(f"{path}: no '{need}' column; the columns are ID, TIME [unit], AMT [unit], DV [unit], observable")
    if "OBSERVABLE" not in cols and "CMT" not in cols:
        raise Il2alsError(f"{path}: say what DV measures: add an 'observable' column (e.g. treg_pct_cd4) or CMT numbers")
    if cols["TIME"][1] is None:
        raise Il2alsError(f"{path}: TIME needs a unit in its header, e.g. 'TIME [h]'")
    try:
        t_factor = float(Q_(1.0, cols["TIME"][1]).to("day").magnitude)
    except Exception:
        raise Il2alsError(f"{path}: TIME unit '{cols['TIME'][1]}' is not a time; use e.g. 'TIME [h]' or 'TIME [day]'") from None
    param_cols = [k for k in cols if k in model.parameter_names]
    for k in param_cols:
        unit = cols[k][1] or model.card.parameter(k).unit
        try:
            Q_(1.0, unit).to(model.card.parameter(k).unit)
        except Exception:
            raise Il2alsError(f"{path}: column '{k} [{unit}]' does not convert to {k}'s unit "
                              f"'{model.card.parameter(k).unit}'; fix the header") from None
    other_cols = [k for k in cols if k not in _RESERVED and k not in param_cols]
    out_units = {o.name: (o.output_unit or o.unit) for o in model.observables}
    cmts = compartments(model)
    doses: dict[str, list[Dose]] = {}
    resets: dict[str, list[float]] = {}
    routes = {c: r.name for c, name in cmts.items() for r in model.card.dose_routes if r.state == name}
    obs: list[Observation] = []
    pars: dict[str, dict[str, float]] = {}
    covs: dict[str, dict[str, str]] = {}
    last_t: dict[str, float] = {}
    for n, r in enumerate(rows[1:], start=2):
        where = f"{path}: row {n}"
        get = lambda c: r[cols[c][0]].strip() if c in cols and cols[c][0] < len(r) else ""  # noqa: E731
        pid = get("ID")
        if not pid:
            raise Il2alsError(f"{where} has no ID")
        t = _float(get("TIME"), "TIME", where) * t_factor
        if not math.isfinite(t) or t < 0:
            raise Il2alsError(f"{where}: TIME must be finite and >= 0")
        if t < last_t.get(pid, -1.0):
            raise Il2alsError(f"{where}: TIME goes back for ID {pid}; sort the rows by ID and time")
        last_t[pid] = t
        doses.setdefault(pid, [])
        for k in param_cols:
            if get(k) in _MISSING:
                continue
            v = _float(get(k), k, where)
            unit = cols[k][1] or model.card.parameter(k).unit
            v = float(Q_(v, unit).to(model.card.parameter(k).unit).magnitude)
            p_k = model.card.parameter(k)
            if not math.isfinite(v) or not (p_k.lower <= v <= p_k.upper):
                raise Il2alsError(f"{where}: {k} = {get(k)} is non-physical: it must lie in [{p_k.lower:g}, "
                                  f"{p_k.upper:g}] {p_k.unit}; fix the covariate")
            if pars.setdefault(pid, {}).setdefault(k, v) != v:
                raise Il2alsError(f"{where}: {k} changes within ID {pid}; time-varying covariates are not supported")
        for k in other_cols:
            covs.setdefault(pid, {}).setdefault(names[k], get(k))
        evid_text, amt = get("EVID"), get("AMT")
        if evid_text not in _MISSING:
            evid = _whole(evid_text, "EVID", where)
            if evid not in (0, 1, 2, 3, 4):
                raise Il2alsError(f"{where}: EVID '{evid_text}' must be 0 (observation), 1 (dose), 2 (other), 3 (reset) "
                                  "or 4 (reset and dose)")
        else:
            evid = 1 if amt not in _MISSING and _float(amt, "AMT", where) != 0 else 0
        if evid in (3, 4):
            resets.setdefault(pid, []).append(t)
            if evid == 3:
                continue
        if evid == 2:
            continue
        cmt_text = get("CMT")
        cmt = None
        if cmt_text not in _MISSING:
            cmt = _whole(cmt_text, "CMT", where)
            if cmt not in cmts:
                raise Il2alsError(f"{where}: CMT {cmt_text} is not a compartment; use 1 (depot) or 2-{max(cmts)} "
                                  "(see il2als.inputs.datasets.compartments())")
        if evid in (1, 4):
            route = routes.get(CMT_DEPOT if cmt is None else cmt)
            if route is None:
                raise RegimenError(f"{where}: a dose goes to CMT {CMT_DEPOT} (the SC depot) or "
                                   f"{', '.join(str(c) for c in routes if c != CMT_DEPOT)} (plasma: IV), not CMT {cmt}")
            ss = _whole(get("SS"), "SS", where) if get("SS") not in _MISSING else 0
            if ss == 2:
                raise RegimenError(f"{where}: SS 2 adds a steady state to the current amounts by superposition, which is "
                                   "exact only for a linear system and il2als's pharmacology is not (receptor sink, Treg "
                                   "feedback); use SS 1 (reset to the steady state) or write the doses (ADDL/II)")
            if ss not in (0, 1):
                raise RegimenError(f"{where}: SS {get('SS')} must be 0, 1 (steady state) or 2")
            if cols.get("AMT", (0, None))[1] is None:
                raise Il2alsError(f"{path}: AMT needs a unit in its header, e.g. 'AMT [MIU]'")
            a = _float(amt, "AMT", where)
            if not math.isfinite(a) or a <= 0:
                raise RegimenError(f"{where}: dose AMT {amt} must be positive and finite")
            try:
                _amount(Q_(a, cols["AMT"][1]), "AMT")  # dimension and the ceiling of any IL-2 dose
                bsa = pars.get(pid, {}).get("body_surface_area", 1.9)
                iu = dose_to_iu(Q_(a, cols["AMT"][1]), body_surface_area=Q_(bsa, "m**2"))
            except Il2alsError as exc:
                raise type(exc)(f"{where}: {exc}") from None
            addl = _whole(get("ADDL"), "ADDL", where) if get("ADDL") not in _MISSING else 0
            check_dose_count(len(doses[pid]) + addl + 1, f"{where}: ID {pid} with ADDL {addl}")
            ii = _float(get("II"), "II", where) * t_factor if get("II") not in _MISSING else 0.0
            if addl < 0 or (addl > 0 and not ii > 0):
                raise RegimenError(f"{where}: ADDL {addl} needs a positive II (interval, in TIME's unit)")
            if ss and not (math.isfinite(ii) and ii > 0):
                raise RegimenError(f"{where}: SS 1 needs a positive II (the dosing interval of the steady state)")
            duration = _infusion_days(get, cols, a, t_factor, where)
            if ss and duration > 0:
                raise RegimenError(f"{where}: SS 1 with RATE (a steady-state infusion) is not supported; give SS 1 "
                                   "bolus doses or write the infusions (ADDL/II)")
            # ADDL series of several records may interleave (NONMEM accepts them): sorted, and summed where they meet
            doses[pid].append(Dose(t, iu, "IU", route, duration, ii if ss else 0.0))
            doses[pid].extend(Dose(t + k * ii, iu, "IU", route, duration) for k in range(1, addl + 1))
            continue
        mdv = _whole(get("MDV"), "MDV", where) if get("MDV") not in _MISSING else 0
        if mdv not in (0, 1):
            raise Il2alsError(f"{where}: MDV '{get('MDV')}' must be 0 (observed) or 1 (missing)")
        if mdv == 1 or get("DV") in _MISSING:
            continue
        name = get("OBSERVABLE") if "OBSERVABLE" in cols and get("OBSERVABLE") else cmts.get(cmt or -1, "")
        if name not in out_units:
            raise Il2alsError(f"{where}: unknown observable '{name}'{did_you_mean(name, out_units)}")
        v = _float(get("DV"), "DV", where)
        if not math.isfinite(v):
            raise Il2alsError(f"{where}: DV is not finite")
        unit = get("DVUNIT") or cols["DV"][1] or out_units[name]
        if get("DVUNIT"):
            parse_unit(unit, f"{where}: DVUNIT")
        try:
            v = float(Q_(v, unit).to(out_units[name]).magnitude)
        except Exception:
            raise Il2alsError(f"{where}: DV unit '{unit}' does not convert to {name}'s unit '{out_units[name]}'") from None
        obs.append(Observation(pid, t, name, v))
    if not obs:
        raise Il2alsError(f"{path}: no observation rows (rows with DV and observable)")
    for pid, ds in doses.items():
        merged: dict[tuple, float] = {}  # doses of one kind at one time add up
        for d in ds:
            key = (d.time, d.route, d.duration, d.steady_state_interval)
            merged[key] = merged.get(key, 0.0) + d.amount
        doses[pid] = sorted(Dose(k[0], a, "IU", k[1], k[2], k[3]) for k, a in merged.items())
    return Dataset({k: Regimen(tuple(v), f"ID {k}", resets=tuple(resets.get(k, ()))) for k, v in doses.items()},
                   tuple(obs), str(path), pars, covs)


def _infusion_days(get, cols: dict, amount: float, t_factor: float, where: str) -> float:
    """A dose row's infusion duration in days: 0 for a bolus (RATE 0 or absent), AMT/RATE for RATE > 0 (RATE in
    its header's unit, else AMT's unit per TIME's unit), the DUR column for RATE -2."""
    if get("RATE") in _MISSING:
        return 0.0
    rate = _float(get("RATE"), "RATE", where)
    if rate == 0:
        return 0.0
    if rate == -2:
        if get("DUR") in _MISSING:
            raise RegimenError(f"{where}: RATE -2 needs the infusion's duration in a DUR column (in TIME's unit)")
        dur = _float(get("DUR"), "DUR", where)
        factor = float(Q_(1.0, cols["DUR"][1]).to("day").magnitude) if cols["DUR"][1] else t_factor
        if not (math.isfinite(dur) and dur > 0):
            raise RegimenError(f"{where}: DUR {get('DUR')} must be a positive duration")
        return dur * factor
    if rate == -1:
        raise RegimenError(f"{where}: RATE -1 (a rate modelled in the control stream) is not supported; give RATE > 0 "
                           "or RATE -2 with a DUR column")
    if not (math.isfinite(rate) and rate > 0):
        raise RegimenError(f"{where}: RATE {get('RATE')} must be 0 (bolus), > 0 (amount per time), or -2 (with DUR)")
    unit = cols["RATE"][1]
    if unit is not None:
        try:
            per_day = float(Q_(rate, unit).to(f"({cols['AMT'][1]})/day").magnitude)
        except Exception:
            raise RegimenError(f"{where}: RATE unit '{unit}' is not AMT's unit per time; e.g. 'RATE [MIU/h]'") from None
    else:
        per_day = rate / t_factor  # AMT per TIME unit
    return amount / per_day


def replicate_dataset(rep, regimen: Regimen, design, model: CompiledModel | None = None) -> Dataset:
    """One virtual trial (an :class:`il2als.studies.trial.Replicate`) as a dataset: per patient the arm's doses (IU), the
    recorded ALSFRS-R visits until death and baseline CSF pNfH; covariates ARM, STRATUM, DTIME [day] (death or
    censoring) and DEATH (1/0), and the parameters that differ between patients as parameter columns."""
    model = model or default_model()
    if rep.visit_alsfrs is None or rep.params is None:
        raise Il2alsError("this replicate kept no visit records; rerun the trial with this version of il2als")
    varying = [j for j in range(rep.params.shape[1]) if np.ptp(rep.params[:, j]) > 0]
    i_bsa = model.parameter_index("body_surface_area")
    i_sa = model.parameter_index("aldesleukin_specific_activity")
    strata = ("very_low", "low", "high")
    regs, obs, pars, covs = {}, [], {}, {}
    for i in range(len(rep.arm)):
        pid = str(i + 1)
        if rep.arm[i]:
            iu = regimen.amounts_iu(rep.params[i, i_bsa], rep.params[i, i_sa])
            regs[pid] = Regimen(tuple(Dose(float(t), float(a), "IU") for t, a in zip(regimen.times(), iu)), f"ID {pid}")
        else:
            regs[pid] = Regimen((), f"ID {pid}")
        obs.append(Observation(pid, 0.0, "pnfh_csf", float(rep.pnfh[i])))
        obs += [Observation(pid, float(t), "alsfrs_r", float(v))
                for t, v in zip(rep.visit_days, rep.visit_alsfrs[i]) if np.isfinite(v)]
        pars[pid] = {model.parameter_names[j]: float(rep.params[i, j]) for j in varying}
        covs[pid] = {"ARM": "IL-2" if rep.arm[i] else "placebo", "STRATUM": strata[int(rep.stratum[i])],
                     "DTIME [day]": f"{rep.time[i]:.6g}", "DEATH": str(int(rep.event[i]))}
    return Dataset(regs, tuple(obs), f"virtual {design.name} trial", pars, covs)


def dataset_csv(data: Dataset, *, time_unit: str = "day") -> str:
    """``data`` as NONMEM-style CSV text: ID, TIME, AMT [IU], EVID, CMT, DV, MDV, observable, DVUNIT, then the
    parameter columns and covariates; dose rows before observations at the same time. Numbers are
    written in full precision (shortest round-trip form), so reading the file back gives the same values."""
    model = default_model()
    cmt_of = {v: k for k, v in compartments(model).items()}
    out_units = {o.name: (o.output_unit or o.unit) for o in model.observables}
    pnames = sorted({k for d in data.parameters.values() for k in d})
    cnames = sorted({k for d in data.covariates.values() for k in d})
    f = float(Q_(1.0, "day").to(time_unit).magnitude)
    cmt_of_route = {r.name: cmt_of[r.state] for r in model.card.dose_routes}
    records = any(not reg.plain for reg in data.regimens.values())  # RATE, SS and II columns only when needed
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["ID", f"TIME [{time_unit}]", "AMT [IU]", "EVID", "CMT", "DV", "MDV", "observable", "DVUNIT",
                *([f"RATE [IU/{time_unit}]", "SS", f"II [{time_unit}]"] if records else []),
                *(f"{k} [{model.card.parameter(k).unit}]" for k in pnames), *cnames])
    by_id: dict[str, list] = {pid: [] for pid in data.ids}
    for pid, reg in data.regimens.items():
        for t in reg.resets:
            by_id[pid].append((t, -1, [repr(t * f), ".", 3, ".", ".", 1, "", "", ".", ".", "."]))
        for d in reg.doses:
            if d.unit != "IU":
                raise Il2alsError(f"ID {pid}: write doses in IU (got {d.unit}); convert with the patient's parameters first")
            extra = [repr(d.amount / (d.duration * f)) if d.duration > 0 else "0", "1" if d.steady_state_interval else "0",
                     repr(d.steady_state_interval * f) if d.steady_state_interval else "."]
            by_id[pid].append((d.time, 0, [repr(d.time * f), repr(d.amount), 1, cmt_of_route[d.route], ".", 1, "", "",
                                           *extra]))
    for o in data.observations:
        by_id.setdefault(o.id, []).append((o.time, 1, [repr(o.time * f), ".", 0, cmt_of[o.observable],
                                                      repr(o.value), 0, o.observable, out_units[o.observable],
                                                      ".", ".", "."]))
    for pid, rows in by_id.items():
        extra = [*(repr(data.parameters.get(pid, {}).get(k, math.nan)) for k in pnames),
                 *(data.covariates.get(pid, {}).get(k, "") for k in cnames)]
        for _, _, row in sorted(rows, key=lambda x: (x[0], x[1])):
            w.writerow([pid, *(row if records else row[:8]), *extra])  # the last three: RATE, SS, II
    return buf.getvalue()
