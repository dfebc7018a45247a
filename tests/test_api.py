"""The modeller's API (#15): package exports, typed results, output times and initial states, the regimen grammar,
the one definition of slopes and strata, and --set on every command that simulates."""

import importlib
import warnings

import numpy as np
import pytest

import il2als
from il2als import Q_, load_parameters, load_population_spec, sample_population, simulate, simulate_population
from il2als.errors import Il2alsError, RegimenError
from il2als.inputs import course, cycles, on_days, parse_regimen
from il2als.results import PNFH_CUTOFFS, slope_from_baseline, stratum_labels, stratum_of

PACKAGES = ["compiler", "inputs", "solve", "results", "studies", "fitting", "export", "plot", "cli"]


@pytest.mark.parametrize("package", PACKAGES)
def test_every_public_name_of_every_package_resolves(package):
    mod = importlib.import_module(f"il2als.{package}")
    assert mod.__all__, package
    for name in mod.__all__:
        assert getattr(mod, name) is not None, f"il2als.{package}.{name}"
    with pytest.raises(AttributeError):
        mod.no_such_name  # noqa: B018


def test_the_top_level_gives_the_verbs_and_each_is_the_object_its_package_defines():
    from il2als.fitting import fit_population
    from il2als.studies import run_trial

    assert il2als.run_trial is run_trial and il2als.fit_population is fit_population
    for name in il2als.__all__:
        assert getattr(il2als, name) is not None, name


# -- the regimen grammar: sentences parse into the objects the factories build ------------------------------
@pytest.mark.parametrize("sentence, built", [
    ("3 MIU twice weekly for 8 weeks", lambda: on_days("3 MIU", [1, 4], "7 day", span="8 week")),
    ("1 MIU three times a week, 4 weeks", lambda: on_days("1 MIU", [1, 3, 5], "7 day", 4)),
    ("1 MIU weekly for 3 weeks", lambda: on_days("1 MIU", [1], "7 day", 3)),
    ("2 MIU on days 1 and 4 every 7 days for 3 cycles", lambda: on_days("2 MIU", [1, 4], "7 day", 3)),
    ("2 MIU on days 1, 3 and 5 every 14 days for 4 weeks starting at day 7",
     lambda: on_days("2 MIU", [1, 3, 5], "14 day", span="4 week", start="7 day")),
    ("2 MIU daily for 5 days every 28 days for 3 cycles", lambda: cycles("2 MIU", 5, "28 day", 3)),
])
def test_regimen_sentences_equal_their_factories(sentence, built):
    assert parse_regimen(sentence).doses == built().doses


def test_twice_weekly_doses_on_days_1_and_4_of_each_week():
    r = parse_regimen("3 MIU twice weekly for 8 weeks")
    assert len(r) == 16
    assert [d.time for d in r.doses[:4]] == [0.0, 3.0, 7.0, 10.0] and r.doses[-1].time == 7 * 7 + 3
    assert {d.amount for d in r.doses} == {3e6} and {d.unit for d in r.doses} == {"IU"}
    # "for 8 weeks" keeps the doses inside the span: a course of days 1 and 4 every 7 days for 53 days has 16 too
    assert len(on_days("3 MIU", [1, 4], "7 day", span="53 day")) == 16
    assert len(on_days("3 MIU", [1, 4], "7 day", span="52 day")) == 15  # day 53 (t = 52) is not inside 52 days


@pytest.mark.parametrize("sentence, words", [
    ("2 MIU on days 1 and 9 every 7 days, 2 cycles", "does not fall within a period"),
    ("2 MIU on days 4 and 1 every 7 days, 2 cycles", "increasing"),
    ("2 MIU on days 0 and 3 every 7 days, 2 cycles", ">= 1"),
])
def test_bad_day_patterns_are_one_line_refusals(sentence, words):
    with pytest.raises(RegimenError, match=words):
        parse_regimen(sentence)


# -- output times, initial states, typed results ------------------------------------------------------------
@pytest.fixture(scope="module")
def default_set():
    return load_parameters("default")


