"""The compiled batch engine: same answers as the single-patient path, order of accuracy, failures, memory."""

import numpy as np
import pytest

from il2als import load_parameters, simulate
from il2als.compiler import default_model, load_engine
from il2als.errors import Il2alsError, SolverError
from il2als.solve import BatchOptions, SolverOptions, baseline_state, simulate_population

NAMES = ["nfl_serum", "nfl_csf", "pnfh_csf", "treg_count", "treg_pct_cd4", "mn_reserve", "ccl2_csf", "alsfrs_r",
         "survival"]


@pytest.fixture(scope="module")
def patients():
    return [load_parameters(x) for x in ("slow", "default", "fast")]


@pytest.mark.parametrize("reg", ["mirocals", "placebo", "imodals-1miu", "0.26 MIU/m**2 every 3 days for 12 weeks"])
def test_batch_equals_single_patient_path(patients, reg):
    res = simulate_population(patients, reg, "640 day", outputs=NAMES)
    assert np.all(res.status == 0)
    for i, ps in enumerate(patients):
        tr = simulate(ps, reg, "640 day", options=SolverOptions(method="LSODA"))  # the scipy reference
        for n in NAMES:
            np.testing.assert_allclose(res[n][i], tr[n], rtol=1e-4, err_msg=f"{ps.name} {n}")
    assert res.units["nfl_serum"] == "pg/mL" and res.header("treg_pct_cd4") == "treg_pct_cd4 [%]"


def test_per_patient_regimens_and_parameter_arrays(patients):
    P = np.array([ps.vector() for ps in patients])
    res = simulate_population(P, ["mirocals", "placebo", "mirocals"], "100 day", outputs=["treg_count"])
    assert res["treg_count"].shape == (3, 101)
    assert np.ptp(res["treg_count"][1]) < 1e-6 * res["treg_count"][1, 0]  # placebo: flat
    assert res["treg_count"][0].max() > 1.3 * res["treg_count"][0, 0]


def test_rosenbrock_method_converges_at_fourth_order():
    model = default_model()
    eng = load_engine(model)
    p = load_parameters("fast").vector(model)
    y0 = baseline_state(p, model)
    y0[model.state_index("il2_depot")] = 6e5  # a dose in the depot: the stiff PK transient
    ref = eng.fixed_step_solve(y0, p, 1.0, 8000)
    errs = []
    for n in (40, 80, 160):
        y = eng.fixed_step_solve(y0, p, 1.0, n)
        errs.append(np.max(np.abs(y - ref) / np.maximum(np.abs(ref), 1e-3)))
    orders = np.log2(np.array(errs[:-1]) / np.array(errs[1:]))
    assert np.all(orders > 3.5), orders


def test_a_failing_patient_is_reported_or_raises(patients):
    bad = patients[0].vector().copy()
    bad[default_model().parameter_index("k_microglia_activation")] = 1e300  # overflows
    P = np.array([patients[1].vector(), bad])
    with pytest.raises(SolverError, match="patient 1"):
        simulate_population(P, "ms-il2", "30 day", outputs=["treg_count"])
    res = simulate_population(P, "ms-il2", "30 day", outputs=["treg_count"], options=BatchOptions(on_failure="skip"))
    assert res.status[0] == 0 and res.status[1] != 0
    assert len(res.failures) == 1 and "patient 1" in res.failures[0]
    assert np.all(np.isnan(res["treg_count"][1])) and np.all(np.isfinite(res["treg_count"][0]))


def test_bad_population_input():
    with pytest.raises(Il2alsError, match="did you mean 'nfl_serum'"):
        simulate_population([load_parameters("slow")], "mirocals", "10 day", outputs=["nfl_serun"])
    with pytest.raises(Il2alsError, match="one per patient"):
        simulate_population([load_parameters("slow")] * 2, ["mirocals"] * 3, "10 day")
    with pytest.raises(Il2alsError, match="between 0 and 1"):
        BatchOptions(rtol=2.0)


