"""Does the geometry fit together? The scaffold's cross-section, where the channels
go, and the cross-field checks (each returns readable problem lines).

:class:`ScaffoldSection` is the 2D region that holds the channels;
:func:`channel_layout` places them (hexagonal grid, rings or explicit centres) and
says what does not fit (overlaps, walls thinner than ``channels.min_wall``);
:func:`grey_problems`, :func:`lesion_problems` and :func:`cavity_problems` check
the other parts against the cord. :func:`raise_problems` turns the lines into one
validation error.
"""

from __future__ import annotations

import math

import numpy as np
from pydantic_core import PydanticCustomError

from scaffoldfem.config.geometry_sections import (
    ChannelsConfig,
    CordConfig,
    GreyMatterConfig,
    LesionConfig,
)

__all__ = ["ScaffoldSection", "cavity_problems", "channel_layout", "ellipse_area_beyond",
           "ellipse_closest_point", "grey_problems", "lesion_problems", "raise_problems"]


class ScaffoldSection:
    """2D region {(x/a)² + (y/b)² <= 1} ∩ {side·x >= cut} holding the channels."""

    def __init__(self, a: float, b: float, side: int = 0, cut: float = 0.0):
        self.a, self.b, self.side, self.cut = a, b, side, cut

    @classmethod
    def of(cls, cord: CordConfig, lesion: LesionConfig, gap: float) -> ScaffoldSection:
        if lesion.kind == "contusion":
            return cls(max(lesion.semi_axis_x - gap, 1e-9), max(lesion.semi_axis_y - gap, 1e-9))
        if lesion.kind == "hemisection":
            return cls(cord.semi_axis_x, cord.semi_axis_y, +1 if lesion.side == "right" else -1,
                       gap)
        return cls(cord.semi_axis_x, cord.semi_axis_y)

    def area(self) -> float:
        if self.side == 0:
            return math.pi * self.a * self.b
        return ellipse_area_beyond(self.a, self.b, self.cut)

    def centroid(self) -> tuple[float, float]:
        if self.side == 0:
            return 0.0, 0.0
        a, b, c = self.a, self.b, min(self.cut, self.a)
        moment = 2 * b / a * (a * a - c * c) ** 1.5 / 3
        return self.side * moment / max(self.area(), 1e-300), 0.0

    def signed_distance(self, pts: np.ndarray) -> np.ndarray:
        """Distance to the border, positive inside (exact inside, approximate outside)."""
        pts = np.atleast_2d(np.asarray(pts, dtype=float))
        d = np.hypot(*(pts - ellipse_closest_point(self.a, self.b, pts)).T)
        inside = (pts[:, 0] / self.a) ** 2 + (pts[:, 1] / self.b) ** 2 <= 1
        d = np.where(inside, d, -d)
        if self.side != 0:
            d = np.minimum(d, self.side * pts[:, 0] - self.cut)
        return d


def ellipse_closest_point(a: float, b: float, pts: np.ndarray) -> np.ndarray:
    """Closest points on the ellipse (x/a)² + (y/b)² = 1 to ``pts`` (n, 2).

    Fixed-point iteration on the evolute (works inside and outside; converged to
    ~1e-12 mm after the iterations used here).
    """
    px, py = np.abs(pts[:, 0]), np.abs(pts[:, 1])
    tx = np.full_like(px, math.sqrt(0.5))
    ty = tx.copy()
    for _ in range(40):
        ex = (a * a - b * b) * tx**3 / a
        ey = (b * b - a * a) * ty**3 / b
        r = np.hypot(a * tx - ex, b * ty - ey)
        qx, qy = px - ex, py - ey
        q = np.maximum(np.hypot(qx, qy), 1e-300)
        tx = np.clip((qx * r / q + ex) / a, 0, 1)
        ty = np.clip((qy * r / q + ey) / b, 0, 1)
        t = np.hypot(tx, ty)
        degenerate = t == 0  # centre of a circle: every border point is closest
        t = np.where(degenerate, 1.0, t)
        tx, ty = np.where(degenerate, 1.0, tx / t), ty / t
    return np.column_stack([np.copysign(a * tx, pts[:, 0]), np.copysign(b * ty, pts[:, 1])])


def ellipse_area_beyond(a: float, b: float, x0: float) -> float:
    """Area of the ellipse (a, b) with x >= x0."""
    u = min(max(x0 / a, -1.0), 1.0)
    return a * b * (math.pi / 2 - math.asin(u) - u * math.sqrt(1 - u * u))


