"""PEtab v1 export of a time-series fitting problem (a dataset, free parameters and an error model).

The same problem as ``il2als fit --data``, written so that pyPESTO/AMICI (or any PEtab tool) can fit it:

* ``model.xml``: the SBML export (:mod:`il2als.export.sbml`) with as many dose slots as the largest regimen;
* ``conditions.tsv``: one condition per ID, setting its dose slots (time [day], amount [IU]) and its
  parameter columns; plus ``preequilibration`` (no doses, ``hold_fixed_states = 1``), which every measurement
  names as its pre-equilibration, so the baseline is re-derived for every parameter vector the optimiser tries,
  exactly as il2als derives it (the steady state with the fixed states held);
* ``observables.tsv``: ``obs_<name>`` = the SBML quantity times its output-unit factor (e.g. 100 x fraction
  for ``treg_pct_cd4`` in %), so measurements stay in the units people report; the error model maps to PEtab
  noise: additive -> normal with sd; proportional -> normal with sd x |measurement| (per row, as il2als's
  residuals); lognormal -> log transformation with sd;
* ``measurements.tsv``, ``parameters.tsv`` (free parameters on natural-log scale with the plausible range as
  bounds, and the weak prior il2als uses as a ``parameterScaleNormal`` prior), ``problem.yaml``.

Needs ``python-libsbml``; linting needs ``petab`` (``pip install "il2als[formats]"``).
"""

from __future__ import annotations

import csv
import io
import math
import re
from pathlib import Path

from il2als.compiler.codegen import default_model
from il2als.errors import Il2alsError
from il2als.export.sbml import HOLD, to_sbml
from il2als.fitting.dataset_fit import DataProblem
from il2als.inputs.regimens import Regimen
from il2als.results.trajectory import _factor

__all__ = ["PREEQ", "condition_id", "observable_id", "petab_tables", "write_petab", "lint"]

PREEQ = "preequilibration"