def test_cohort_baseline_states_are_each_patients_own_baseline():
    """The sampler's screening solve doubles as the baseline (the steady states do not depend on the reserve)."""
    import numpy as np

    from il2als.inputs import load_population_spec
    from il2als.solve import population_baselines
    from il2als.studies import sample_population

    c = sample_population(load_population_spec(), 40, np.random.default_rng(9))
    Y, st = population_baselines(c.params)
    assert np.all(st == 0)
    assert np.allclose(c.states, Y, rtol=1e-12, atol=0)


def _mixed_population(n):
    """n patients drawn from the population spec, with every kind of dose event between them: SC courses,
    placebo, an IV bolus, an infusion, a steady-state dose and a reset to baseline."""
    from il2als.inputs.population_spec import load_population_spec
    from il2als.inputs.regimens import Dose, Regimen
    from il2als.studies.cohort import sample_population

    P = sample_population(load_population_spec(), n, np.random.default_rng(7)).params
    special = [Regimen((Dose(3.0, 2e6, route="iv"), Dose(10.0, 1e6)), name="iv then sc"),
               Regimen((Dose(2.0, 2e6, duration=0.5),), name="infusion"),
               Regimen((Dose(5.0, 2e6, steady_state_interval=7.0), Dose(12.0, 2e6)), name="steady state"),
               Regimen((Dose(1.0, 2e6), Dose(30.0, 2e6)), name="reset", resets=(20.0,))]
    regs = [special[i % 4] if i % 3 == 0 else ("mirocals" if i % 3 == 1 else "placebo") for i in range(n)]
    return P, regs


def test_lanes_kernel_takes_the_scalar_kernels_steps():
    """The lanes kernel is the scalar kernel, step for step: the same steps, statuses and outputs (to 1e-12; the
    arithmetic is the same, so in practice bit for bit) on more patients than lanes, with refills, every kind of
    dose event, off-grid output times, patients that run out of steps, and each group's tail run on fewer lanes
    (placebo patients finish first, so the busy lanes are moved together)."""
    lanes = load_engine(default_model()).LANES
    n = 2 * lanes + 5
    P, regs = _mixed_population(n)
    times = np.concatenate([[0.0], np.sort(np.random.default_rng(3).uniform(0, 60, 40)), [60.0]])
    for max_steps in (200_000, 700):
        res = {k: simulate_population(P, regs, times=times, outputs=list(default_model().state_names),
                                      options=BatchOptions(kernel=k, max_steps=max_steps, on_failure="skip"))
               for k in ("scalar", "lanes")}
        a, b = res["scalar"], res["lanes"]
        np.testing.assert_array_equal(a.status, b.status)
        np.testing.assert_array_equal(a.steps, b.steps)
        assert a.failures == b.failures
        for name in a.values:
            np.testing.assert_allclose(b[name], a[name], rtol=1e-12, atol=0, equal_nan=True, err_msg=name)
        if max_steps == 700:
            assert 0 < len(a.failures) < n, "some, not all, patients should run out of steps"
        else:
            assert np.all(a.status == 0)


def test_lanes_compaction_moves_each_busy_lane_whole_to_the_front():
    """#16: in a group's tail (no patient left to load) the busy lanes move to the front and the steps run over
    the width that holds them; each moved lane takes all of its patient's state."""
    eng = load_engine(default_model())
    L, n, m = eng.LANES, 3, 2
    if L < 8:
        pytest.skip("compaction needs at least 8 lanes")
    rng = np.random.default_rng(0)
    y, u, f0, p = (rng.normal(size=k * L) for k in (n, n, n, m))
    t, t_end, h, hmin = (rng.uniform(size=L) for _ in range(4))
    e, k, total = (rng.integers(0, 100, L) for _ in range(3))
    fresh = rng.integers(0, 2, L).astype(bool)
    pid = np.full(L, -1)
    busy = [1, 4, 6, L - 1]
    pid[busy] = [10, 11, 12, 13]
    before = [a.copy() for a in (y, u, f0, p, t, t_end, h, hmin, e, k, total, fresh)]
    width = eng.lanes_compact(L, pid, y, u, f0, p, t, t_end, h, hmin, e, k, total, fresh)
    assert width == 4 and list(pid[:4]) == [10, 11, 12, 13] and np.all(pid[4:] == -1)
    for new, old in zip((y, u, f0, p, t, t_end, h, hmin, e, k, total, fresh), before):
        rows = len(old) // L
        for w, l in enumerate(busy):
            assert all(new[r * L + w] == old[r * L + l] for r in range(rows))
    assert eng.lanes_compact(8, np.array([0] * 5 + [-1] * (L - 5)), y, u, f0, p, t, t_end, h, hmin, e, k, total,
                             fresh) == 8  # five busy lanes need eight


