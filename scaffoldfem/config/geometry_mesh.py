"""Mesh sizes of a geometry, and the number of cells a mesh of it will have, before meshing.

:func:`mesh_sizes` is the one definition of how fine each zone is meshed (the Gmsh
size fields of :mod:`scaffoldfem.geometry.sizes` use it). :func:`estimate_cells`
predicts the tetrahedron count from those sizes, so ``scaffoldfem check`` can
refuse a study whose mesh would not fit in memory (``"1e-6 mm"`` once ran the
mesher until it was killed) instead of finding out hours later.

The estimate counts regular tetrahedra of the local size s, ``6√2 / s³`` per
unit volume, integrated over the cord with s the Box/Constant size fields of
:mod:`scaffoldfem.geometry.sizes`, plus the extra cells of the layers next to
borders meshed finer than the volume around them (channel walls, the grey
matter border), where the size is taken to grow linearly from the border's size
with slope :data:`GRADING`; each term is weighted by its :data:`FILL` factor.
Both are fitted to real meshes (coarse, medium, fine, explicit sizes and lesion
variants, see :data:`FILL`): the estimate is within 7 % of the actual count on
all of them. It takes ~30 ms. The limit it is checked against is
``geometry.max_cells``.
"""

from __future__ import annotations

import math

import numpy as np

from scaffoldfem.config.geometry_sections import (
    CordConfig,
    GreyMatterConfig,
    LesionConfig,
    MeshConfig,
)

__all__ = ["BYTES_PER_CELL", "FILL", "GRADING", "estimate_cells", "mesh_sizes"]

#: Cells per regular tetrahedron of the local size, per term of
#: :func:`size_integrals` (Delaunay meshes are not made of regular tetrahedra,
#: and a border's layer is not exactly linear). Least-squares fit (relative
#: error) to nine Gmsh meshes: baseline coarse 156,196 / medium 423,362 / fine
#: 1,190,127 cells, "0.4 mm" with 12 points per turn 24,379, "0.3 mm" 53,293;
#: at coarse a left hemisection with a 0.1 mm gap and 3 x 300 um channels
#: 106,908, a contusion with one channel 88,697, no channels 38,002, elliptic
#: grey matter with a 0.15 mm gap 136,898. Every estimate is within 7 %.
FILL = {"volume": 1.05, "grey": 0.088, "channel": 0.77}
#: Growth of the element size per unit distance away from a finer border
#: (fitted with FILL).
GRADING = 0.08
#: Peak memory of a run per mesh cell (bytes): baseline runs (3 growth factors,
#: MMP, P1 mechanics, axons off, one rank) peaked at 0.89 GB on the coarse mesh
#: (156k cells) and 1.71 GB on the medium one (424k): 3.05 kB per cell above
#: ~0.4 GB of libraries.
BYTES_PER_CELL = 3000
_TET = 6 * math.sqrt(2)  # regular tetrahedra of edge 1 per unit volume


def mesh_sizes(h: float, n: int, mesh: MeshConfig, cord: CordConfig,
               channel_radius: float) -> dict[str, float]:
    """The target element sizes (mm) of each zone.

    Args:
        h: Base size of ``geometry.resolution`` (mm).
        n: Elements per full turn on curved borders.
        mesh: The ``geometry.mesh`` factors.
        cord: The cord (its tightest radius of curvature caps the pia size).
        channel_radius: Channel radius (mm).

    Curved borders are capped so the faceting (chord) error of the area they
    enclose stays near (2π/N)²/6 (0.5 % at N = 36).
    """
    far = h * mesh.far_factor
    a, b = cord.semi_axis_x, cord.semi_axis_y
    rho_cord = min(a, b) ** 2 / max(a, b)  # tightest radius of curvature of the ellipse
    return {
        "base": h,
        "far": far,
        "interface": h * mesh.interface_factor,
        "channel": h * mesh.channel_factor,
        "channel_wall": min(h * mesh.channel_factor, 2 * math.pi * channel_radius / n),
        "pia": min(far, 2 * math.pi * rho_cord / n),
        "grey_wall": min(far, h),
    }


