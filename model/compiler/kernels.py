"""Numerical kernels of the batch engine, written as plain Python over plain arrays.

They refer to the model's generated ``rhs(t, y, p)`` and ``jac(t, y, p)`` as module globals: the engine
(:mod:`il2als.compiler.engine`) writes the generated model and this source into one module file and compiles every
function with numba (``cache=True``, so later processes load the machine code from disk). Imported as is, this
module runs in pure Python, which is slow but handy for reading and debugging.

The integrator is a 4th-order Rosenbrock method with an embedded 3rd-order error estimate (Kaps and Rentrop's
scheme with Shampine's 1982 coefficients; Press et al., Numerical Recipes, 16.6): one LU factorisation of
``I/(gamma h) - J`` and four linear solves per step, three right-hand-side evaluations. The factorisation and
solves are straight-line code generated for the Jacobian's sparsity pattern (38 of 256 entries, 41 after
fill-in in a Markowitz order), as chemical-kinetics solvers do (KPP), with dense pivoted LU as the fallback. Outputs between steps
come from cubic Hermite interpolation; doses restart the integration at the exact (lag-shifted) dose time.
"""

import numpy as np

# The engine's footer rebinds prange to numba's before compiling; imported as is (the scipy path reads the
# constants below, a reader runs the kernels in pure Python) this module needs no numba.
prange = range

# Shampine (1982) parameters of the Kaps-Rentrop scheme.
GAM = 0.5
A21, A31, A32 = 2.0, 48.0 / 25.0, 6.0 / 25.0
C21, C31, C32 = -8.0, 372.0 / 25.0, 12.0 / 5.0
C41, C42, C43 = -112.0 / 125.0, -54.0 / 125.0, -2.0 / 5.0
B1, B2, B3, B4 = 19.0 / 9.0, 0.5, 25.0 / 108.0, 125.0 / 108.0
E1, E2, E3, E4 = 17.0 / 54.0, 7.0 / 36.0, 0.0, 125.0 / 108.0
SAFETY, GROW, SHRNK, PGROW, PSHRNK = 0.9, 3.0, 0.5, -0.25, -1.0 / 3.0
ERRCON = (GROW / SAFETY) ** (1 / PGROW)

# baselines: the relaxation's tolerance before the Newton polish, first try and fallback (see baseline())
BASELINE_RELAX_RTOL = 1e-3
RELAX_RTOL = 1e-5

# steady-state doses: the same convergence rule as the scipy reference path (il2als.solve.single)
SS_CONVERGENCE = 0.01
MAX_SS_CYCLES = 5000

# status codes
OK, TOO_MANY_STEPS, STEP_TOO_SMALL, NOT_FINITE, NO_STEADY_STATE = 0, 1, 2, 3, 4

#: patients advanced side by side by the lanes kernel; the engine's footer sets it for the machine's vector width
LANES = 4

#: functions compiled by the engine; the parallel ones loop over patients (or groups of them) with prange; the
#: lanes ones use numpy's error model (no division-by-zero check in the loops, which would stop LLVM vectorising
#: them; a lane's zero pivot or overflow is caught by its flags, as the scalar code's checks catch it)
SERIAL = ("lu_factor", "lu_solve", "solve", "derivs", "step", "fixed_step_solve", "advance", "make_work",
          "relax_and_polish", "baseline", "periodic", "patient")
LANES_SERIAL = ("derivs_lanes", "step_lanes", "lane_load", "lane_finish", "lane_prepare", "lanes_needed",
                "lanes_compact", "lanes_group")
PARALLEL = ("population", "baselines", "screen", "population_lanes")


def lu_factor(a, piv):
    n = a.shape[0]
    for k in range(n):
        m = k
        big = abs(a[k, k])
        for i in range(k + 1, n):
            if abs(a[i, k]) > big:
                big = abs(a[i, k])
                m = i
        piv[k] = m
        if big == 0.0:
            return False
        if m != k:
            for j in range(n):
                tmp = a[k, j]
                a[k, j] = a[m, j]
                a[m, j] = tmp
        inv = 1.0 / a[k, k]
        for i in range(k + 1, n):
            a[i, k] *= inv
            f = a[i, k]
            if f != 0.0:
                for j in range(k + 1, n):
                    a[i, j] -= f * a[k, j]
    return True

def lu_solve(a, piv, b):
    n = a.shape[0]
    for k in range(n):
        m = piv[k]
        if m != k:
            tmp = b[k]
            b[k] = b[m]
            b[m] = tmp
    for i in range(n):
        s = b[i]
        for j in range(i):
            s -= a[i, j] * b[j]
        b[i] = s
    for i in range(n - 1, -1, -1):
        s = b[i]
        for j in range(i + 1, n):
            s -= a[i, j] * b[j]
        b[i] = s / a[i, i]

