"""Where and when each recorded axon got how far, and the intervals of what is counted.

The building blocks of :mod:`scaffoldfem.axons.outcomes` (read its docstring for
the trajectory format): :class:`Layout` (lesion faces, ``cross_depth``, channel
lumens, scaffold section, from the study), :class:`Paths` (the trajectories
normalised per axon: first time at each depth past the far lesion face, where
the mid-plane was passed) and the intervals — :func:`wilson_interval` for
proportions, :func:`median_interval` (order statistics) for crossing times,
:func:`precision_warning` when too few axons were traced. Pure NumPy.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import numpy as np

#: Two-sided 95 % standard normal quantile.
Z95 = 1.959963984540054
#: Populations by growth sense (+1: descending, rostral to caudal; -1: ascending).
POPULATIONS = {"descending": 1.0, "ascending": -1.0}
#: Depths past the far lesion face of the crossing curve (mm).
DEFAULT_DEPTHS = tuple(np.round(np.linspace(0.0, 2.0, 41), 10))
#: Half-width of the crossing-fraction interval above which a warning is issued.
WARN_HALF_WIDTH = 0.05


# -- intervals ----------------------------------------------------------------------


def wilson_interval(k, n, z: float = Z95):
    """Wilson score interval of a binomial proportion ``k/n`` (Wilson 1927).

    Vectorised over ``k`` and ``n``; ``n = 0`` gives the uninformative (0, 1).
    It keeps its coverage near 0 and 1, where the normal (Wald) interval
    collapses (Brown, Cai & DasGupta 2001, Stat Sci 16:101).

    Returns:
        ``(lo, hi)`` as floats for scalar input, else arrays.
    """
    k = np.asarray(k, dtype=float)
    n = np.asarray(n, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = np.where(n > 0, k / n, 0.0)
        z2 = z * z
        den = 1.0 + z2 / n
        centre = (p + z2 / (2 * n)) / den
        half = z * np.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / den
        lo = np.where(n > 0, np.clip(centre - half, 0.0, 1.0), 0.0)
        hi = np.where(n > 0, np.clip(centre + half, 0.0, 1.0), 1.0)
    # Exact ends: k = 0 gives lo = 0 and k = n gives hi = 1 (not 1e-17 off).
    lo = np.where(k <= 0, 0.0, lo)
    hi = np.where(k >= n, 1.0, hi)
    if lo.ndim == 0:
        return float(lo), float(hi)
    return lo, hi


def precision_warning(k: int, n: int, what: str = "axons",
                      half_width: float = WARN_HALF_WIDTH) -> str | None:
    """A one-line warning when the Wilson interval of ``k/n`` is wider than
    ±``half_width``, with the number of axons that would give that precision;
    None otherwise."""
    lo, hi = wilson_interval(k, n)
    if n > 0 and (hi - lo) / 2 <= half_width:
        return None
    p = k / n if n else 0.5
    # n with z·sqrt(p(1-p)/n) = half_width (Wald, at the observed p, at least p = 0.05).
    q = min(max(p, 0.05), 0.95)
    need = math.ceil(Z95 * Z95 * q * (1 - q) / half_width**2)
    return (f"warning: {what}: crossing fraction {p:.1%} (95% CI {lo:.1%}–{hi:.1%}, "
            f"±{(hi - lo) / 2 * 100:.1f} points) from only {n} axons; "
            f"seed about {need} for ±{half_width * 100:g} points")


def median_interval(values, confidence: float = 0.95) -> dict[str, Any]:
    """Median, distribution-free order-statistic interval and IQR of ``values``.

    The interval ``[x_(l), x_(n-l+1)]`` with ``l`` the largest index such that
    ``P(B <= l-1) <= (1-confidence)/2``, ``B ~ Bin(n, 1/2)``, covers the population
    median with probability >= ``confidence`` for any continuous distribution
    (e.g. Conover, Practical Nonparametric Statistics, 3rd ed., §3.2). Bounds
    are None when ``n`` is too small (n < 6 at 95 %).

    Returns:
        ``n, median, lo, hi, q25, q75`` (None where undefined).
    """
    v = np.sort(np.asarray(values, dtype=float))
    v = v[np.isfinite(v)]
    n = len(v)
    out: dict[str, Any] = {"n": n, "median": None, "lo": None, "hi": None, "q25": None,
                           "q75": None}
    if n == 0:
        return out
    out["median"] = float(np.median(v))
    out["q25"], out["q75"] = (float(q) for q in np.quantile(v, [0.25, 0.75]))
    l = binomial_half_quantile((1.0 - confidence) / 2, n)
    if l >= 1:  # P(B <= l-1) < a by the definition of l
        out["lo"], out["hi"] = float(v[l - 1]), float(v[n - l])
    return out


def binomial_half_quantile(a: float, n: int) -> int:
    """Smallest ``k`` with ``P(B <= k) >= a``, ``B ~ Bin(n, 1/2)``, in exact integer
    arithmetic (``scipy.stats.binom.ppf(a, n, 0.5)``, without the second it takes to
    import scipy.stats at the end of every run)."""
    target = Fraction(a) * 2**n  # P(B <= k) >= a  <=>  sum_{j<=k} C(n, j) >= a 2^n
    term = total = 1  # C(n, 0)
    k = 0
    while total < target and k < n:
        term = term * (n - k) // (k + 1)
        k += 1
        total += term
    return k


# -- geometry -----------------------------------------------------------------------


@dataclass(frozen=True)
class Layout:
    """What the outcomes need of the geometry (mm).

    Attributes:
        z_rostral, z_caudal: Lesion faces.
        cross_depth: Depth past the far face that counts as crossed.
        channel_centres: (x, y) of each channel axis, in channel-number order.
        channel_radius: Channel lumen radius.
        section: The scaffold's cross-section at the mid-plane (an object with
            ``signed_distance(pts)``, positive inside), to tell the scaffold
            matrix from tissue or cavity there; None: every non-channel point at
            the mid-plane counts as matrix.
        mid_z: The mid-plane (default: half-way between the faces).
    """

    z_rostral: float
    z_caudal: float
    cross_depth: float
    channel_centres: tuple[tuple[float, float], ...] = ()
    channel_radius: float = 0.0
    section: Any = None
    mid_z: float | None = None

    @property
    def z_mid(self) -> float:
        return 0.5 * (self.z_rostral + self.z_caudal) if self.mid_z is None else self.mid_z

    @classmethod
    def from_geometry(cls, geom: Any, cross_depth: float) -> Layout:
        """From a :class:`~scaffoldfem.config.geometry.GeometryConfig`."""
        z0, z1 = geom.lesion_z()
        centres = tuple((float(x), float(y)) for x, y in geom.channel_centres())
        return cls(float(z0), float(z1), float(cross_depth), centres,
                   float(geom.channels.radius), geom.scaffold_section())

    @classmethod
    def from_study(cls, study: Any) -> Layout:
        """From a :class:`~scaffoldfem.config.study.Study` (geometry and ``axons.cross_depth``)."""
        return cls.from_geometry(study.geometry, study.axons.cross_depth)

    def threshold(self, sense: np.ndarray, depth: float) -> np.ndarray:
        """Coordinate ``depth`` past the far face per axon, computed as the tracer does
        (``z_caudal + d`` descending, ``z_rostral - d`` ascending), so reaching
        ``cross_depth`` here is exactly the tracer's crossing."""
        return np.where(sense > 0, self.z_caudal + depth, self.z_rostral - depth)