def raise_problems(problems: list[str]) -> None:
    """Raise one validation error listing ``problems`` (nothing if there are none)."""
    if problems:
        raise PydanticCustomError("geometry_fit", "{msg}", {"msg": "; ".join(problems)})


def _mm(x: float) -> str:
    return f"{x:.3g} mm"


def grey_problems(cord: CordConfig, grey: GreyMatterConfig) -> list[str]:
    """A folded grey-matter outline, or one that leaves the cord."""
    g, h = grey.amplitudes()
    theta = np.linspace(0, 2 * np.pi, 4096, endpoint=False)
    r = 1 + g * np.cos(2 * theta) - h * np.cos(4 * theta)
    if r.min() < 0.2:
        return ["horns + lateral_bulge fold the outline onto itself (smallest radius "
                f"{r.min():.2f} of the mean, need >= 0.2): reduce them"]
    sec = ScaffoldSection(cord.semi_axis_x, cord.semi_axis_y)
    clearance = sec.signed_distance(grey.outline(theta)).min()
    if clearance <= 0:
        return [f"grey matter reaches past the cord surface by {_mm(-clearance)}: "
                "reduce its semi-axes or horns"]
    return []


def lesion_problems(cord: CordConfig, lesion: LesionConfig, t: float,
                    what: str = "lesion") -> list[str]:
    """A lesion grown by ``t`` (the scar) that reaches an end or the cord surface."""
    out = []
    half = lesion.length / 2 + t
    lo, hi = lesion.center - half, lesion.center + half
    end = cord.length / 2
    for where, over, z in (("rostral", -end - lo, -end), ("caudal", hi - end, end)):
        if over > 1e-9:
            out.append(f"{what} (z from {lo:.3g} to {hi:.3g} mm) reaches past the {where} end "
                       f"(z = {z:.3g} mm) by {_mm(over)}")
        elif over > -1e-9:
            out.append(f"{what} (z from {lo:.3g} to {hi:.3g} mm) reaches the {where} end "
                       f"(z = {z:.3g} mm): leave some host tissue")
    if lesion.kind == "contusion":
        for ax, semi, cs in (("x", lesion.semi_axis_x, cord.semi_axis_x),
                             ("y", lesion.semi_axis_y, cord.semi_axis_y)):
            over = semi + t - cs
            if over > -1e-9:
                by = f" by {_mm(over)}" if over > 1e-9 else ""
                out.append(f"contusion {what} semi-axis {ax} ({_mm(semi + t)}) reaches the cord "
                           f"surface (semi_axis_{ax} {_mm(cs)}){by}")
    return out


def cavity_problems(cord: CordConfig, lesion: LesionConfig, gap: float) -> list[str]:
    """A cavity gap that leaves no scaffold."""
    if gap == 0:
        return []
    limits = {"half the lesion length": lesion.length / 2}
    if lesion.kind == "contusion":
        limits |= {"lesion.semi_axis_x": lesion.semi_axis_x,
                   "lesion.semi_axis_y": lesion.semi_axis_y}
    elif lesion.kind == "hemisection":
        limits["cord.semi_axis_x"] = cord.semi_axis_x
    return [f"gap {_mm(gap)} leaves no scaffold: it must be less than {name} ({_mm(v)})"
            for name, v in limits.items() if gap >= v]


def channel_layout(sec: ScaffoldSection, ch: ChannelsConfig
                   ) -> tuple[list[tuple[float, float]], list[str]]:
    """Return (channel centres, problems) for the layout."""
    problems: list[str] = []
    if ch.layout != "explicit" and ch.centres is not None:
        problems.append(f"centres are only used with layout = 'explicit' (layout is '{ch.layout}')")
    if ch.count == 0:
        return [], problems
    if ch.layout == "explicit":
        if ch.centres is None or len(ch.centres) != ch.count:
            n = 0 if ch.centres is None else len(ch.centres)
            return [], [*problems, f"layout 'explicit' needs one [x, y] centre per channel: "
                        f"count = {ch.count}, got {n} centre(s)"]
        centres = [(float(x), float(y)) for x, y in ch.centres]
    elif ch.layout == "rings":
        centres = _ring_centres(sec, ch)
    else:
        centres, fill = _hex_fill(sec, ch)
        problems += fill
        if fill:
            return centres, problems
    return centres, problems + _fit_problems(sec, ch, centres)


#: Problems listed one by one before the rest is counted ("... and 40 more").
_MAX_LISTED = 5