def test_simulate_at_given_times_equals_the_grid_at_those_times(default_set):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        grid = simulate(default_set, "mirocals", "60 day", step="1 day")
        at = simulate(default_set, "mirocals", times=Q_([1.0, 2.0, 30.0, 60.0], "day"))
    assert list(at.time) == [0.0, 1.0, 2.0, 30.0, 60.0]
    for name in ("treg_pct_cd4", "ccl2_plasma", "nfl_serum"):
        np.testing.assert_allclose(at[name], grid[name][[0, 1, 2, 30, 60]], rtol=1e-5)


def test_continuing_from_a_trajectory_equals_one_run(default_set):
    reg = course("1 MIU", 5)
    whole = simulate(default_set, reg, "90 day")
    first = simulate(default_set, reg, "60 day")
    rest = simulate(default_set, "none", "30 day", initial=first)
    for name in ("treg_pct_cd4", "mn_reserve", "alsfrs_r"):
        np.testing.assert_allclose(rest[name], whole[name][60:], rtol=1e-5)
    with pytest.raises(Il2alsError, match="not known"):
        simulate(default_set, "none", "1 day", initial="onset")
    with pytest.raises(Il2alsError, match="finite, non-negative"):
        simulate(default_set, "none", "1 day", initial=np.zeros(3))


def test_population_result_long_dataframe_has_units_and_the_values(default_set):
    res = simulate_population([default_set, default_set.updated(ec50_treg="3 IU/mL")], "mirocals", "10 day",
                              outputs=["treg_pct_cd4", "ccl2_plasma"])
    df = res.to_dataframe(ids=["A", "B"])
    assert list(df.columns) == ["ID", "time [day]", "status", "treg_pct_cd4 [%]", "ccl2_plasma [pg/mL]"]
    assert len(df) == 2 * len(res.time)
    np.testing.assert_array_equal(df.loc[df.ID == "B", "treg_pct_cd4 [%]"].to_numpy(), res["treg_pct_cd4"][1])
    with pytest.raises(Il2alsError, match="was not asked for"):
        res.to_dataframe(outputs=["nfl_serum"])


def test_trajectory_plot_labels_every_panel_with_its_unit(default_set):
    import matplotlib.pyplot as plt

    axes = simulate(default_set, course("1 MIU", 5), "40 day").plot(["treg_pct_cd4", "alsfrs_r"])
    assert [a.get_ylabel() for a in axes] == ["treg_pct_cd4 [%]", "alsfrs_r [points]"]
    assert axes[-1].get_xlabel() == "time [day]"
    plt.close("all")


@pytest.fixture(scope="module")
def small_trial():
    from dataclasses import replace

    from il2als.studies import design, run_trial

    spec = load_population_spec().centred_on(load_parameters("mirocals-informed"))
    return run_trial(replace(design("mirocals"), n_per_arm=40, alsfrs_analysis="slopes"), "mirocals", spec, 3, 5)


def test_trial_summary_rows_carry_a_unit_for_every_number(small_trial):
    rows = small_trial.summary_rows()
    by = {r["quantity"]: r for r in rows}
    assert by["hr_overall.median"]["unit"] == "1"
    assert by["alsfrs_slope.il2"]["unit"] == "points/month"
    assert by["hr_by_stratum.low.alsfrs_slope.placebo"]["unit"] == "points/month"
    assert by["hr_by_stratum.low.n_median"]["unit"] == "patients"
    assert by["follow_up_days"]["unit"] == "day" and by["dropout_per_year"]["unit"] == "1/year"
    unitless = [r["quantity"] for r in rows if isinstance(r["value"], (int, float)) and not isinstance(r["value"], bool)
                and r["unit"] == "" and r["quantity"] != "seed"]
    assert unitless == [], unitless
    reps = small_trial.to_dataframe()
    assert len(reps) == 3 and "alsfrs_slope_il2 [points/month]" in reps.columns


def test_km_curves_are_per_trial_and_equal_lifelines(small_trial):
    from lifelines import KaplanMeierFitter

    from il2als.studies.survival import kaplan_meier

    r = small_trial.replicates[0]
    grid = np.arange(0.0, 640.0, 7.0)
    S, at_risk = kaplan_meier(r.time, r.event, grid)
    ref = KaplanMeierFitter().fit(r.time, r.event).predict(grid).to_numpy()
    np.testing.assert_allclose(S, ref, atol=1e-12)
    assert at_risk[0] == len(r.time) and np.all(np.diff(at_risk) <= 0)
    km = small_trial.km_curves()
    overall = km[("overall", "il2")]
    assert overall["replicates"] == 3 and np.all(overall["low"] <= overall["median"] + 1e-12)
    assert np.all(overall["median"] <= overall["high"] + 1e-12)