def implant_box(cord: CordConfig, les: LesionConfig, g: float
                ) -> tuple[tuple[float, float, float], tuple[float, float, float]]:
    """Bounding box of the scaffold (the implant), as refined by the interface field."""
    a, b = cord.semi_axis_x, cord.semi_axis_y
    z0, z1 = les.center - les.length / 2, les.center + les.length / 2
    if les.kind == "contusion":
        sa, sb = les.semi_axis_x - g, les.semi_axis_y - g
        return (-sa, -sb, z0 + g), (sa, sb, z1 - g)
    if les.kind == "hemisection":
        x0, x1 = (g, 2 * a) if les.side == "right" else (-2 * a, -g)
        return (x0, -2 * b, z0 + g), (x1, 2 * b, z1 - g)
    return (-2 * a, -2 * b, z0 + g), (2 * a, 2 * b, z1 - g)


def _box(pts: np.ndarray, size: float, far: float, lo: tuple[float, ...], hi: tuple[float, ...],
         thickness: float) -> np.ndarray:
    """Gmsh's Box field at ``pts`` (n, 3): ``size`` inside, linear to ``far`` over
    ``thickness`` of Euclidean distance outside."""
    d = np.maximum(np.maximum(np.asarray(lo) - pts, pts - np.asarray(hi)), 0.0)
    dist = np.sqrt(np.sum(d * d, axis=1))
    return np.where(dist >= thickness, far, size + (far - size) * dist / thickness)


def _layer(s_wall: np.ndarray, s_vol: np.ndarray, depth: np.ndarray, curvature: float
           ) -> np.ndarray:
    """Extra cells per unit border area (÷ 6√2) of a layer graded from ``s_wall`` to
    ``s_vol`` with slope GRADING, at most ``depth`` deep; ``curvature`` +1/r (-1/r)
    weighs a layer inside (outside) a cylinder of radius r, 0 a flat one."""
    s_wall, s_vol, depth = np.broadcast_arrays(*(np.atleast_1d(x).astype(float)
                                                 for x in (s_wall, s_vol, depth)))
    span = np.minimum(np.maximum(s_vol - s_wall, 0.0) / GRADING, depth)
    t = np.linspace(0.0, 1.0, 65)[:, None]
    d = t * span
    s = np.minimum(s_wall + GRADING * d, s_vol)
    w = np.clip(1.0 - curvature * d, 0.0, None)
    f = w * (1.0 / s**3 - 1.0 / s_vol**3)
    return np.trapezoid(f, t, axis=0) * span


def estimate_cells(cord: CordConfig, grey: GreyMatterConfig, les: LesionConfig, t: float,
                   g: float, centres: list[tuple[float, float]], r: float,
                   sizes: dict[str, float], transition: float) -> float:
    """Expected number of tetrahedra of the mesh (see the module docstring).

    Args:
        cord, grey, les: The cord, grey matter and lesion sections.
        t: Scar thickness; g: cavity gap (mm).
        centres: Channel axes (x, y); r: channel radius (mm).
        sizes: :func:`mesh_sizes`.
        transition: ``geometry.mesh.transition`` (mm).

    Returns:
        The estimated cell count (may be ``inf`` for an absurd size).
    """
    parts = size_integrals(cord, grey, les, t, g, centres, r, sizes, transition)
    return _TET * sum(FILL[k] * v for k, v in parts.items())