def _tsv(rows: list[dict]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(rows[0]), delimiter="\t", lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    return buf.getvalue()


def condition_id(pid: str) -> str:
    """A PEtab identifier for a dataset ID (``7`` -> ``id_7``)."""
    return "id_" + re.sub(r"[^A-Za-z0-9_]", "_", str(pid))


def observable_id(name: str) -> str:
    return f"obs_{name}"


def petab_tables(problem: DataProblem) -> dict[str, str]:
    """The PEtab files of ``problem`` as ``{file name: text}`` (see the module docstring)."""
    model = default_model()
    data, base = problem.data, problem.base
    ids = data.ids
    free = {f.name for f in problem.free}
    clash = sorted(free & {k for d in data.parameters.values() for k in d})
    if clash:
        raise Il2alsError(f"{', '.join(clash)} is both estimated and a dataset column; drop it from `free` or the data")
    odd = next((p for p in ids if not data.regimens[p].plain), None)
    if odd is not None:
        raise Il2alsError(f"ID {odd}: the PEtab export carries SC bolus doses only; IV doses, infusions (RATE), "
                          "steady-state doses (SS: PEtab's pre-equilibration is a steady state, not a periodic one) and "
                          "resets (EVID 3/4) have no form in it yet: fit this dataset with il2als's own population or pooled fit, or export "
                          "the IDs with SC bolus doses only")
    if len({condition_id(p) for p in ids}) != len(ids):
        raise Il2alsError("two dataset IDs map to the same PEtab condition id; use IDs of letters, digits and '_'")
    bsa_i, sa_i = model.parameter_index("body_surface_area"), model.parameter_index("aldesleukin_specific_activity")
    P = data.parameter_matrix(base, model)
    slots = max([len(data.regimens[p]) for p in ids] + [1])
    sbml = to_sbml(base, Regimen(()), dose_slots=slots)
    if sbml.errors:
        raise Il2alsError(f"SBML export failed libSBML validation: {sbml.errors[0]}")

    pcols = sorted({k for d in data.parameters.values() for k in d})
    no_doses = {**{f"dose_{k}_time": 0 for k in range(slots)}, **{f"dose_{k}_amount": 0 for k in range(slots)}}

    def own(i: int) -> dict:
        return {c: repr(float(P[i, model.parameter_index(c)])) for c in pcols}

    # A pre-equilibration per ID when IDs carry their own parameters (their baselines differ), else one for all.
    def preeq_id(pid: str) -> str:
        return f"{PREEQ}_{condition_id(pid)}" if pcols else PREEQ

    cond = [] if pcols else [{"conditionId": PREEQ, "conditionName": "pre-treatment steady state (fixed states held)",
                              HOLD: 1, **no_doses}]
    for i, pid in enumerate(ids):
        if pcols:
            cond.append({"conditionId": preeq_id(pid), "conditionName": f"ID {pid}: pre-treatment steady state",
                         HOLD: 1, **no_doses, **own(i)})
        reg = data.regimens[pid]
        t, a = reg.times(), reg.amounts_iu(P[i, bsa_i], P[i, sa_i])
        row = {"conditionId": condition_id(pid), "conditionName": f"ID {pid}", HOLD: 0}
        row.update({f"dose_{k}_time": repr(float(t[k])) if k < len(t) else 0 for k in range(slots)})
        row.update({f"dose_{k}_amount": repr(float(a[k])) if k < len(t) else 0 for k in range(slots)})
        cond.append({**row, **own(i)})

    out_units = {o.name: (o.unit, o.output_unit or o.unit) for o in model.observables}
    names = list(dict.fromkeys(o.observable for o in data.observations))
    kind, sd = problem.error_model, problem.sd
    obs_rows = []
    for n in names:
        unit, out = out_units[n]
        f = _factor(unit, out) if unit != out else 1.0
        obs_rows.append({
            "observableId": observable_id(n), "observableName": f"{n} [{out}]",
            "observableFormula": n if f == 1.0 else f"{f!r} * {n}",
            "observableTransformation": "log" if kind == "lognormal" else "lin",
            "noiseFormula": f"noiseParameter1_{observable_id(n)}" if kind == "proportional" else repr(sd),
            "noiseDistribution": "normal"})
    meas = []
    for o in data.observations:
        if kind == "lognormal" and not o.value > 0:
            raise Il2alsError(f"ID {o.id} day {o.time:g}: {o.observable} = {o.value:g} cannot have log-normal error; "
                              "use the `error_model` additive or proportional")
        row = {"observableId": observable_id(o.observable), "preequilibrationConditionId": preeq_id(o.id),
               "simulationConditionId": condition_id(o.id), "measurement": repr(o.value), "time": repr(o.time)}
        if kind == "proportional":
            row["noiseParameters"] = repr(sd * abs(o.value))
        meas.append(row)
    par = []
    for fp in problem.free:
        w = problem.prior_weight
        prior = f"{math.log(fp.nominal)!r};{fp.prior_sd / math.sqrt(w)!r}" if fp.prior_sd and w > 0 else ""
        par.append({"parameterId": fp.name, "parameterName": f"{fp.name} [{fp.unit}]", "parameterScale": "log",
                    "lowerBound": repr(fp.lower), "upperBound": repr(fp.upper), "nominalValue": repr(fp.nominal),
                    "estimate": 1, "objectivePriorType": "parameterScaleNormal" if prior else "",
                    "objectivePriorParameters": prior})
    yaml = ("format_version: 1\n"
            "parameter_file: parameters.tsv\n"
            "problems:\n"
            "- sbml_files: [model.xml]\n"
            "  condition_files: [conditions.tsv]\n"
            "  measurement_files: [measurements.tsv]\n"
            "  observable_files: [observables.tsv]\n")
    return {"model.xml": sbml.xml, "conditions.tsv": _tsv(cond), "observables.tsv": _tsv(obs_rows),
            "measurements.tsv": _tsv(meas), "parameters.tsv": _tsv(par), "problem.yaml": yaml}


def write_petab(problem: DataProblem, folder: Path) -> list[str]:
    """Write a pooled time-series fitting problem as PEtab v1 files.

    Parameters
    ----------
    problem : DataProblem
        From :func:`il2als.fitting.dataset_fit.make_data_problem`; SC bolus doses only.
    folder : Path
        An existing folder.

    Returns
    -------
    list of str
        The files written (SBML model, conditions, observables, measurements, parameters, problem YAML).
    """
    files = petab_tables(problem)
    for name, text in files.items():
        (Path(folder) / name).write_text(text, encoding="utf-8")
    return list(files)


def lint(folder: Path) -> bool:
    """Run the ``petab`` linter on ``folder/problem.yaml``; True when it finds no error."""
    try:
        from petab import v1 as petab
    except ImportError:  # pragma: no cover
        raise Il2alsError("linting needs the petab package: pip install petab") from None
    import logging

    log = logging.getLogger("petab")
    level = log.level
    log.setLevel(logging.WARNING)  # the linter's info lines ("Visualization table not available") are noise here
    try:
        problem = petab.Problem.from_yaml(str(Path(folder) / "problem.yaml"))
        return not petab.lint_problem(problem)
    finally:
        log.setLevel(level)
