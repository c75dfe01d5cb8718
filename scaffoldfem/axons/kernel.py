"""Compiled growth-cone steps: each cone walks many arc steps in one call.

The vectorised tracer paid ~4 ms of NumPy call overhead per growth step whatever
the number of cones (hundreds of small array operations), thousands of times per
run. :func:`advance_cones` instead runs, per cone, the same step as the laws of
:mod:`scaffoldfem.axons.guidance` — sample the cell, Heun heading update with the
counter-based noise, target, Lawson walk, book-keeping of :meth:`Motion._finish`
and the trajectory record — until the cone reaches the end of the solver step,
stops growing, or its walk does something other than end in a local cell (left
the rank, hit the pia or a barrier, got lost). Such a cone is handed back in
transit, with its target set, to the vectorised :meth:`Motion._move`, which slides,
migrates or falls back to the tree exactly as before.

Each operation is the scalar form of the NumPy expression it replaces, in the
same order, with no fast-math (no contraction into FMA, no reassociation), so a
cone's path depends on neither its batch nor its rank; ``tests/test_kernel.py``
checks it against the vectorised laws.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from scaffoldfem.axons.guidance import STREAM_NOISE
from scaffoldfem.axons.records import CROSSED, EXITED, GROWING, STALLED
from scaffoldfem.fem.locate import FOUND

__all__ = ["PARAMS", "advance_cones", "walk_status"]

_jit = numba.njit(cache=True, nogil=True, error_model="numpy")

#: Names of the float parameters of :func:`advance_cones`, in the order of ``prm``.
PARAMS = (
    "arc_step", "speed", "max_speed", "occupancy_speed_gain", "stiffness_half_speed",
    "cspg_half_inhibition", "persistence_length", "stiffness_half_persistence",
    "growth_cone_width", "chemotaxis_half_saturation", "chemotaxis", "durotaxis",
    "scar_repulsion", "adaptation_time", "cross_depth", "stall_distance", "stall_time",
    "z_max", "z_min", "delta", "lesion_z0", "lesion_z1", "eps")
(_ARC, _V0, _VMAX, _GAIN, _EHS, _SH, _LP, _EHP, _W, _HALF, _CHEM, _DURO, _REP, _TAU,
 _XD, _SD, _ST, _ZMAX, _ZMIN, _DEL, _LZ0, _LZ1, _EPS) = range(len(PARAMS))

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_S30, _S27, _S31, _S11 = np.uint64(30), np.uint64(27), np.uint64(31), np.uint64(11)
_TWO_PI = 2.0 * np.pi
_INV53 = 1.0 / 9007199254740992.0
_GRAFT_ENTERED, _GRAFT_LEFT_FAR = 1, 2


@_jit
def _mix(x):
    z = x + _GOLDEN
    z = (z ^ (z >> _S30)) * _M1
    z = (z ^ (z >> _S27)) * _M2
    return z ^ (z >> _S31)


@_jit
def _noise(seed, cid, step, out):
    """The 3 normals of :func:`guidance.normals` (stream STREAM_NOISE) for one cone."""
    h = _mix(_mix(np.uint64(seed)) + np.uint64(cid))
    h = _mix(h + np.uint64(step))
    u = np.empty(4)
    for j in range(4):
        z = _mix(h + np.uint64(j + STREAM_NOISE))
        u[j] = (np.float64(z >> _S11) + 0.5) * _INV53
    r0, r1 = math.sqrt(-2.0 * math.log(u[0])), math.sqrt(-2.0 * math.log(u[1]))
    a0, a1 = _TWO_PI * u[2], _TWO_PI * u[3]
    out[0], out[1], out[2] = r0 * math.cos(a0), r1 * math.cos(a1), r0 * math.sin(a0)


@_jit
def _dot(a, b):
    return a[0] * b[0] + a[1] * b[1] + a[2] * b[2]


@_jit
def _perp(d, v, out):
    s = _dot(v, d)
    for k in range(3):
        out[k] = v[k] - s * d[k]


@_jit
def _rotate(d, delta, out):
    """:func:`guidance.rotate` for one heading."""
    a = math.sqrt(_dot(delta, delta))
    if a < 1e-8:
        sinc = 1.0 - a * a / 6.0
    else:
        sinc = math.sin(a) / a
    ca = math.cos(a)
    for k in range(3):
        out[k] = ca * d[k] + sinc * delta[k]
    n = math.sqrt(_dot(out, out))
    for k in range(3):
        out[k] = out[k] / n


@_jit
def _bary(a, x, lam):
    """:func:`scaffoldfem.fem.cells.barycentric_affine` for one point."""
    d0, d1, d2 = x[0] - a[0], x[1] - a[1], x[2] - a[2]
    lam[1] = a[3] * d0 + a[4] * d1 + a[5] * d2
    lam[2] = a[6] * d0 + a[7] * d1 + a[8] * d2
    lam[3] = a[9] * d0 + a[10] * d1 + a[11] * d2
    lam[0] = 1.0 - lam[1] - lam[2] - lam[3]


@_jit
def _interp(vv, lam, val):
    """Stacked nodal values ``vv`` (4, m) at barycentrics ``lam``."""
    for j in range(vv.shape[1]):
        val[j] = vv[0, j] * lam[0] + vv[1, j] * lam[1] + vv[2, j] * lam[2] + vv[3, j] * lam[3]


@_jit
def walk_status(affine, neighbours, blocked, cell, x, eps, max_iter):
    """Lawson walk of :meth:`Locator.walk` for one point: (status, last cell);
    status FOUND or -1 (anything else: the vectorised walk redoes it)."""
    lam = np.empty(4)
    cur = cell
    for _ in range(max_iter):
        _bary(affine[cur], x, lam)
        j = 0
        for q in range(1, 4):
            if lam[q] < lam[j]:
                j = q
        if not lam[j] < -eps:
            return FOUND, cur
        nb = neighbours[cur, j]
        if nb < 0 or blocked[nb]:
            return -1, cur
        cur = nb
    return -1, cur


@_jit
def _cue(at_s, at_q, val, grad_c, k_eff, ns, prm, G):
    """Field drift ``G`` of :meth:`Tracer._cue` at one point."""
    for k in range(3):
        G[k] = 0.0
    if ns > 0 and prm[_CHEM] != 0.0:
        tot = np.zeros(3)
        for s in range(ns):
            c = max(val[s], 0.0)
            f = k_eff[s] / ((c + k_eff[s]) * (c + k_eff[s]))
            for k in range(3):
                tot[k] = tot[k] + grad_c[s, k] * f
        nt = math.sqrt(_dot(tot, tot))
        dp = nt * prm[_W]
        rho = dp / (dp + prm[_HALF])
        for k in range(3):
            u = tot[k] / nt if nt > 1e-300 else 0.0
            G[k] = G[k] + prm[_CHEM] * (u * rho)
    if at_q >= 0 and prm[_DURO] != 0.0:
        for k in range(3):
            G[k] = G[k] - prm[_DURO] * val[at_q + 1 + k]
    if at_s >= 0 and prm[_REP] != 0.0:
        for k in range(3):
            G[k] = G[k] - prm[_REP] * val[at_s + 1 + k]


@_jit
def _axis(mode, at_axis, axis_cell, cell, val, out):
    """Unit guidance axis: z by default, else the DG0 (mode 1) or P1 (mode 2) axis."""
    out[0], out[1], out[2] = 0.0, 0.0, 1.0
    if mode == 0:
        return
    a = axis_cell[cell] if mode == 1 else val[at_axis:at_axis + 3]
    n = math.sqrt(_dot(a, a))
    if n > 1e-300:
        for k in range(3):
            out[k] = a[k] / n


@_jit
def _drift(d, G, kappa, axis, out):
    s = kappa * _dot(axis, d)
    w = np.empty(3)
    for k in range(3):
        w[k] = G[k] + s * axis[k]
    _perp(d, w, out)


@_jit
def _speed(val, kd, ns, at_s, at_q, prm):
    """:meth:`Tracer._speed` at one point (the 1e-300 floor of ``_heading`` included)."""
    free = 1.0
    for s in range(ns):
        c = max(val[s], 0.0)
        free = free * (1.0 - c / (c + kd[s]))
    pb = 1.0 - free if ns > 0 else 0.0
    v = prm[_V0] * (1.0 + prm[_GAIN] * pb)
    if at_q >= 0 and prm[_EHS] > 0:
        e = math.exp(val[at_q])
        v = v * (e / (e + prm[_EHS]))
    if at_s >= 0:
        v = v * (prm[_SH] / (prm[_SH] + max(val[at_s], 0.0)))
    return max(min(v, prm[_VMAX]), 1e-300)


@_jit
def _d_theta(val, at_q, prm):
    if at_q < 0 or prm[_EHP] <= 0:
        return 0.5 / prm[_LP]
    e = math.exp(val[at_q])
    return 0.5 / prm[_LP] * (1.0 + prm[_EHP] / max(e, 1e-300))


@_jit
def advance_cones(idx, t1, prm, flags, seed, max_iter,
                  affine, nodes, neighbours, blocked, implant, region, global_cell,
                  kappa_cell, axis_cell, nodal, kd,
                  cell, gcell, x, d, t, k, cid, state, crossed, t_cross, anchor, anchor_t,
                  length, absdz, sense, graft, adapt, target, xold, speed, exiting, slides,
                  back, transit, rec, deferred):
    """Grow cones ``idx`` until ``t1``; see the module docstring.

    Args:
        flags: ``at_s, at_q, at_axis`` (columns of s~, q~, a P1 axis in ``nodal``, -1 if
            absent), axis mode (0 z, 1 DG0, 2 P1), species count, adaptation (0/1),
            stop_at_cross (0/1), record_every, MAX_SLIDES.
        rec: Record buffer, the columns of :meth:`TracerOutputs._rows` (id, k, t, x, y, z,
            speed, region, state, c_s...).
        deferred: Output: cones handed back in transit.

    Returns:
        ``(records written, cones deferred)``. Cones not finished when ``rec`` fills
        are left untouched (settled), for the next call.
    """
    at_s, at_q, at_axis, mode, ns = flags[0], flags[1], flags[2], flags[3], flags[4]
    has_adapt, stop_cross, every, max_slides = flags[5], flags[6], flags[7], flags[8]
    arc = prm[_ARC]
    m = nodal.shape[1]
    vv = np.empty((4, m))
    val1, val2 = np.empty(m), np.empty(m)
    lam = np.empty(4)
    grad_c = np.empty((max(ns, 1), 3))
    k_eff = np.empty(max(ns, 1))
    G, b1, b2, ax = np.empty(3), np.empty(3), np.empty(3), np.empty(3)
    xi, eta, tmp, d1, dn, x1, tg = (np.empty(3), np.empty(3), np.empty(3), np.empty(3),
                                    np.empty(3), np.empty(3), np.empty(3))
    nrec = ndef = 0
    cap = rec.shape[0]
    x_cross1, x_cross0 = prm[_LZ1] + prm[_XD], prm[_LZ0] - prm[_XD]
    z_hi, z_lo = prm[_ZMAX] - prm[_DEL], prm[_ZMIN] + prm[_DEL]
    tol_end = 2 * prm[_DEL]
    for i in idx:
        while nrec < cap:
            st = state[i]
            live = st == GROWING or (st == CROSSED and stop_cross == 0)
            if not live or transit[i] != 0 or not t[i] < t1:
                break
            c0 = cell[i]
            a = affine[c0]
            for j in range(4):
                for q in range(m):
                    vv[j, q] = nodal[nodes[c0, j], q]
            for s in range(ns):
                du1, du2, du3 = (vv[1, s] - vv[0, s], vv[2, s] - vv[0, s],
                                 vv[3, s] - vv[0, s])
                for q in range(3):
                    grad_c[s, q] = du1 * a[3 + q] + du2 * a[6 + q] + du3 * a[9 + q]
            kap = kappa_cell[c0]
            _bary(a, x[i], lam)
            _interp(vv, lam, val1)
            v = _speed(val1, kd, ns, at_s, at_q, prm)
            reach = v * (t1 - t[i])
            full = reach >= arc * (1.0 - 1e-9)
            last = full and reach <= arc * (1.0 + 1e-9)
            ds = arc if full else reach
            if ds <= 1e-9 * arc:
                t[i] = t1
                break
            if has_adapt:
                for s in range(ns):
                    cc = max(val1[s], 0.0)
                    av = adapt[i, s]
                    if av < 0:
                        av = cc
                    adapt[i, s] = cc + (av - cc) * math.exp(-(ds / v) / prm[_TAU])
            for s in range(ns):
                k_eff[s] = kd[s] + adapt[i, s] if has_adapt else kd[s]
            di = d[i]
            _cue(at_s, at_q, val1, grad_c, k_eff, ns, prm, G)
            _axis(mode, at_axis, axis_cell, c0, val1, ax)
            _drift(di, G, kap, ax, b1)
            _noise(seed, cid[i], k[i], tmp)
            _perp(di, tmp, xi)
            amp = math.sqrt(2.0 * _d_theta(val1, at_q, prm) * ds)
            for q in range(3):
                eta[q] = amp * xi[q]
                tmp[q] = ds * b1[q] + eta[q]
                x1[q] = x[i, q] + ds * di[q]
            _rotate(di, tmp, d1)
            _bary(a, x1, lam)
            _interp(vv, lam, val2)
            _cue(at_s, at_q, val2, grad_c, k_eff, ns, prm, G)
            _axis(mode, at_axis, axis_cell, c0, val2, ax)
            _drift(d1, G, kap, ax, b2)
            h = 0.5 * ds
            for q in range(3):
                tmp[q] = h * (b1[q] + b2[q])
            _perp(di, tmp, xi)
            for q in range(3):
                xi[q] = xi[q] + eta[q]
            _rotate(di, xi, dn)
            for q in range(3):
                tg[q] = x[i, q] + h * (di[q] + dn[q])
            ex = 0
            for zend, sgn in ((z_hi, 1.0), (z_lo, -1.0)):
                if sgn * (tg[2] - zend) > 0:
                    dz = tg[2] - x[i, 2]
                    f = min(max((zend - x[i, 2]) / (dz if dz != 0 else 1.0), 0.0), 1.0)
                    for q in range(3):
                        tg[q] = x[i, q] + f * (tg[q] - x[i, q])
                    ex = 1
            t[i] = t[i] + ds / v if (full and not last) else t1
            for q in range(3):
                target[i, q], xold[i, q], d[i, q] = tg[q], x[i, q], dn[q]
            speed[i], exiting[i], slides[i], back[i], transit[i] = v, ex, max_slides, 0, 1
            status, c1 = walk_status(affine, neighbours, blocked, c0, tg,
                                     prm[_EPS], max_iter)
            if status != FOUND:
                deferred[ndef] = i
                ndef += 1
                break
            # Motion._finish of a cone that reached its target without a slide.
            cell[i], gcell[i] = c1, global_cell[c1]
            seg2 = 0.0
            for q in range(3):
                dq = tg[q] - xold[i, q]
                seg2 = seg2 + dq * dq
                x[i, q] = tg[q]
            length[i] += math.sqrt(seg2)
            absdz[i] += abs(tg[2] - xold[i, 2])
            k[i] += 1
            ti = t[i]
            transit[i] = 0
            g = graft[i] | (_GRAFT_ENTERED if implant[c1] else 0)
            z = tg[2]
            far = z > prm[_LZ1] if sense[i] > 0 else z < prm[_LZ0]
            graft[i] = g | (_GRAFT_LEFT_FAR if far and (g & _GRAFT_ENTERED) > 0 else 0)
            zc = z >= x_cross1 if sense[i] > 0 else z <= x_cross0
            if zc and crossed[i] == 0:
                crossed[i] = 1
                t_cross[i] = ti
                if st == GROWING:
                    state[i] = CROSSED
            new_st = state[i]
            live = new_st == GROWING or (new_st == CROSSED and stop_cross == 0)
            da = 0.0
            for q in range(3):
                dq = tg[q] - anchor[i, q]
                da = da + dq * dq
            if math.sqrt(da) >= prm[_SD]:
                for q in range(3):
                    anchor[i, q] = tg[q]
                anchor_t[i] = ti
            elif live and ti - anchor_t[i] >= prm[_ST] * (1 - 1e-12):
                new_st = STALLED
            if live and exiting[i] == 1 and (z >= prm[_ZMAX] - tol_end or
                                             z <= prm[_ZMIN] + tol_end):
                new_st = EXITED
            state[i] = new_st
            if k[i] % every == 0 or new_st != st:
                r = rec[nrec]
                r[0], r[1], r[2] = cid[i], k[i], ti
                r[3], r[4], r[5] = tg[0], tg[1], tg[2]
                r[6], r[7], r[8] = v, region[c1], new_st
                a1 = affine[c1]
                _bary(a1, tg, lam)
                for s in range(ns):
                    r[9 + s] = (nodal[nodes[c1, 0], s] * lam[0] + nodal[nodes[c1, 1], s] * lam[1]
                                + nodal[nodes[c1, 2], s] * lam[2]
                                + nodal[nodes[c1, 3], s] * lam[3])
                nrec += 1
    return nrec, ndef