def test_scenario_result_long_dataframe():
    from il2als.studies import slow_vs_fast

    spec = load_population_spec()
    res = slow_vs_fast("mirocals", spec, 4, 2, 30.0, profiles={p: load_parameters(p) for p in ("slow", "fast")})
    df = res.to_dataframe(["alsfrs_r"])
    assert set(df.group) == {"slow", "fast"} and set(df.arm) == {"placebo", "mirocals"}
    assert len(df) == 2 * 2 * 4 * len(res.time) and "alsfrs_r [points]" in df.columns
    assert all("[" in k for r in res.to_rows() for k in r if k not in ("group", "arm", "n"))


# -- one definition of slopes and strata --------------------------------------------------------------------
def test_slopes_and_strata_have_one_definition():
    t = np.array([0.0, 30.4375, 60.875])
    a = np.array([[40.0, 39.0, 38.0], [40.0, 38.0, 36.0]])
    np.testing.assert_allclose(slope_from_baseline(a, t), [-1.0, -2.0])
    np.testing.assert_allclose(slope_from_baseline(a, t, np.array([1, 2])), [-1.0, -2.0])
    np.testing.assert_array_equal(stratum_of(np.array([749.9, 750.0, 3700.0, 3700.1])), [0, 1, 1, 2])
    assert PNFH_CUTOFFS == (750.0, 3700.0)
    assert stratum_labels()["low"] == "low (750-3700 pg/mL)"


def test_the_cohorts_screening_alsfrs_comes_from_the_mechanism():
    """The cohort used to re-implement ALSFRS-R; it now evaluates the mechanism's observable."""
    spec = load_population_spec()
    c = sample_population(spec, 30, np.random.default_rng(4))
    from il2als.compiler import default_model

    m = default_model()
    n50 = c.params[:, m.parameter_index("alsfrs_reserve_half")]
    h = c.params[:, m.parameter_index("alsfrs_hill")]
    reserve = c.states[:, m.state_index("mn_reserve")]
    # at randomisation the score from the observable equals 48 / (1 + (n50 / reserve)^h)
    y = m.observe(np.zeros(len(c)), c.states, c.params.T)[:, m.observable_names.index("alsfrs_r")]
    np.testing.assert_allclose(y, 48.0 / (1.0 + (n50 / reserve) ** h), rtol=1e-12)
    assert np.all(c.covariates["alsfrs_r_screening"] >= y - 1e-9)  # scores only fall between screening and baseline
    # asked for some observables, observe computes those alone, in the order asked, with the same arithmetic
    names = m.observable_names
    cols = [names.index("survival"), names.index("alsfrs_r"), names.index("treg_pct_cd4")]
    full = m.observe(np.zeros(len(c)), c.states, c.params.T)
    assert np.array_equal(m.observe(np.zeros(len(c)), c.states, c.params.T, cols), full[:, cols])
    with pytest.raises(IndexError, match="out of range"):
        m.observe(np.zeros(len(c)), c.states, c.params.T, [len(names)])


# -- the command line: --set everywhere, messages in its own terms ------------------------------------------
SIMULATING = ["simulate", "scenario slow-vs-fast", "trial", "compare-regimens", "power", "design-phase3", "population",
              "biology", "check", "fit --problem pk_treg", "sensitivity", "export-sbml"]


@pytest.mark.parametrize("command", SIMULATING)
def test_every_command_that_simulates_takes_set(command):
    from il2als.cli import build_parser

    args = build_parser().parse_args([*command.split(), "--set", "ec50_treg=2 IU/mL", "--out", "x"])
    assert args.set == ["ec50_treg=2 IU/mL"]


def test_library_messages_name_arguments_and_the_cli_names_flags():
    import argparse

    from il2als.cli.app import _advice

    msg = "no free parameters; name at least one in `free`, e.g. ka"
    assert _advice(msg, argparse.Namespace(free="")) == "no free parameters; name at least one in --free, e.g. ka"
    assert _advice(msg, argparse.Namespace()) == "no free parameters; name at least one in free, e.g. ka"