def derivs(t, y, p, frozen, u, out):
    """dy/dt into ``out`` (no allocation in the step loop) plus the infusions' input rates ``u``, zero for frozen
    states."""
    rhs_into(t, y, p, out)  # noqa: F821 (rhs_into, rhs and jac are the generated model, injected by the engine)
    for i in range(len(y)):
        if frozen[i]:
            out[i] = 0.0
        else:
            out[i] += u[i]
    return out

def solve(a, piv, b, dense):
    if dense:
        lu_solve(a, piv, b)
    else:
        solve_sparse(a, b)  # noqa: F821 (generated with the model: straight-line LU on the Jacobian's pattern)

def step(t, y, f0, h, p, frozen, u, a, piv, g1, g2, g3, g4, ynew, err, fs):
    """One Rosenbrock step of size h from (t, y) with f0 = f(t, y); returns False if singular.

    W = I/(gamma h) - J is factorised on the Jacobian's sparsity pattern without pivoting (generated code; frozen
    states, for the baseline, get identity rows); on a zero pivot it falls back to dense LU with partial pivoting."""
    n = len(y)
    c = 1.0 / (GAM * h)
    w_fill(t, y, p, c, a)  # noqa: F821
    for i in range(n):
        if frozen[i]:
            w_freeze(a, frozen, c)  # noqa: F821
            break
    dense = not lu_sparse(a)  # noqa: F821
    if dense:
        J = jac(t, y, p)  # noqa: F821
        for i in range(n):
            for j in range(n):
                a[i, j] = 0.0 if frozen[i] else -J[i, j]
            a[i, i] += 1.0 / (GAM * h)
        if not lu_factor(a, piv):
            return False
    for i in range(n):
        g1[i] = f0[i]
    solve(a, piv, g1, dense)
    for i in range(n):
        ynew[i] = y[i] + A21 * g1[i]
    f = derivs(t + h, ynew, p, frozen, u, fs)
    for i in range(n):
        g2[i] = f[i] + C21 * g1[i] / h
    solve(a, piv, g2, dense)
    for i in range(n):
        ynew[i] = y[i] + A31 * g1[i] + A32 * g2[i]
    f = derivs(t + h, ynew, p, frozen, u, fs)
    for i in range(n):
        g3[i] = f[i] + (C31 * g1[i] + C32 * g2[i]) / h
    solve(a, piv, g3, dense)
    for i in range(n):
        g4[i] = f[i] + (C41 * g1[i] + C42 * g2[i] + C43 * g3[i]) / h
    solve(a, piv, g4, dense)
    for i in range(n):
        ynew[i] = y[i] + B1 * g1[i] + B2 * g2[i] + B3 * g3[i] + B4 * g4[i]
        err[i] = E1 * g1[i] + E2 * g2[i] + E3 * g3[i] + E4 * g4[i]
    return True

def fixed_step_solve(y0, p, t_end, n_steps):
    """Fixed-step integration (for convergence-order tests)."""
    n = len(y0)
    frozen = np.zeros(n, dtype=np.bool_)
    a = np.empty((n, n))
    piv = np.empty(n, dtype=np.int64)
    g1, g2, g3, g4, ynew, err = np.empty(n), np.empty(n), np.empty(n), np.empty(n), np.empty(n), np.empty(n)
    f0, fs = np.empty(n), np.empty(n)
    u = np.zeros(n)
    y = y0.copy()
    h = t_end / n_steps
    t = 0.0
    for _ in range(n_steps):
        derivs(t, y, p, frozen, u, f0)
        step(t, y, f0, h, p, frozen, u, a, piv, g1, g2, g3, g4, ynew, err, fs)
        y[:] = ynew
        t += h
    return y