def _fit_problems(sec: ScaffoldSection, ch: ChannelsConfig,
                  centres: list[tuple[float, float]]) -> list[str]:
    """Overlaps and thin walls, between channels and to the border (vectorised: all
    pairs at once, which for the at most MAX_CHANNELS channels is 125k distances)."""
    out = []
    r, w = ch.radius, ch.min_wall
    c = np.asarray(centres, dtype=float).reshape(-1, 2)
    i, j = np.triu_indices(len(c), k=1)
    walls = np.hypot(*(c[i] - c[j]).T) - 2 * r
    for k in np.flatnonzero(walls < w):
        wall = float(walls[k])
        a, b = int(i[k]) + 1, int(j[k]) + 1
        if wall < 0:
            out.append(f"channels {a} and {b} overlap by {_mm(-wall)}")
        else:
            out.append(f"wall between channels {a} and {b} is {_mm(wall)}, "
                       f"{_mm(w - wall)} thinner than min_wall {_mm(w)}")
    for k, d in enumerate(sec.signed_distance(c) if len(c) else []):
        wall = float(d) - r
        if wall < 0:
            out.append(f"channel {k + 1} crosses the scaffold border by {_mm(-wall)}")
        elif wall < w:
            out.append(f"wall between channel {k + 1} and the scaffold border is {_mm(wall)}, "
                       f"{_mm(w - wall)} thinner than min_wall {_mm(w)}")
    if len(out) > _MAX_LISTED:
        out = [*out[:_MAX_LISTED], f"and {len(out) - _MAX_LISTED} more such problem(s)"]
    return out


def _ring_centres(sec: ScaffoldSection, ch: ChannelsConfig) -> list[tuple[float, float]]:
    """One central channel, then rings k = 1, 2, … of radius k·spacing holding up to
    6k channels each, evenly spaced in angle (the last ring takes the remainder)."""
    cx, cy = sec.centroid()
    out = [(cx, cy)]
    k = 1
    while len(out) < ch.count:
        n = min(6 * k, ch.count - len(out))
        ang = 2 * np.pi * np.arange(n) / n
        out += [(cx + k * ch.spacing * math.cos(a), cy + k * ch.spacing * math.sin(a)) for a in ang]
        k += 1
    return out


def _hex_fill(sec: ScaffoldSection, ch: ChannelsConfig
              ) -> tuple[list[tuple[float, float]], list[str]]:
    """The ``count`` points of a hexagonal grid (pitch ``spacing``, one point on the
    section centroid, rows along x) nearest the centroid at which a channel fits
    with ``min_wall`` to the border. Seven channels in an ellipse give the classic
    centre + ring of six."""
    p, r, w = ch.spacing, ch.radius, ch.min_wall
    if ch.count > 1 and p - 2 * r < w:
        wall = p - 2 * r
        msg = (f"neighbouring channels overlap by {_mm(-wall)}" if wall < 0 else
               f"wall between neighbouring channels is {_mm(wall)}, {_mm(w - wall)} thinner "
               f"than min_wall {_mm(w)}")
        return [], [f"{msg} (spacing {_mm(p)}, diameter {_mm(2 * r)})"]
    cx, cy = sec.centroid()
    n = math.ceil(2 * max(sec.a, sec.b) / p) + 2
    i, j = np.meshgrid(np.arange(-n, n + 1), np.arange(-n, n + 1), indexing="ij")
    pts = np.column_stack([(i + j / 2).ravel() * p + cx, (j * math.sqrt(3) / 2).ravel() * p + cy])
    rel = pts - (cx, cy)
    dist = np.round(np.hypot(rel[:, 0], rel[:, 1]), 9)
    ang = np.round(np.mod(np.arctan2(rel[:, 1], rel[:, 0]), 2 * np.pi), 9)
    order = np.lexsort((ang, dist))
    pts = pts[order]
    clearance = sec.signed_distance(pts) - r
    fits = clearance >= w - 1e-12
    chosen = pts[fits][: ch.count]
    centres = [(float(x), float(y)) for x, y in chosen]
    if len(chosen) < ch.count:
        best = float(clearance[~fits].max())
        how = (f"crosses the scaffold border by {_mm(-best)}" if best < 0 else
               f"leaves a {_mm(best)} wall to the scaffold border, {_mm(w - best)} thinner than "
               f"min_wall {_mm(w)}")
        return centres, [
            f"only {len(chosen)} of {ch.count} channels of {_mm(2 * r)} fit on a hexagonal grid "
            f"of spacing {_mm(p)} with min_wall {_mm(w)}; the best remaining position {how}"]
    return centres, []
