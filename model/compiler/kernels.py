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

# steady-state doses: the same convergence rule as the scipy reference path (il2als.solve.single)
SS_CONVERGENCE = 0.01
MAX_SS_CYCLES = 5000

# status codes
OK, TOO_MANY_STEPS, STEP_TOO_SMALL, NOT_FINITE, NO_STEADY_STATE = 0, 1, 2, 3, 4

#: functions compiled by the engine; the parallel ones loop over patients with prange
SERIAL = ("lu_factor", "lu_solve", "solve", "derivs", "step", "fixed_step_solve", "advance", "make_work", "baseline",
          "periodic", "patient")
PARALLEL = ("population", "baselines")


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
    """Steady state of the free states with the fixed states held. Returns (status, y)."""
    n = len(y_init)
    y = y_init.copy()
    work = make_work(n)
    dummy_t = np.empty(0)
    dummy_out = np.empty((0, n))
    st, h, k, ns, tr = advance(0.0, 3000.0, y, p, fixed, np.zeros(n), 1e-5, atol, 1e-2, dummy_t, 0, dummy_out,
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

    Returns (status, t_fail, total steps)."""
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