def advance(t, t_end, y, p, frozen, u, rtol, atol, h, t_out, k_out, out, max_steps, work):
    """Integrate y from t to t_end in place, writing outputs t < t_out[k] < t_end (Hermite).

    Returns (status, h_next, k_out, n_steps, t_reached)."""
    a, piv, g1, g2, g3, g4, ynew, err, f0, fs, f1 = work
    n = len(y)
    n_out = len(t_out)
    n_steps = 0
    derivs(t, y, p, frozen, u, f0)
    hmin = 1e-14 * max(1.0, abs(t_end))
    while t < t_end and t_end - t > 1e-13 * max(1.0, abs(t_end)):
        if n_steps >= max_steps:
            return TOO_MANY_STEPS, h, k_out, n_steps, t
        if h > t_end - t:
            h = t_end - t
        if not step(t, y, f0, h, p, frozen, u, a, piv, g1, g2, g3, g4, ynew, err, fs):
            h *= SHRNK
            if h < hmin:
                return STEP_TOO_SMALL, h, k_out, n_steps, t
            continue
        errmax = 0.0
        finite = True
        for i in range(n):
            if not np.isfinite(ynew[i]):
                finite = False
                break
            sc = atol[i] + rtol * max(abs(y[i]), abs(ynew[i]))
            e = abs(err[i]) / sc
            if e > errmax:
                errmax = e
        if not finite:
            h *= SHRNK
            if h < hmin:
                return NOT_FINITE, h, k_out, n_steps, t
            continue
        if errmax > 1.0:
            hn = SAFETY * h * errmax ** PSHRNK
            h = max(hn, SHRNK * h)
            if h < hmin:
                return STEP_TOO_SMALL, h, k_out, n_steps, t
            continue
        # accepted
        n_steps += 1
        t1 = t + h
        if abs(t_end - t1) <= 1e-13 * max(1.0, abs(t_end)):
            t1 = t_end
        derivs(t1, ynew, p, frozen, u, f1)
        # outputs inside the step, and at its end unless that is t_end (the caller writes those after the events
        # there); an output exactly at a step's end used to be skipped by the next step
        while k_out < n_out and t_out[k_out] <= t1 and t_out[k_out] < t_end:
            if t_out[k_out] > t:
                s = (t_out[k_out] - t) / h
                h00 = 2 * s**3 - 3 * s**2 + 1
                h10 = s**3 - 2 * s**2 + s
                h01 = -2 * s**3 + 3 * s**2
                h11 = s**3 - s**2
                for i in range(n):
                    out[k_out, i] = h00 * y[i] + h10 * h * f0[i] + h01 * ynew[i] + h11 * h * f1[i]
            k_out += 1
        for i in range(n):
            y[i] = ynew[i]
            f0[i] = f1[i]
        t = t1
        if errmax > ERRCON:
            h = SAFETY * h * errmax ** PGROW
        else:
            h = GROW * h
    return OK, h, k_out, n_steps, t

def make_work(n):
    return (np.empty((n, n)), np.empty(n, dtype=np.int64), np.empty(n), np.empty(n), np.empty(n), np.empty(n),
            np.empty(n), np.empty(n), np.empty(n), np.empty(n), np.empty(n))

def baseline(y_init, p, fixed, rtol, atol):
    """Steady state of the free states with the fixed states held. Returns (status, y).

    The state relaxes for 3,000 days with the fixed states held, then Newton polishes the free states to a
    relative residual below 1e-13. The relaxation only has to bring Newton into the steady state's basin, so it
    runs first at BASELINE_RELAX_RTOL (~4x fewer steps) and again at RELAX_RTOL only if Newton does not converge
    from there; either way the answer is the state Newton converged to."""
    st, y = relax_and_polish(y_init, p, fixed, atol, BASELINE_RELAX_RTOL)
    if st != OK:
        st, y = relax_and_polish(y_init, p, fixed, atol, RELAX_RTOL)
    return st, y

def relax_and_polish(y_init, p, fixed, atol, relax_rtol):
    n = len(y_init)
    y = y_init.copy()
    work = make_work(n)
    dummy_t = np.empty(0)
    dummy_out = np.empty((0, n))
    st, h, k, ns, tr = advance(0.0, 3000.0, y, p, fixed, np.zeros(n), relax_rtol, atol, 1e-2, dummy_t, 0, dummy_out,
                               200000, work)
    if st != OK:
        return NO_STEADY_STATE, y
    # Newton polish on the free states
    free = np.nonzero(~fixed)[0]
    m = len(free)
    a = np.empty((m, m))
    piv = np.empty(m, dtype=np.int64)
    b = np.empty(m)
    for it in range(30):
        d = rhs(0.0, y, p)  # noqa: F821
        J = jac(0.0, y, p)  # noqa: F821
        res = 0.0
        for ii in range(m):
            i = free[ii]
            b[ii] = -d[i]
            res = max(res, abs(d[i]) / max(abs(y[i]), 1e-6))
            for jj in range(m):
                a[ii, jj] = J[i, free[jj]]
        if res < 1e-13:
            return OK, y
        if not lu_factor(a, piv):
            return NO_STEADY_STATE, y
        lu_solve(a, piv, b)
        for ii in range(m):
            y[free[ii]] += b[ii]
    d = rhs(0.0, y, p)  # noqa: F821
    res = 0.0
    for ii in range(m):
        i = free[ii]
        res = max(res, abs(d[i]) / max(abs(y[i]), 1e-6))
    return (OK if res < 1e-8 else NO_STEADY_STATE), y

