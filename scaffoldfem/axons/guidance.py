"""Growth-cone guidance model: pure, vectorised functions of the sampled fields.

Everything here acts on arrays over growth cones (first axis) and uses only
elementwise arithmetic, so a cone's result does not depend on which rank or
which batch it is processed in. Random numbers come from a counter-based hash
of (seed, axon id, step, draw index): no generator state, identical for any
number of ranks.

See ``docs/model.md`` §11 for the model and its references.
"""

from __future__ import annotations

import numpy as np

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)

#: Random streams (the draw index k is offset by these so streams never overlap).
STREAM_NOISE = 0
STREAM_SEED = 1 << 20


def splitmix64(x: np.ndarray) -> np.ndarray:
    """SplitMix64 finaliser (Steele, Lea & Flood 2014) on a uint64 array."""
    with np.errstate(over="ignore"):
        z = np.asarray(x, dtype=np.uint64) + _GOLDEN
        z = (z ^ (z >> np.uint64(30))) * _M1
        z = (z ^ (z >> np.uint64(27))) * _M2
        return z ^ (z >> np.uint64(31))


def _u64(v) -> np.ndarray:
    return np.asarray(v).astype(np.int64).astype(np.uint64)


def uniforms(seed: int, ids: np.ndarray, step: np.ndarray | int, n: int,
             stream: int = STREAM_NOISE) -> np.ndarray:
    """Uniform numbers in (0, 1), shape (len(ids), n), from the counter hash.

    Args:
        seed: Study seed.
        ids: Axon (or candidate) ids.
        step: Growth step per id (or one for all).
        n: Draws per id.
        stream: Stream offset for the draw index.
    """
    ids = _u64(ids)
    with np.errstate(over="ignore"):
        h = splitmix64(splitmix64(np.full(ids.shape, _u64(seed))) + ids)
        h = splitmix64(h + _u64(np.broadcast_to(step, ids.shape)))
        k = _u64(np.arange(n) + stream)
        z = splitmix64(h[:, None] + k[None, :])
    # 53 random bits, centred in their bin so 0 and 1 never occur.
    return ((z >> np.uint64(11)).astype(np.float64) + 0.5) * (1.0 / 9007199254740992.0)


def normals(seed: int, ids: np.ndarray, step: np.ndarray | int, n: int,
            stream: int = STREAM_NOISE) -> np.ndarray:
    """Standard normal numbers, shape (len(ids), n), by Box–Muller on :func:`uniforms`."""
    m = (n + 1) // 2
    u = uniforms(seed, ids, step, 2 * m, stream)
    r = np.sqrt(-2.0 * np.log(u[:, :m]))
    a = 2.0 * np.pi * u[:, m:]
    return np.concatenate([r * np.cos(a), r * np.sin(a)], axis=1)[:, :n]


def norm3(v: np.ndarray) -> np.ndarray:
    """Euclidean norm of rows of an (n, 3) array (elementwise, order-fixed)."""
    return np.sqrt(v[:, 0] * v[:, 0] + v[:, 1] * v[:, 1] + v[:, 2] * v[:, 2])


def unit(v: np.ndarray, fallback: np.ndarray | None = None, tiny: float = 1e-300) -> np.ndarray:
    """Rows of ``v`` normalised; rows with norm <= tiny become ``fallback`` (or 0)."""
    n = norm3(v)
    ok = n > tiny
    out = np.zeros_like(v) if fallback is None else np.array(fallback, dtype=np.float64, copy=True)
    out[ok] = v[ok] / n[ok, None]
    return out


def occupancy(c: np.ndarray, kd: np.ndarray) -> np.ndarray:
    """Receptor occupancy ``p = c / (c + K_d)`` (negative c clipped to 0)."""
    c = np.maximum(c, 0.0)
    return c / (c + kd)


def occupancy_gradient(c: np.ndarray, grad_c: np.ndarray, kd: np.ndarray) -> np.ndarray:
    """``∇p = K_d / (c + K_d)^2 ∇c`` for arrays c (n,), grad_c (n, 3) and K_d."""
    c = np.maximum(c, 0.0)
    f = kd / ((c + kd) * (c + kd))
    return grad_c * f[:, None]


