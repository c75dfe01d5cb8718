"""Growth-cone laws: pure, vectorised functions of the sampled fields.

Everything here acts on arrays over growth cones (first axis) and uses only
elementwise arithmetic, so a cone's result does not depend on which rank or
which batch it is processed in. Random numbers come from a counter-based hash
of (seed, axon id, step, draw index): no generator state, identical for any
number of ranks.

The heading law per unit arc length s (``docs/model.md`` §11) is

    dd = P(d) [ G(x) + κ_g (a·d) a ] ds + sqrt(2 D_θ) P(d) dW,   P(d) = I − d dᵀ,

with ``G = κ_c ρ ĝ − χ_E ∇q̃ − χ_s ∇s̃`` (:func:`chemotaxis`, smoothed fields) and
the nematic contact guidance ``κ_g (a·d) a`` (:func:`drift`); the speed law
(:func:`speed`) is separate and never changes the path.
"""

from __future__ import annotations

import numpy as np

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)

#: Random streams (the draw index k is offset by these so streams never overlap).
STREAM_NOISE = 0
STREAM_SEED = 1 << 20
STREAM_START = 1 << 21


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


def dot3(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise dot product of (n, 3) arrays (elementwise, order-fixed)."""
    return a[:, 0] * b[:, 0] + a[:, 1] * b[:, 1] + a[:, 2] * b[:, 2]


def norm3(v: np.ndarray) -> np.ndarray:
    """Euclidean norm of rows of an (n, 3) array (elementwise, order-fixed)."""
    return np.sqrt(dot3(v, v))


def unit(v: np.ndarray, fallback: np.ndarray | None = None, tiny: float = 1e-300) -> np.ndarray:
    """Rows of ``v`` normalised; rows with norm <= tiny become ``fallback`` (or 0)."""
    n = norm3(v)
    ok = n > tiny
    out = np.zeros_like(v) if fallback is None else np.array(fallback, dtype=np.float64, copy=True)
    out[ok] = v[ok] / n[ok, None]
    return out


def perp(d: np.ndarray, v: np.ndarray) -> np.ndarray:
    """``P(d) v = v − (v·d) d``: the part of ``v`` that turns the unit heading ``d``."""
    return v - dot3(v, d)[:, None] * d


def rotate(d: np.ndarray, delta: np.ndarray) -> np.ndarray:
    """Exponential map on the unit sphere: ``d`` turned by the tangent vector ``delta``
    (⊥ d) through the angle |delta|, ``cos|δ| d + sin|δ| δ/|δ|``, renormalised.

    For a Gaussian tangent increment this is the geodesic random walk, whose
    one-step correlation E[cos|δ|] = 1 − σ² + σ⁴/3 matches e^{−σ²} to O(σ⁴/6), so
    the persistence length has a relative bias of only Δs/(6 ℓ_p) (0.17 % at
    Δs = 10 µm, ℓ_p = 1 mm; renormalising d + δ instead gives 2.5 %).
    """
    a = norm3(delta)
    small = a < 1e-8
    sinc = np.where(small, 1.0 - a * a / 6.0, np.sin(a) / np.where(small, 1.0, a))
    out = np.cos(a)[:, None] * d + sinc[:, None] * delta
    return out / norm3(out)[:, None]


def occupancy(c: np.ndarray, kd: np.ndarray | float) -> np.ndarray:
    """Receptor occupancy ``p = c / (c + K)`` (negative c clipped to 0)."""
    c = np.maximum(c, 0.0)
    return c / (c + kd)


def occupancy_gradient(c: np.ndarray, grad_c: np.ndarray, kd: np.ndarray | float
                       ) -> np.ndarray:
    """``∇p = K / (c + K)² ∇c`` for arrays c (n,), grad_c (n, 3) and K (scalar or (n,))."""
    c = np.maximum(c, 0.0)
    f = kd / ((c + kd) * (c + kd))
    return grad_c * f[:, None]


def chemotaxis(conc: np.ndarray, grads: np.ndarray, k_eff: np.ndarray, width: float,
               half_saturation: float) -> tuple[np.ndarray, np.ndarray]:
    """Chemotactic response ``ρ ĝ`` from receptor-occupancy gradients of several factors.

    The cone senses the occupancy difference across its width, ``Δp = w |Σ_i ∇p_i|``
    with ``∇p_i = K_i/(c_i + K_i)² ∇c_i`` (peaks at ``c ≈ K_i`` for a fixed fractional
    gradient); the response ``ρ = Δp / (Δp + Δp_half)`` is linear in shallow and
    saturates in steep gradients, with no threshold (Mortimer et al. 2009).

    Args:
        conc: Concentrations (n, s).
        grads: Their gradients (n, s, 3).
        k_eff: Sensing constant per cone and factor (n, s): K_d (+ adapted level).
        width: Growth-cone width w.
        half_saturation: Δp_half.

    Returns:
        ``(rho_g, dp)``: ``ρ ĝ`` (n, 3), length ρ in [0, 1), and Δp (n,).
    """
    n = conc.shape[0]
    total = np.zeros((n, 3))
    for s in range(conc.shape[1]):
        total += occupancy_gradient(conc[:, s], grads[:, s], k_eff[:, s])
    dp = norm3(total) * width
    rho = dp / (dp + half_saturation)
    return unit(total) * rho[:, None], dp


def any_occupancy(conc: np.ndarray, kd: np.ndarray) -> np.ndarray:
    """Probability that at least one receptor type is bound: ``1 − Π(1 − p_s)``."""
    free = np.ones(conc.shape[0])
    for s in range(conc.shape[1]):
        free = free * (1.0 - occupancy(conc[:, s], kd[s]))
    return 1.0 - free


def saturated_log_modulus(E: np.ndarray, e_sat: float) -> np.ndarray:
    """``q = ln(E / (1 + E/E_sat))``: ln E on soft substrates, → ln E_sat on stiff ones."""
    E = np.maximum(np.asarray(E, dtype=np.float64), 1e-300)
    return np.log(E) - np.log1p(E / e_sat)


def drift(d: np.ndarray, G: np.ndarray, kappa_g: np.ndarray, axis: np.ndarray) -> np.ndarray:
    """Heading drift ``P(d) [G + κ_g (a·d) a]`` (1/mm): the field cues ``G`` plus nematic
    contact guidance along the unit axis ``a`` (bidirectional: aligns ``d`` with the
    nearer of ±a, so it never reverses a cone)."""
    s = kappa_g * dot3(axis, d)
    return perp(d, G + s[:, None] * axis)


def rotational_diffusion(lp: float, e_s: np.ndarray | None, e_half: float
                         ) -> np.ndarray | float:
    """``D_θ = 1/(2 ℓ_p(E))`` with ``ℓ_p(E) = ℓ_p E/(E + E_half)``: paths are straighter
    on stiffer substrates (Koser et al. 2016), ``ℓ_p`` on stiff ones; ``e_s`` None or
    ``e_half`` 0: the constant ``1/(2 ℓ_p)``."""
    if e_s is None or e_half <= 0:
        return 0.5 / lp
    return 0.5 / lp * (1.0 + e_half / np.maximum(e_s, 1e-300))


def speed(v0: float, v_max: float, gain: float, p_bound: np.ndarray, e_s: np.ndarray | None,
          e_half: float, cspg: np.ndarray | None, s_half: float) -> np.ndarray:
    """Speed law ``v = min(v_max, v0 (1 + gain P) · E/(E + E_half) · s_h/(s_h + s))``.

    Args:
        v0, v_max: Baseline and largest speed (mm/day).
        gain: Occupancy gain; ``p_bound`` the bound probability per cone.
        e_s: Sensed modulus per cone (kPa) or None (no stiffness factor).
        e_half: Modulus of half speed (0: no stiffness factor).
        cspg: Smoothed CSPG level per cone (1 = mature scar) or None.
        s_half: CSPG level of half speed.
    """
    v = v0 * (1.0 + gain * p_bound)
    if e_s is not None and e_half > 0:
        v = v * (e_s / (e_s + e_half))
    if cspg is not None:
        v = v * (s_half / (s_half + np.maximum(cspg, 0.0)))
    return np.minimum(v, v_max)