def periodic(y, p, held, target, value, period, rtol, atol, h_dose, max_steps, work):
    """Reset ``y`` in place to the state just before a dose of ``value`` into ``target`` repeated every ``period``
    days has reached its periodic steady state, the ``held`` states (the disease) held (no infusions). Returns
    (status, steps)."""
    n = len(y)
    start = np.empty(n)
    u = np.zeros(n)
    dummy_t = np.empty(0)
    dummy_out = np.empty((0, n))
    total = 0
    for c in range(MAX_SS_CYCLES):
        for i in range(n):
            start[i] = y[i]
        y[target] += value
        st, h, k, ns, tr = advance(0.0, period, y, p, held, u, rtol, atol, h_dose, dummy_t, 0, dummy_out,
                                   max_steps - total, work)
        total += ns
        if st != OK:
            return st, total
        done = True
        for i in range(n):
            if not held[i] and abs(y[i] - start[i]) > SS_CONVERGENCE * (atol[i] + rtol * abs(y[i])):
                done = False
                break
        if done:
            return OK, total
    return NO_STEADY_STATE, total

def patient(y0, p, ev_t, ev_kind, ev_target, ev_value, ev_period, held, t_out, rtol, atol, h_dose, max_steps, out):
    """Integrate one patient from y0 at t=0 through its events (kinds as in :mod:`il2als.solve.events`: 0 bolus,
    1 infusion rate change, 2 steady-state dose, 3 reset to y0); fill out (n_times, n_states).

    Returns (status, t_fail, total steps). Rows of out not reached (a failure) are NaN."""
    out[:, :] = np.nan  # here, not over the whole chunk beforehand: the rows are written while still in cache
    n = len(y0)
    y = y0.copy()
    u = np.zeros(n)
    frozen = np.zeros(n, dtype=np.bool_)
    work = make_work(n)
    T = t_out[-1]
    t = 0.0
    e = 0
    k = 0
    h = h_dose
    total = 0
    n_ev = len(ev_t)
    while True:
        while e < n_ev and ev_t[e] <= t + 1e-12 * max(1.0, t):
            kind = ev_kind[e]
            j = ev_target[e]
            if kind == 0:
                y[j] += ev_value[e]
            elif kind == 1:
                u[j] += ev_value[e]
            elif kind == 2:
                st, ns = periodic(y, p, held, j, ev_value[e], ev_period[e], rtol, atol, h_dose, max_steps - total, work)
                total += ns
                if st != OK:
                    return st, t, total
                y[j] += ev_value[e]
            else:
                for i in range(n):
                    y[i] = y0[i]
                    u[i] = 0.0
            e += 1
            h = h_dose
        while k < len(t_out) and t_out[k] <= t + 1e-12 * max(1.0, t):
            out[k, :] = y
            k += 1
        if t >= T or k >= len(t_out):
            break
        t_end = T
        if e < n_ev and ev_t[e] < T:
            t_end = ev_t[e]
        st, h, k, ns, t_reached = advance(t, t_end, y, p, frozen, u, rtol, atol, h, t_out, k, out,
                                          max_steps - total, work)
        total += ns
        if st != OK:
            return st, t_reached, total
        t = t_end
    return OK, t, total

def population(Y0, P, ev_t, ev_kind, ev_target, ev_value, ev_period, ev_ptr, held, t_out, rtol, atol, h_dose,
               max_steps, out, status, t_fail, steps):
    N = Y0.shape[0]
    for i in prange(N):
        a, b = ev_ptr[i], ev_ptr[i + 1]
        st, tf, ns = patient(Y0[i], P[i], ev_t[a:b], ev_kind[a:b], ev_target[a:b], ev_value[a:b], ev_period[a:b],
                             held, t_out, rtol, atol[i], h_dose, max_steps, out[i])
        status[i] = st
        t_fail[i] = tf
        steps[i] = ns

def baselines(Yinit, P, fixed, atol, Y0, status):
    for i in prange(Yinit.shape[0]):
        st, y = baseline(Yinit[i], P[i], fixed, 1e-9, atol[i])
        status[i] = st
        Y0[i, :] = y