def test_a_bad_set_is_one_line_and_exit_2(tmp_path, capsys):
    from il2als.cli import main

    assert main(["population", "--n", "5", "--set", "bogus=1", "--out", str(tmp_path / "p")]) == 2
    err = capsys.readouterr().err
    assert "unknown parameter 'bogus'" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "p").exists()


# -- one simulate: one patient on either solver, many patients on the engine --------------------------------
def test_one_patient_on_the_engine_matches_the_scipy_reference(default_set):
    from il2als import SolverOptions

    ref = simulate(default_set, "mirocals", "640 day", options=SolverOptions(rtol=1e-10, atol=1e-12))
    eng = simulate(default_set, "mirocals", "640 day", options=SolverOptions(method="engine"))
    for name in ("treg_pct_cd4", "ccl2_csf", "nfl_serum", "mn_reserve", "alsfrs_r", "survival"):
        np.testing.assert_allclose(eng[name], ref[name], rtol=1e-6, err_msg=name)
    assert eng.states.shape == ref.states.shape and eng.regimen == ref.regimen


def test_many_patients_through_simulate_are_simulate_population(default_set):
    sets = [default_set, default_set.updated(ec50_treg="3 IU/mL")]
    a = simulate(sets, "mirocals", "30 day", outputs=["treg_pct_cd4"])
    b = simulate_population(sets, "mirocals", "30 day", outputs=["treg_pct_cd4"])
    np.testing.assert_array_equal(a["treg_pct_cd4"], b["treg_pct_cd4"])
    from il2als import SolverOptions

    with pytest.raises(Il2alsError, match="BatchOptions"):
        simulate(sets, "mirocals", "30 day", options=SolverOptions())


@pytest.mark.parametrize("package", PACKAGES)
def test_each_package_exports_exactly_its_modules_public_names(package):
    """A package's __all__ is the union of its modules' __all__ (so a new public name cannot be forgotten), except
    the command line, which exports only its entry points (the function and the program), and the two OUTPUTS tables of studies (one per module)."""
    import pkgutil

    pkg = importlib.import_module(f"il2als.{package}")
    expected = {}
    for info in pkgutil.iter_modules(pkg.__path__):
        if info.name.startswith("_") or info.name == "kernels":
            continue
        mod = importlib.import_module(f"il2als.{package}.{info.name}")
        for name in getattr(mod, "__all__", ()):
            expected.setdefault(name, info.name)
    if package == "cli":
        expected = {"main": "app", "console": "app", "build_parser": "app"}
    if package == "studies":
        expected.pop("OUTPUTS")
    assert pkg._EXPORTS == expected


@pytest.mark.parametrize("package", ["", *PACKAGES])
def test_no_public_name_shadows_a_submodule(package):
    """A lazily loaded name that is also a submodule's name is replaced by the submodule once that is imported
    (the old il2als.simulate defect): no package may export one."""
    import pkgutil

    pkg = importlib.import_module(f"il2als.{package}" if package else "il2als")
    submodules = {info.name for info in pkgutil.iter_modules(pkg.__path__)}
    assert not submodules & set(pkg.__all__)


def test_the_generated_source_is_cached_by_hash_and_a_damaged_copy_is_never_used(tmp_path):
    """#16: a new process reads the generated model source instead of re-deriving it through sympy; the copy is
    keyed by the equations' hash and carries the hash of its own text, so an edited or truncated file is ignored."""
    import hashlib
    import os
    import subprocess
    import sys

    env = {**os.environ, "IL2ALS_CACHE_DIR": str(tmp_path)}
    code = ("import hashlib, numpy as np\nfrom il2als.compiler import default_model\nm = default_model()\n"
            "y = np.ones(len(m.state_names)); p = np.ones(len(m.parameter_names))\n"
            "print(hashlib.sha256(m.source.encode()).hexdigest(), float(m.rhs(0.0, y, p).sum()))")

    def run():
        return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                              check=True).stdout.strip()

    first = run()
    files = list((tmp_path / "generated").glob("model_*.py"))
    assert len(files) == 1
    assert run() == first  # from the cache: the same source, the same numbers
    damaged = files[0].read_text().replace("def rhs(", "def rhs_broken(", 1)
    files[0].write_text(damaged)
    assert run() == first  # the damaged copy fails its stamp and is regenerated
    head, _, body = files[0].read_text().partition("\n")
    assert head.endswith(hashlib.sha256(body.encode()).hexdigest()) and "def rhs(" in body