def size_integrals(cord: CordConfig, grey: GreyMatterConfig, les: LesionConfig, t: float,
                   g: float, centres: list[tuple[float, float]], r: float,
                   sizes: dict[str, float], transition: float) -> dict[str, float]:
    """The integrals of 1/s³ behind :func:`estimate_cells`: over the volume, and the
    extra of the layers at the grey matter border and at the channel walls.

    Args:
        cord, grey, les: The cord, grey matter and lesion sections.
        t: Scar thickness; g: cavity gap (mm).
        centres: Channel axes (x, y); r: channel radius (mm).
        sizes: :func:`mesh_sizes`.
        transition: ``geometry.mesh.transition`` (mm).

    Returns:
        ``{"volume", "grey", "channel"}`` (mm⁻³ · mm³, i.e. per unit size³).
    """
    a, b, L = cord.semi_axis_x, cord.semi_axis_y, cord.length
    z0, z1 = les.center - les.length / 2, les.center + les.length / 2
    far = sizes["far"]
    lo, hi = implant_box(cord, les, g)
    boxes = [(sizes["base"], (-2 * a, -2 * b, z0 - t), (2 * a, 2 * b, z1 + t), transition),
             (sizes["interface"], lo, hi, 0.5 * transition)]

    def field(pts: np.ndarray) -> np.ndarray:
        return np.minimum.reduce([_box(pts, s, far, p, q, th) for s, p, q, th in boxes])

    # Volume: midpoint rule on a grid over the cord (the fields vary over
    # `transition`, far more than the grid step).
    nx, nz = 24, 100
    u = (np.arange(nx) + 0.5) / nx * 2 - 1
    X, Y = np.meshgrid(a * u, b * u, indexing="ij")
    inside = (X / a) ** 2 + (Y / b) ** 2 <= 1
    xy = np.column_stack([X[inside], Y[inside]])
    dA = (2 * a / nx) * (2 * b / nx)
    z = (np.arange(nz) + 0.5) / nz * L - L / 2
    dz = L / nz
    pts = np.column_stack([np.tile(xy, (nz, 1)), np.repeat(z, len(xy))])
    s = field(pts)
    c = np.asarray(centres, dtype=float).reshape(-1, 2)
    lengths = _channel_lengths(c, les, g, z0, z1)
    if len(c):
        near = np.min(np.hypot(xy[:, None, 0] - c[None, :, 0], xy[:, None, 1] - c[None, :, 1]),
                      axis=1) < r
        if les.kind == "contusion":
            la, lb, lc = les.semi_axis_x - g, les.semi_axis_y - g, les.length / 2 - g
            in_ch = np.tile(near, nz) & (((pts[:, 0] / la) ** 2 + (pts[:, 1] / lb) ** 2
                                          + ((pts[:, 2] - les.center) / lc) ** 2) <= 1)
        else:
            in_ch = np.tile(near, nz) & (pts[:, 2] >= z0 + g) & (pts[:, 2] <= z1 - g)
        s = np.where(in_ch, np.minimum(s, sizes["channel"]), s)
    parts = {"volume": float(np.sum(1.0 / s**3)) * dA * dz, "grey": 0.0, "channel": 0.0}

    # Border layers. The grey matter border (both sides): the field at points of
    # the border, ring by ring along z. (The pia's cap shows no measurable extra
    # cells in the fit, so it has no term.)
    if grey.enabled:
        outline = grey.outline((np.arange(16) + 0.5) / 16 * 2 * np.pi)
        perimeter = float(np.sum(np.hypot(*(np.roll(outline, -1, 0) - outline).T)))
        p3 = np.column_stack([np.tile(outline, (nz, 1)), np.repeat(z, len(outline))])
        extra = _layer(sizes["grey_wall"], field(p3), np.inf, 0.0)
        parts["grey"] = 2 * float(np.mean(extra)) * perimeter * L  # both sides
    # Channel walls: inside the lumen (curved, at most r deep) and in the scaffold
    # around it (up to half the wall to the nearest channel).
    if len(c):
        gap = np.full(len(c), np.inf)
        if len(c) > 1:
            dist = np.hypot(c[:, None, 0] - c[None, :, 0], c[:, None, 1] - c[None, :, 1])
            np.fill_diagonal(dist, np.inf)
            gap = np.maximum(dist.min(axis=1) - 2 * r, 0.0) / 2
        s_in = min(sizes["channel"], sizes["interface"])
        inner = _layer(sizes["channel_wall"], s_in, r, 1.0 / r)
        outer = _layer(sizes["channel_wall"], sizes["interface"], gap, -1.0 / r)
        parts["channel"] = float(np.sum((inner + outer) * 2 * math.pi * r * lengths))
    return parts


def _channel_lengths(c: np.ndarray, les: LesionConfig, g: float, z0: float, z1: float
                     ) -> np.ndarray:
    """Length of each channel lumen (mm): through the implant, or the chord of the
    shrunk contusion ellipsoid at the channel axis."""
    if les.kind != "contusion":
        return np.full(len(c), max(z1 - z0 - 2 * g, 0.0))
    la, lb, lc = les.semi_axis_x - g, les.semi_axis_y - g, les.length / 2 - g
    q = 1 - (c[:, 0] / la) ** 2 - (c[:, 1] / lb) ** 2 if len(c) else np.zeros(0)
    return 2 * lc * np.sqrt(np.clip(q, 0.0, None))