def screen(out, status, atol, neg_tol, flag):
    """The outputs' checks after a chunk, one pass per patient, in parallel: for each patient whose status is OK,
    flag[i] = 1 where an output is not finite; otherwise negatives within neg_tol x its state's absolute tolerance
    are set to 0 in place (round-off of a state that decays to zero) and flag[i] = 2 where one went deeper (the
    caller names it: il2als.solve.single.clip_negative, which this pass leaves nothing to clip for); else 0."""
    N, n_t, n = out.shape
    for i in prange(N):
        flag[i] = 0
        if status[i] != OK:
            continue
        finite = True
        for k in range(n_t):
            for j in range(n):
                if not np.isfinite(out[i, k, j]):
                    finite = False
        if not finite:
            flag[i] = 1
            continue
        for k in range(n_t):
            for j in range(n):
                v = out[i, k, j]
                if v < 0:
                    if v / atol[i, j] >= -neg_tol:
                        out[i, k, j] = 0.0
                    else:
                        flag[i] = 2


# ---- the lanes kernel: LANES patients side by side, the same method step for step ----
#
# Every lane runs patient() for one patient at a time: the events, outputs and step control below are patient()'s
# and advance()'s, statement for statement, on the lane's column. Only the Rosenbrock stages are done for all lanes
# at once (step_lanes, over flat arrays laid out (n_states, LANES), index i * LANES + l, so that independent patients fill the pipeline and
# LLVM can vectorise), each lane with its own time and step size. A lane whose patient is done takes the next
# patient of its group; when none is left, the busy lanes move to the front and the stages run over only as many
# lanes as they fill (lanes_compact: a 220-patient trial replicate spends ~12% less in this kernel). What happens
# rarely is left to the scalar code on a copy of the lane's column: a zero pivot (dense pivoted LU, by step()) and
# steady-state doses (periodic()).

def derivs_lanes(t, y, p, u, out, nl):
    rhs_lanes(t, y, p, out, nl)  # noqa: F821 (generated with the model)
    n = len(y) // LANES
    for i in range(n):
        for l in range(nl):
            out[i * LANES + l] += u[i * LANES + l]

def step_lanes(t, y, f0, h, p, u, a, ok, g1, g2, g3, g4, ynew, err, fs, c, th, nl):
    """One Rosenbrock step for each of the first nl lanes (step()'s arithmetic); ok[l] is False where the sparse LU
    met a zero or non-finite pivot (the caller redoes that lane with step())."""
    n = len(y) // LANES
    for l in range(nl):
        c[l] = 1.0 / (GAM * h[l])
        th[l] = t[l] + h[l]
    w_fill_lanes(t, y, p, c, a, nl)  # noqa: F821
    lu_lanes(a, ok, nl)  # noqa: F821
    for i in range(n):
        for l in range(nl):
            g1[i * LANES + l] = f0[i * LANES + l]
    solve_lanes(a, g1, nl)  # noqa: F821
    for i in range(n):
        for l in range(nl):
            ynew[i * LANES + l] = y[i * LANES + l] + A21 * g1[i * LANES + l]
    derivs_lanes(th, ynew, p, u, fs, nl)
    for i in range(n):
        for l in range(nl):
            g2[i * LANES + l] = fs[i * LANES + l] + C21 * g1[i * LANES + l] / h[l]
    solve_lanes(a, g2, nl)  # noqa: F821
    for i in range(n):
        for l in range(nl):
            ynew[i * LANES + l] = y[i * LANES + l] + A31 * g1[i * LANES + l] + A32 * g2[i * LANES + l]
    derivs_lanes(th, ynew, p, u, fs, nl)
    for i in range(n):
        for l in range(nl):
            g3[i * LANES + l] = fs[i * LANES + l] + (C31 * g1[i * LANES + l] + C32 * g2[i * LANES + l]) / h[l]
    solve_lanes(a, g3, nl)  # noqa: F821
    for i in range(n):
        for l in range(nl):
            g4[i * LANES + l] = fs[i * LANES + l] + (C41 * g1[i * LANES + l] + C42 * g2[i * LANES + l] + C43 * g3[i * LANES + l]) / h[l]
    solve_lanes(a, g4, nl)  # noqa: F821
    for i in range(n):
        for l in range(nl):
            ynew[i * LANES + l] = y[i * LANES + l] + B1 * g1[i * LANES + l] + B2 * g2[i * LANES + l] + B3 * g3[i * LANES + l] + B4 * g4[i * LANES + l]
            err[i * LANES + l] = E1 * g1[i * LANES + l] + E2 * g2[i * LANES + l] + E3 * g3[i * LANES + l] + E4 * g4[i * LANES + l]