def test_auto_kernel_and_bad_kernel_name():
    with pytest.raises(Il2alsError, match="'auto', 'lanes' or 'scalar'"):
        BatchOptions(kernel="simd")
    P, regs = _mixed_population(3)  # fewer patients than lanes: auto runs the scalar kernel, with the same answer
    a = simulate_population(P, regs, "30 day", outputs=["treg_count"])
    b = simulate_population(P, regs, "30 day", outputs=["treg_count"], options=BatchOptions(kernel="lanes"))
    np.testing.assert_allclose(b["treg_count"], a["treg_count"], rtol=1e-12, atol=0)


def test_engine_output_buffer_is_reused_and_kept_per_thread_and_never_shows_stale_values(monkeypatch):
    """#16: the engine's raw output array is kept between chunks and calls (fresh ~100 MB arrays cost ~0.1 s of
    page faults each) and kept per thread (simulations in two threads never share it). It is not refilled
    beforehand: the engine sets each patient's rows to NaN as it starts that patient, so a value left from an
    earlier use never survives, and rows a failing patient does not reach are NaN (both kernels)."""
    import threading

    from il2als.solve import batch

    P, regs = _mixed_population(40)
    first = simulate_population(P, regs, "60 day", outputs=["treg_count", "survival"])
    buf = batch._OUTPUT_BUFFER.values
    again = simulate_population(P[:7], regs[:7], "60 day", outputs=["treg_count", "survival"])  # a smaller shape
    assert batch._OUTPUT_BUFFER.values is buf
    np.testing.assert_array_equal(again["treg_count"], first["treg_count"][:7])
    assert batch._output_buffer((3, 5, 2)).base is buf
    seen = {}

    def run(k):
        seen[k] = (simulate_population(P, regs, "60 day", outputs=["treg_count"])["treg_count"],
                   batch._OUTPUT_BUFFER.values)

    threads = [threading.Thread(target=run, args=(k,)) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert seen[0][1] is not seen[1][1] and seen[0][1] is not buf
    for k in range(2):
        np.testing.assert_array_equal(seen[k][0], first["treg_count"])

    stale = 7.25  # what an earlier use could have left in the buffer
    kept = []

    def planted(shape):
        out = np.full(shape, stale)
        kept.append(out)
        return out

    monkeypatch.setattr(batch, "_output_buffer", planted)
    for kernel in ("lanes", "scalar"):
        kept.clear()
        res = simulate_population(P, regs, "60 day", outputs=["treg_count"],
                                  options=BatchOptions(kernel=kernel, max_steps=300, on_failure="skip"))
        out = kept[0]
        failed = np.nonzero(res.status != 0)[0]
        assert len(failed) and len(failed) < len(P)  # some patients run out of steps within 60 days, some not
        assert not np.any(out == stale)
        for j in failed:  # rows up to the failure written, every row after it NaN
            unreached = np.isnan(out[j]).all(axis=1)
            first = int(np.argmax(unreached))
            assert unreached[-1] and unreached[first:].all() and np.isfinite(out[j][:first]).all()
        assert np.all(np.isfinite(out[res.status == 0]))


def test_engine_baselines_are_the_scipy_steady_state_after_a_quick_relaxation():
    """Issue #16: the engine's baselines relax at rtol 1e-3 (not 1e-5) before the same Newton polish; they land on
    the steady state the scipy path finds (LSODA to 5,000 days at 1e-8, then a root finder) for sampled patients,
    to 1e-9 relative, and a patient whose quick relaxation does not bring Newton home takes the full one."""
    import types

    from il2als.compiler import kernels
    from il2als.inputs.population_spec import load_population_spec
    from il2als.solve.batch import population_baselines
    from il2als.studies.cohort import sample_population

    assert kernels.BASELINE_RELAX_RTOL == 1e-3 and kernels.RELAX_RTOL == 1e-5
    P = sample_population(load_population_spec(), 12, np.random.default_rng(4)).params
    Y, status = population_baselines(P)
    assert np.all(status == 0)
    for p, y in zip(P, Y):
        np.testing.assert_allclose(y, baseline_state(p), rtol=1e-9, atol=1e-14)
    # the fallback: in pure Python (the kernels module as written), a quick relaxation that leaves Newton short
    # (here: one that never starts, t_end 0) is followed by the full one, and the answer is the same state
    m = default_model()
    ns = dict(vars(kernels))
    exec(compile(m.source, "<generated>", "exec"), ns)  # rhs, jac and the sparse LU the kernels call
    for name, f in vars(kernels).items():  # every kernel resolves the others (and the generated code) in ns
        if isinstance(f, types.FunctionType) and f.__module__ == kernels.__name__:
            ns[name] = _python_kernel(name, ns)
    fixed = np.array([s.baseline == "fixed" for s in m.mechanism.states])
    y0 = np.asarray(m.initial(0.0, None, P[0]), float)
    atol = np.maximum(np.abs(y0), 1e-3) * 1e-6
    calls = []

    def relax(y_init, p, fixed_, atol_, relax_rtol):
        calls.append(relax_rtol)
        if relax_rtol == kernels.BASELINE_RELAX_RTOL:
            return kernels.NO_STEADY_STATE, y_init.copy()
        return exec_relax(y_init, p, fixed_, atol_, relax_rtol)

    exec_relax = _python_kernel("relax_and_polish", ns)
    ns["relax_and_polish"] = relax
    st, y = _python_kernel("baseline", ns)(y0, P[0], fixed, 1e-9, atol)
    assert st == 0 and calls == [1e-3, 1e-5]
    np.testing.assert_allclose(y, Y[0], rtol=1e-9, atol=1e-14)


def _python_kernel(name, namespace):
    """Kernel ``name`` of il2als.compiler.kernels as plain Python whose globals are ``namespace`` (so that the
    functions it calls can be replaced)."""
    import types

    from il2als.compiler import kernels

    f = getattr(kernels, name)
    return types.FunctionType(f.__code__, namespace, name, f.__defaults__, f.__closure__)


def test_signalling_fractions_take_their_tolerance_on_their_declared_scale():
    """Issue #16: the signalling states start at zero and are fractions that peak at tenths: their absolute
    tolerance is atol x their declared tolerance_scale (0.01), not x the 1e-3 floor of undeclared states (400x
    tighter than other states relative to their size, it set the first steps after every dose)."""
    from il2als.inputs.regimens import as_regimen
    from il2als.solve import dose_events
    from il2als.solve.single import _scales, absolute_tolerances

    m = default_model()
    p = load_parameters("default").vector(m)
    y0 = baseline_state(p, m)
    tol = absolute_tolerances(m, y0, _scales(m, y0, p, dose_events(p, as_regimen("mirocals"), m).peaks()),
                              1e-4, 1e-4)
    declared = {s.name: s.tolerance_scale for s in m.mechanism.states if s.tolerance_scale is not None}
    assert declared == {"treg_desensitisation": 0.01, "treg_signal_1": 0.01, "treg_signal_2": 0.01}
    for name in declared:
        assert tol[m.state_index(name)] == pytest.approx(1e-6)
    assert tol[m.state_index("cumulative_hazard")] == pytest.approx(1e-7)  # undeclared, starts at zero: the floor