# -- trajectories --------------------------------------------------------------------


@dataclass
class Paths:
    """Trajectories normalised for the outcomes (see the module docstring).

    Per point: ``x`` (m, 3), ``t`` (m,), ``region`` (m,), ``axon`` (m,) the axon
    index 0..n-1. Per axon: ``ids``, ``offsets`` (n + 1), ``sense``, ``t_seed``,
    ``crossed``, ``t_cross`` (NaN if not crossed), ``final_state`` (name:
    growing / crossed / stalled / exited; empty if not recorded).
    """

    x: np.ndarray
    t: np.ndarray
    region: np.ndarray
    offsets: np.ndarray
    ids: np.ndarray
    sense: np.ndarray
    t_seed: np.ndarray
    crossed: np.ndarray
    t_cross: np.ndarray
    final_state: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=str))
    axon: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.axon = np.repeat(np.arange(self.n), np.diff(self.offsets))

    @property
    def n(self) -> int:
        return len(self.offsets) - 1

    @classmethod
    def of(cls, traj: Mapping[str, Any], layout: Layout) -> Paths:
        offsets = np.asarray(traj["offsets"], dtype=np.int64)
        n = len(offsets) - 1
        x = np.asarray(traj["x"], dtype=float).reshape(-1, 3)
        t = np.asarray(traj["t"], dtype=float)
        region = np.asarray(traj.get("region", np.full(len(t), -1)), dtype=np.int64)
        ids = np.asarray(traj.get("axons", np.arange(n)), dtype=np.int64)
        if n and np.any(np.diff(offsets) < 1):
            raise ValueError("every axon needs at least one trajectory point")
        first = offsets[:-1]
        if "sense" in traj:
            sense = np.where(np.asarray(traj["sense"], dtype=float) < 0, -1.0, 1.0)
        else:  # which side of the mid-plane the axon started on
            sense = np.where(x[first, 2] <= layout.z_mid, 1.0, -1.0) if n else np.zeros(0)
        t_seed = (np.asarray(traj["t_seed"], dtype=float) if "t_seed" in traj
                  else t[first].copy())
        p = cls(x, t, region, offsets, ids, sense, t_seed, np.zeros(n, dtype=bool),
                np.full(n, np.nan))
        reach = p.first_reach([layout.cross_depth], layout)[:, 0]
        crossed = (np.asarray(traj["crossed"], dtype=bool) if "crossed" in traj
                   else np.isfinite(reach))
        if "t_cross" in traj:
            t_cross = np.asarray(traj["t_cross"], dtype=float).copy()
        else:
            t_cross = np.where(np.isfinite(reach), reach, np.nan)
        t_cross[~crossed] = np.nan
        p.crossed, p.t_cross = crossed, t_cross
        if "final_state" in traj:
            p.final_state = np.asarray(traj["final_state"]).astype(str)
        return p

    def first_reach(self, depths: Sequence[float], layout: Layout) -> np.ndarray:
        """(n, len(depths)): the first recorded time each axon was ``depth`` or more
        past the far lesion face (+inf if never)."""
        out = np.full((self.n, len(depths)), np.inf)
        if self.n == 0:
            return out
        sense_p = self.sense[self.axon]
        z = self.x[:, 2]
        starts = self.offsets[:-1]
        for j, d in enumerate(depths):
            thr = layout.threshold(sense_p, float(d))
            hit = np.where(sense_p > 0, z >= thr, z <= thr)
            out[:, j] = np.minimum.reduceat(np.where(hit, self.t, np.inf), starts)
        return out

    def mid_plane(self, layout: Layout) -> tuple[np.ndarray, np.ndarray]:
        """Where each axon first passes the mid-plane in its growth sense: (x, y) by
        linear interpolation between the recorded points on either side, and a
        mask of the axons that got there."""
        xy = np.full((self.n, 2), np.nan)
        if self.n == 0:
            return xy, np.zeros(0, dtype=bool)
        s = self.sense[self.axon]
        past = s * (self.x[:, 2] - layout.z_mid) >= 0
        idx = np.flatnonzero(past)
        ax, pos = np.unique(self.axon[idx], return_index=True)
        i1 = idx[pos]
        i0 = np.where(i1 > self.offsets[ax], i1 - 1, i1)
        z0, z1 = self.x[i0, 2], self.x[i1, 2]
        dz = z1 - z0
        w = np.where(dz != 0, (layout.z_mid - z0) / np.where(dz != 0, dz, 1.0), 1.0)
        w = np.clip(w, 0.0, 1.0)[:, None]
        xy[ax] = (1 - w) * self.x[i0, :2] + w * self.x[i1, :2]
        got = np.zeros(self.n, dtype=bool)
        got[ax] = True
        return xy, got



def crossing_fraction_se(crossed: np.ndarray) -> float:
    """Standard error sqrt(p(1-p)/N) of a crossing fraction from per-axon flags."""
    c = np.asarray(crossed, dtype=float)
    n = len(c)
    if n == 0:
        return float("nan")
    p = c.mean()
    return float(math.sqrt(p * (1 - p) / n))