def lane_load(l, i, Y0, P, ev_ptr, h_dose, y, p, u, t, h, e, k, total, pid, fresh, out):
    """Start patient i in lane l, as patient() starts (its outputs NaN until written)."""
    out[i, :, :] = np.nan
    for j in range(Y0.shape[1]):
        y[j * LANES + l] = Y0[i, j]
        u[j * LANES + l] = 0.0
    for j in range(P.shape[1]):
        p[j * LANES + l] = P[i, j]
    t[l] = 0.0
    h[l] = h_dose
    e[l] = ev_ptr[i]
    k[l] = 0
    total[l] = 0
    pid[l] = i
    fresh[l] = True

def lane_finish(l, st, tf, nxt, last, Y0, P, ev_ptr, h_dose, y, p, u, t, h, e, k, total, pid, fresh, status, t_fail,
                steps, out):
    """Record lane l's patient as patient() returns, and start the next one of the group (or idle the lane)."""
    i = pid[l]
    status[i] = st
    t_fail[i] = tf
    steps[i] = total[l]
    pid[l] = -1
    if nxt < last:
        lane_load(l, nxt, Y0, P, ev_ptr, h_dose, y, p, u, t, h, e, k, total, pid, fresh, out)
        nxt += 1
    return nxt

def lane_prepare(l, nxt, last, Y0, P, ev_t, ev_kind, ev_target, ev_value, ev_period, ev_ptr, held, t_out, rtol, atol,
                 h_dose, max_steps, out, status, t_fail, steps, y, p, u, f0, t, t_end, h, hmin, e, k, total, pid,
                 fresh, work, yl, ul, fl, frozen):
    """Bring lane l to its next step: the head of advance()'s loop, and when a segment ends the head of patient()'s
    (events, outputs at t, the next segment). Returns the group's next patient; pid[l] < 0 when the lane idles."""
    n = Y0.shape[1]
    n_out = len(t_out)
    T = t_out[-1]
    while pid[l] >= 0:
        i = pid[l]
        if not fresh[l]:
            te = t_end[l]
            if t[l] < te and te - t[l] > 1e-13 * max(1.0, abs(te)):
                if total[l] >= max_steps:
                    nxt = lane_finish(l, TOO_MANY_STEPS, t[l], nxt, last, Y0, P, ev_ptr, h_dose, y, p, u, t, h, e, k,
                                      total, pid, fresh, status, t_fail, steps, out)
                    continue
                if h[l] > te - t[l]:
                    h[l] = te - t[l]
                return nxt
            t[l] = te
            fresh[l] = True
        tl = t[l]
        b = ev_ptr[i + 1]
        failed = False
        while e[l] < b and ev_t[e[l]] <= tl + 1e-12 * max(1.0, tl):
            q = e[l]
            kind = ev_kind[q]
            j = ev_target[q]
            if kind == 0:
                y[j * LANES + l] += ev_value[q]
            elif kind == 1:
                u[j * LANES + l] += ev_value[q]
            elif kind == 2:
                for r in range(n):
                    yl[r] = y[r * LANES + l]
                st, ns = periodic(yl, P[i], held, j, ev_value[q], ev_period[q], rtol, atol[i], h_dose,
                                  max_steps - total[l], work)
                total[l] += ns
                for r in range(n):
                    y[r * LANES + l] = yl[r]
                if st != OK:
                    nxt = lane_finish(l, st, tl, nxt, last, Y0, P, ev_ptr, h_dose, y, p, u, t, h, e, k, total, pid,
                                      fresh, status, t_fail, steps, out)
                    failed = True
                    break
                y[j * LANES + l] += ev_value[q]
            else:
                for r in range(n):
                    y[r * LANES + l] = Y0[i, r]
                    u[r * LANES + l] = 0.0
            e[l] += 1
            h[l] = h_dose
        if failed:
            continue
        while k[l] < n_out and t_out[k[l]] <= tl + 1e-12 * max(1.0, tl):
            for r in range(n):
                out[i, k[l], r] = y[r * LANES + l]
            k[l] += 1
        if tl >= T or k[l] >= n_out:
            nxt = lane_finish(l, OK, tl, nxt, last, Y0, P, ev_ptr, h_dose, y, p, u, t, h, e, k, total, pid, fresh,
                              status, t_fail, steps, out)
            continue
        te = T
        if e[l] < b and ev_t[e[l]] < T:
            te = ev_t[e[l]]
        t_end[l] = te
        for r in range(n):
            yl[r] = y[r * LANES + l]
            ul[r] = u[r * LANES + l]
        derivs(tl, yl, P[i], frozen, ul, fl)
        for r in range(n):
            f0[r * LANES + l] = fl[r]
        hmin[l] = 1e-14 * max(1.0, abs(te))
        fresh[l] = False
    return nxt

