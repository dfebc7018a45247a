"""Calibration study: fit the default parameters to the literature targets, in two stages, and write
``params/calibrated.toml`` (a set based on the hand-set default) with a report.

Stage 1 fits pharmacokinetics and the Treg response, counts and suppressive function (params/problems/pk_treg.toml);
stage 2 biomarkers, motor-unit loss and ALSFRS-R from onset to entry (natural_history.toml); stage 3 the Treg ->
microglia coupling to IMODALS's CCL2 fall and stable NfL (treatment_response.toml); stage 4 the death hazard to the
survival of the virtual population on placebo (survival.toml). The stages fit disjoint parameters and run in sequence, each from the previous one's fit. Trial treatment outcomes
are never targets.

    python -m il2als.experiments.calibrate --out runs/calibration [--write-params params/calibrated.toml]

The report folder holds each stage's estimates (with covariance and profile-likelihood 95% intervals and an
identifiability verdict), the targets at the optimum, waterfall and profile plots, and the check of every
target for the hand-set and the calibrated set.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from il2als.cli.fitting_runs import run_problem_file

#: the calibration always starts from the hand-set values (never from a previous calibration)
BASE = "handset"
#: the stages, in order; each fits its own parameters from the previous stage's result
STAGES = ("pk_treg", "natural_history", "treatment_response", "survival")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="runs/calibration")
    ap.add_argument("--write-params", default=None, help="where to write the calibrated parameter file")
    ap.add_argument("--n-starts", type=int, default=None)
    a = ap.parse_args(argv)
    out = Path(a.out)
    t0 = time.perf_counter()
    fits = {}
    start = BASE
    for stage in STAGES:
        # each stage starts from the previous stage's fit: the stages fit disjoint parameters, but the later
        # targets (population survival) depend on the earlier parameters (ALSFRS-R map, eligibility)
        fits[stage] = run_problem_file(stage, out / stage, params=start, n_starts=a.n_starts)
        if not fits[stage].converged:
            raise SystemExit(f"calibration: stage {stage} did not converge; no calibrated set written "
                             f"(raise max_nfev in params/problems/{stage}.toml); report in {out / stage}")
        start = str((out / stage / "fitted.toml").resolve())
    lines = ["# Calibrated parameter set: the hand-set default with the values fitted by experiments/calibrate.py.",
             "# Every fitted value cites its fit and interval; everything else is inherited from handset.toml.",
             "[meta]", 'name = "calibrated"',
             'title = "Calibrated to natural-history, pharmacology and biomarker targets (params/targets/literature.toml)"',
             f'base = "{BASE}"', "", "[parameters]"]
    for stage, res in fits.items():
        lines += [l for l in (out / stage / "fitted.toml").read_text().splitlines() if " = { value = " in l]
    text = "\n".join(lines) + "\n"
    (out / "calibrated.toml").write_text(text, encoding="utf-8")
    if a.write_params:
        Path(a.write_params).write_text(text, encoding="utf-8")
    print(f"calibration: {time.perf_counter() - t0:.0f} s in all; wrote {out / 'calibrated.toml'}"
          + (f" and {a.write_params}" if a.write_params else ""))


if __name__ == "__main__":
    main()