def test_the_model_card_round_trips_and_a_new_process_simulates_without_sympy(tmp_path):
    """#16: the package's model is kept as its card (names, units, bounds, routes) beside the generated source,
    keyed by its source files' hash: the card equals the mechanism's and survives JSON; a new process then loads
    the model, validates parameter sets and runs a trial replicate without importing sympy, with the same numbers
    as the process that built it; a damaged card is ignored and rebuilt; the symbolic mechanism is still there
    on demand (built on first use)."""
    import os
    import subprocess
    import sys

    from il2als.compiler import ModelCard, card_of, compile_mechanism, default_model
    from il2als.mechanism import build_mechanism

    mech = build_mechanism()
    card = card_of(mech)
    assert ModelCard.from_json(card.to_json()) == card
    assert card.parameter("clearance").unit == mech.parameter("clearance").unit
    assert [r.scale_parameters for r in card.dose_routes] == [(), ("volume",)]  # sc: 1, iv: 1/volume
    built = compile_mechanism(mech)
    p = load_parameters("default").vector(built)
    assert {k: r[1](p) for k, r in built.routes.items()} == pytest.approx(
        {"sc": 1.0, "iv": 1.0 / load_parameters("default").value("volume")})

    env = {**os.environ, "IL2ALS_CACHE_DIR": str(tmp_path)}  # a fresh cache (the engine is not needed here)
    code = ("import sys, numpy as np\n"
            "from il2als.compiler import default_model\n"
            "from il2als.inputs.parameters import load_parameters\n"
            "m = default_model(); p = load_parameters('mirocals-informed').vector(m)\n"
            "y = np.linspace(0.5, 2.0, len(m.state_names))\n"
            "print('sympy' in sys.modules, float(m.rhs(0.0, y, p).sum()), float(m.jac(0.0, y, p).sum()))\n")

    def run(source=code, environ=env):
        out = subprocess.run([sys.executable, "-c", source], env=environ, capture_output=True, text=True, check=True)
        return out.stdout.split()

    first = run()
    assert first[0] == "True"  # built through sympy, and kept
    cards = list((tmp_path / "generated").glob("card_*.json"))
    assert len(cards) == 1
    again = run()
    assert again == ["False", *first[1:]]  # from the card: no sympy, the same numbers
    cards[0].write_text(cards[0].read_text().replace('"clearance"', '"clearence"'))
    assert run() == first  # a damaged card fails its stamp: rebuilt through sympy
    assert run() == again
    # in this machine's cache (card and engine kept by the process running the tests), a trial replicate
    from il2als import load_population_spec
    from il2als.studies.trial import design, run_trial

    hr = run_trial(design("mirocals"), "mirocals", load_population_spec(), 1, 3).replicates[0].analysis["hr"][0]
    replicate = ("import sys\n"
                 "from il2als import load_population_spec\n"
                 "from il2als.studies.trial import design, run_trial\n"
                 "r = run_trial(design('mirocals'), 'mirocals', load_population_spec(), 1, 3)\n"
                 "print('sympy' in sys.modules, repr(r.replicates[0].analysis['hr'][0]))\n")
    assert run(replicate, dict(os.environ)) == ["False", repr(hr)]
    m = default_model()
    assert m.mechanism.parameter_names == m.parameter_names  # the symbolic mechanism, on demand


def test_the_card_carries_every_declared_field_but_the_expressions():
    """#16: the model card mirrors the mechanism's declarations (it cannot share their classes: anything in
    il2als.mechanism imports sympy); a field added to a State, Parameter, Expression or DoseRoute must reach the
    card too, or a process loaded from the card would silently lack it. Only the sympy expressions stay behind
    (a route keeps the names of the parameters its scale uses)."""
    from dataclasses import fields

    from il2als.compiler import ExpressionCard, ParameterCard, RouteCard, StateCard
    from il2als.mechanism.core import DoseRoute, Expression, Parameter, State

    expressions = {"initial", "formula", "scale"}
    for card, declared in ((StateCard, State), (ParameterCard, Parameter), (ExpressionCard, Expression),
                           (RouteCard, DoseRoute)):
        assert {f.name for f in fields(card)} - {"scale_parameters"} == {f.name for f in fields(declared)} - expressions