def lanes_needed(busy):
    """Lanes to step for ``busy`` busy lanes: a multiple of 4, the doubles in an AVX2 vector."""
    return max(4, (busy + 3) // 4 * 4)

def lanes_compact(nl, pid, y, u, f0, p, t, t_end, h, hmin, e, k, total, fresh):
    """Move the busy lanes among the first nl to the front, each with its patient's whole state, and return the
    width that holds them (lanes_needed, at most nl): once no patient is left to load, the steps then run over
    fewer lanes. A lane's arithmetic does not depend on its place, so results are unchanged."""
    n = len(y) // LANES
    m = len(p) // LANES
    w = 0
    for l in range(nl):
        if pid[l] < 0:
            continue
        if l != w:
            for r in range(n):
                y[r * LANES + w] = y[r * LANES + l]
                u[r * LANES + w] = u[r * LANES + l]
                f0[r * LANES + w] = f0[r * LANES + l]
            for r in range(m):
                p[r * LANES + w] = p[r * LANES + l]
            t[w], t_end[w], h[w], hmin[w] = t[l], t_end[l], h[l], hmin[l]
            e[w], k[w], total[w], fresh[w] = e[l], k[l], total[l], fresh[l]
            pid[w] = pid[l]
            pid[l] = -1
        w += 1
    return min(nl, lanes_needed(w))

def lanes_group(Y0, P, ev_t, ev_kind, ev_target, ev_value, ev_period, ev_ptr, held, t_out, rtol, atol, h_dose,
                max_steps, out, status, t_fail, steps, first, last):
    """Patients first..last-1 through LANES lanes; the same results as patient() for each."""
    N, n = Y0.shape
    L = LANES
    y, u, f0, f1 = np.zeros(n * L), np.zeros(n * L), np.zeros(n * L), np.zeros(n * L)
    g1, g2, g3, g4 = np.zeros(n * L), np.zeros(n * L), np.zeros(n * L), np.zeros(n * L)
    ynew, err, fs = np.zeros(n * L), np.zeros(n * L), np.zeros(n * L)
    p = np.zeros(P.shape[1] * L)
    a = np.zeros(n * n * L)
    ok = np.ones(L, dtype=np.bool_)
    acc = np.zeros(L, dtype=np.bool_)
    fresh = np.zeros(L, dtype=np.bool_)
    t, t_end, h, hmin, t1, errm = np.zeros(L), np.zeros(L), np.ones(L), np.ones(L), np.zeros(L), np.zeros(L)
    c, th = np.zeros(L), np.zeros(L)
    e, k, total = np.zeros(L, dtype=np.int64), np.zeros(L, dtype=np.int64), np.zeros(L, dtype=np.int64)
    pid = np.full(L, -1, dtype=np.int64)
    work = make_work(n)
    wa, piv, w1, w2, w3, w4, wnew, werr, wf0, wfs, wf1 = work
    yl, ul, fl = np.empty(n), np.empty(n), np.empty(n)
    frozen = np.zeros(n, dtype=np.bool_)
    n_out = len(t_out)
    nxt = first
    nl = LANES
    for l in range(LANES):
        if nxt < last:
            lane_load(l, nxt, Y0, P, ev_ptr, h_dose, y, p, u, t, h, e, k, total, pid, fresh, out)
            nxt += 1
    while True:
        busy = 0
        for l in range(nl):
            if pid[l] < 0:
                continue
            if not fresh[l]:  # the common case inline (lane_prepare's first test): the segment goes on
                te = t_end[l]
                if t[l] < te and te - t[l] > 1e-13 * max(1.0, abs(te)) and total[l] < max_steps:
                    if h[l] > te - t[l]:
                        h[l] = te - t[l]
                    busy += 1
                    continue
            nxt = lane_prepare(l, nxt, last, Y0, P, ev_t, ev_kind, ev_target, ev_value, ev_period, ev_ptr, held,
                               t_out, rtol, atol, h_dose, max_steps, out, status, t_fail, steps, y, p, u, f0, t,
                               t_end, h, hmin, e, k, total, pid, fresh, work, yl, ul, fl, frozen)
            if pid[l] >= 0:
                busy += 1
        if busy == 0:
            break
        if nxt >= last and lanes_needed(busy) < nl:  # the group's tail: step only the lanes still busy
            nl = lanes_compact(nl, pid, y, u, f0, p, t, t_end, h, hmin, e, k, total, fresh)
        step_lanes(t, y, f0, h, p, u, a, ok, g1, g2, g3, g4, ynew, err, fs, c, th, nl)
        for l in range(nl):
            acc[l] = False
            if pid[l] < 0:
                continue
            i = pid[l]
            good = True
            if not ok[l]:  # zero pivot in the sparse LU: the scalar step, with its dense fallback
                for r in range(n):
                    yl[r] = y[r * LANES + l]
                    wf0[r] = f0[r * LANES + l]
                    ul[r] = u[r * LANES + l]
                good = step(t[l], yl, wf0, h[l], P[i], frozen, ul, wa, piv, w1, w2, w3, w4, wnew, werr, wfs)
                for r in range(n):
                    ynew[r * LANES + l] = wnew[r]
                    err[r * LANES + l] = werr[r]
            if not good:
                h[l] *= SHRNK
                if h[l] < hmin[l]:
                    nxt = lane_finish(l, STEP_TOO_SMALL, t[l], nxt, last, Y0, P, ev_ptr, h_dose, y, p, u, t, h, e, k,
                                      total, pid, fresh, status, t_fail, steps, out)
                continue
            errmax = 0.0
            finite = True
            for r in range(n):
                if not np.isfinite(ynew[r * LANES + l]):
                    finite = False
                    break
                sc = atol[i, r] + rtol * max(abs(y[r * LANES + l]), abs(ynew[r * LANES + l]))
                ee = abs(err[r * LANES + l]) / sc
                if ee > errmax:
                    errmax = ee
            if not finite:
                h[l] *= SHRNK
                if h[l] < hmin[l]:
                    nxt = lane_finish(l, NOT_FINITE, t[l], nxt, last, Y0, P, ev_ptr, h_dose, y, p, u, t, h, e, k,
                                      total, pid, fresh, status, t_fail, steps, out)
                continue
            if errmax > 1.0:
                hn = SAFETY * h[l] * errmax ** PSHRNK
                h[l] = max(hn, SHRNK * h[l])
                if h[l] < hmin[l]:
                    nxt = lane_finish(l, STEP_TOO_SMALL, t[l], nxt, last, Y0, P, ev_ptr, h_dose, y, p, u, t, h, e, k,
                                      total, pid, fresh, status, t_fail, steps, out)
                continue
            acc[l] = True
            errm[l] = errmax
            total[l] += 1
            tt = t[l] + h[l]
            if abs(t_end[l] - tt) <= 1e-13 * max(1.0, abs(t_end[l])):
                tt = t_end[l]
            t1[l] = tt
        derivs_lanes(t1, ynew, p, u, f1, nl)
        for l in range(nl):
            if not acc[l]:
                continue
            i = pid[l]
            tl, hl, te = t[l], h[l], t_end[l]
            while k[l] < n_out and t_out[k[l]] <= t1[l] and t_out[k[l]] < te:
                if t_out[k[l]] > tl:
                    s = (t_out[k[l]] - tl) / hl
                    h00 = 2 * s**3 - 3 * s**2 + 1
                    h10 = s**3 - 2 * s**2 + s
                    h01 = -2 * s**3 + 3 * s**2
                    h11 = s**3 - s**2
                    for r in range(n):
                        out[i, k[l], r] = h00 * y[r * LANES + l] + h10 * hl * f0[r * LANES + l] + h01 * ynew[r * LANES + l] + h11 * hl * f1[r * LANES + l]
                k[l] += 1
            for r in range(n):
                y[r * LANES + l] = ynew[r * LANES + l]
                f0[r * LANES + l] = f1[r * LANES + l]
            t[l] = t1[l]
            if errm[l] > ERRCON:
                h[l] = SAFETY * hl * errm[l] ** PGROW
            else:
                h[l] = GROW * hl

def population_lanes(Y0, P, ev_t, ev_kind, ev_target, ev_value, ev_period, ev_ptr, held, t_out, rtol, atol, h_dose,
                     max_steps, out, status, t_fail, steps, n_groups):
    """population() with the lanes kernel: the patients split into n_groups contiguous groups run in parallel."""
    N = Y0.shape[0]
    size = (N + n_groups - 1) // n_groups
    for g in prange(n_groups):
        first = g * size
        last = min(N, first + size)
        if first < last:
            lanes_group(Y0, P, ev_t, ev_kind, ev_target, ev_value, ev_period, ev_ptr, held, t_out, rtol, atol,
                        h_dose, max_steps, out, status, t_fail, steps, first, last)