def chemotaxis(conc: np.ndarray, grads: np.ndarray, kd: np.ndarray, width: float,
               threshold: float, half_saturation: float) -> tuple[np.ndarray, np.ndarray]:
    """Chemotactic bias from receptor-occupancy gradients of several growth factors.

    A factor contributes only if the occupancy difference it produces across
    the growth cone, ``|∇p|·width``, reaches ``threshold`` (below it the cone
    cannot tell the gradient from receptor noise). The contributing ``∇p`` are
    summed; the bias points along the sum with a strength that rises
    linearly in shallow gradients and saturates in steep ones (Mortimer 2009),
    ``Δp / (Δp + half_saturation)`` with ``Δp = |Σ∇p|·width``.

    Args:
        conc: Concentrations (n, s).
        grads: Their gradients (n, s, 3).
        kd: Receptor K_d per factor (s,).
        width: Growth-cone width.
        threshold: Detection threshold on Δp.
        half_saturation: Δp at which the bias strength is one half.

    Returns:
        ``(bias, dp)``: bias vectors (n, 3) of length in [0, 1) and the total
        Δp of the contributing factors (n,).
    """
    n = conc.shape[0]
    total = np.zeros((n, 3))
    for s in range(conc.shape[1]):
        gp = occupancy_gradient(conc[:, s], grads[:, s], kd[s])
        seen = norm3(gp) * width >= threshold
        total[seen] += gp[seen]
    dp = norm3(total) * width
    strength = dp / (dp + half_saturation)
    return unit(total) * strength[:, None], dp


def any_occupancy(conc: np.ndarray, kd: np.ndarray) -> np.ndarray:
    """Probability that at least one receptor type is bound: ``1 − Π(1 − p_s)``."""
    free = np.ones(conc.shape[0])
    for s in range(conc.shape[1]):
        free = free * (1.0 - occupancy(conc[:, s], kd[s]))
    return 1.0 - free


def durotaxis(E: np.ndarray, grad_E: np.ndarray, width: float, threshold: float) -> np.ndarray:
    """Unit vectors down the stiffness gradient (towards softer tissue, Koser 2016).

    Zero where the relative stiffness difference across the growth cone,
    ``|∇E|·width / E``, is below ``threshold``.
    """
    g = norm3(grad_E)
    seen = g * width >= threshold * np.maximum(E, 1e-300)
    out = np.zeros_like(grad_E)
    out[seen] = -grad_E[seen] / g[seen, None]
    return out


def aligned_axis(axis: np.ndarray, d: np.ndarray, pref: np.ndarray,
                 tol: float = 0.1) -> np.ndarray:
    """Unit guidance axis with its sign chosen to agree with the heading ``d``.

    Where the heading is (nearly) perpendicular to the axis, ``|a·d| < tol`` (as
    after sliding along an obstacle), the sign agrees with ``pref`` instead
    (the growth polarity of the axon), so that guidance does not send it back.
    """
    a = unit(axis)
    s = a[:, 0] * d[:, 0] + a[:, 1] * d[:, 1] + a[:, 2] * d[:, 2]
    q = a[:, 0] * pref[:, 0] + a[:, 1] * pref[:, 1] + a[:, 2] * pref[:, 2]
    s = np.where(np.abs(s) < tol, q, s)
    return a * np.where(s < 0.0, -1.0, 1.0)[:, None]


def random_unit(seed: int, ids: np.ndarray, step: np.ndarray) -> np.ndarray:
    """Isotropic random unit vectors per (axon, step)."""
    g = normals(seed, ids, step, 3, STREAM_NOISE)
    return unit(g, fallback=np.tile([0.0, 0.0, 1.0], (len(ids), 1)))


def heading(terms: list[tuple[np.ndarray | float, np.ndarray]], d: np.ndarray) -> np.ndarray:
    """Normalised weighted sum ``Σ w_i v_i``; cones with a zero sum keep ``d``."""
    s = np.zeros_like(d)
    for w, v in terms:
        w = np.asarray(w, dtype=np.float64)
        s = s + (w[:, None] if w.ndim else w) * v
    return unit(s, fallback=d, tiny=1e-12)
