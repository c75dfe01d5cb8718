"""Pictures of a run drawn from the files it left behind (no DOLFINx here).

* :func:`render_cutaway` - PyVista 3D: the cord with its dorsal-right quadrant
  removed, regions coloured by name, a growth factor on the mid-sagittal face and
  the axons as tubes coloured by final state.
* :func:`render_cross_sections` - three transverse slices (PyVista cuts them,
  matplotlib draws them with mm axes): concentration, region borders and the
  points where axons pierce each plane.
* :func:`render_growth` - animation of the sagittal slices over time with the
  axons grown up to each frame (GIF, MP4 when ffmpeg exists).

Every function draws off-screen; call them on one rank only.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from scaffoldfem.regions import CELL_TAGS, IMPLANT_REGIONS
from scaffoldfem.render import REGION_COLOURS

log = logging.getLogger(__name__)

#: Final states of an axon, by the integer stored in ``axons.vtp`` (the same
#: tuple as ``scaffoldfem.tracing.STATE_NAMES``; a test keeps them equal, but this
#: module must not import the tracer, which needs DOLFINx).
STATE_NAMES = ("growing", "crossed", "stalled", "exited")
#: Axon colours: the conventional good/bad green/red, growing blue, exited grey.
STATE_COLOURS = {"crossed": "#1a9e3a", "stalled": "#d62728", "growing": "#1f5fd1",
                 "exited": "#7f7f7f"}
#: Colormap of growth-factor concentrations: light yellow to dark red-brown, so it
#: never shares a hue with the green/blue/grey axon states or the blue implant.
FIELD_CMAP = "YlOrBr"
#: Decades of concentration shown below the maximum (log scale): a factor 10^3
#: spans the 1-100 ng/mL therapeutic window with room either side.
DECADES = 3.0


def _pv():
    import pyvista as pv

    pv.OFF_SCREEN = True
    return pv


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


# -- colour scale --------------------------------------------------------------------


@dataclass(frozen=True)
class FieldScale:
    """How a growth-factor field is coloured: one scale shared by all pictures of a run.

    Attributes:
        name: Array name in the files (e.g. ``"BDNF"``).
        vmin: Lowest value coloured (smaller values are clipped to it), ng/mL.
        vmax: Highest value coloured, ng/mL.
        log: Logarithmic colour scale.
        cmap: Matplotlib colormap name.
    """

    name: str
    vmin: float
    vmax: float
    log: bool = True
    cmap: str = FIELD_CMAP

    @property
    def label(self) -> str:
        """Scalar-bar title with the unit."""
        return f"{self.name} (ng/mL)"

    def clip(self, values: np.ndarray) -> np.ndarray:
        """``values`` clipped to [vmin, vmax] (a log scale cannot show zeros)."""
        return np.clip(np.asarray(values, dtype=float), self.vmin, self.vmax)

    def norm(self):
        """The matplotlib normalisation of this scale."""
        from matplotlib.colors import LogNorm, Normalize

        return LogNorm(self.vmin, self.vmax) if self.log else Normalize(self.vmin, self.vmax)


def field_scale(name: str, values: Sequence[np.ndarray], window: tuple[float, float] | None = None,
                cmap: str = FIELD_CMAP) -> FieldScale:
    """Choose the colour scale of field ``name`` from all the values it will show.

    Log scale over :data:`DECADES` decades below the maximum, widened to include the
    therapeutic window when one is given and the field reaches it; linear when the
    field is zero or never positive.

    Args:
        name: Field name.
        values: Every array that will be drawn with this scale.
        window: Therapeutic window (low, high) in ng/mL, or None.
        cmap: Colormap name.
    """
    vals = np.concatenate([np.ravel(v) for v in values]) if values else np.zeros(1)
    vals = vals[np.isfinite(vals)]
    vmax = float(vals.max()) if vals.size else 0.0
    if vmax <= 0.0:
        return FieldScale(name, 0.0, 1.0, log=False, cmap=cmap)
    vmin = vmax * 10.0 ** -DECADES
    if window is not None and window[0] < vmax:
        vmin = min(vmin, 0.3 * window[0])  # show where the lower window edge is crossed
    return FieldScale(name, vmin, vmax, log=True, cmap=cmap)


# -- axons ----------------------------------------------------------------------------


@dataclass
class Axons:
    """Axon trajectories read from ``axons.vtp``.

    Attributes:
        points: (n, 3) trajectory points, axon after axon, in growth order.
        t: (n,) time of each point (day).
        offsets: (m + 1,) axon j is ``points[offsets[j]:offsets[j + 1]]``.
        final_state: (m,) index into :data:`STATE_NAMES`.
        state: (n,) state of the axon when it reached each point.
    """

    points: np.ndarray
    t: np.ndarray
    offsets: np.ndarray
    final_state: np.ndarray
    state: np.ndarray

    @property
    def count(self) -> int:
        """Number of axons."""
        return len(self.offsets) - 1

    def segments(self):
        """Yield (j, slice) per axon."""
        for j in range(self.count):
            yield j, slice(int(self.offsets[j]), int(self.offsets[j + 1]))

    @classmethod
    def read(cls, path: Path, lesion: tuple[float, float] | None = None,
             cross_depth: float | None = None) -> Axons:
        """Read ``axons.vtp`` (one polyline per axon).

        A per-point ``state`` array is used when the file has one. Otherwise an axon
        is growing until its last point, which takes the final state; a crossed axon
        counts as crossed from its first point ``cross_depth`` beyond the far lesion
        face (when ``lesion`` and ``cross_depth`` are known).
        """
        pv = _pv()
        poly = pv.read(path)
        lines = np.asarray(poly.lines, dtype=np.int64)
        idx, offsets, k = [], [0], 0
        while k < len(lines):  # VTK cell array: [n, i0 .. i(n-1), n, ...]
            n = int(lines[k])
            idx.append(lines[k + 1:k + 1 + n])
            offsets.append(offsets[-1] + n)
            k += n + 1
        idx = np.concatenate(idx) if idx else np.zeros(0, dtype=np.int64)
        offsets = np.asarray(offsets, dtype=np.int64)
        pts = np.asarray(poly.points)[idx]
        t = np.asarray(poly.point_data["t_day"], dtype=float)[idx]
        m = len(offsets) - 1
        final = (np.asarray(poly.cell_data["final_state"], dtype=np.int64)[-m:] if m
                 else np.zeros(0, dtype=np.int64))  # lines come after any vertex cells
        if "state" in poly.point_data:
            state = np.asarray(poly.point_data["state"], dtype=np.int64)[idx]
        else:
            state = _infer_states(pts, offsets, final, lesion, cross_depth)
        return cls(pts, t, offsets, final, state)

    def grown_until(self, time: float) -> tuple[list[np.ndarray], np.ndarray]:
        """Polylines of the axons grown by ``time`` and each one's state then.

        Returns:
            (paths, states): the points with ``t <= time`` of every axon that has at
            least two, and the state at its last such point.
        """
        paths, states = [], []
        for _, s in self.segments():
            k = int(np.searchsorted(self.t[s], time, side="right"))
            if k >= 2:
                paths.append(self.points[s][:k])
                states.append(self.state[s][k - 1])
        return paths, np.asarray(states, dtype=np.int64)

    def crossings(self, z: float) -> tuple[np.ndarray, np.ndarray, int]:
        """Where the axons pierce the plane ``z``.

        Returns:
            (xy, state, n_axons): the (k, 2) piercing points, the final state of the
            axon of each point, and the number of distinct axons crossing.
        """
        p = self.points
        d = p[:, 2] - z
        # Segments inside one axon whose ends lie on opposite sides (or end on it).
        a = np.arange(len(p) - 1)
        same = np.ones(len(p) - 1, dtype=bool)
        same[self.offsets[1:-1] - 1] = False
        hit = same & (d[a] * d[a + 1] <= 0) & (d[a] != d[a + 1])
        a = a[hit]
        w = (d[a] / (d[a] - d[a + 1]))[:, None]
        xy = (p[a] + w * (p[a + 1] - p[a]))[:, :2]
        axon = np.searchsorted(self.offsets, a, side="right") - 1
        return xy, self.final_state[axon], len(np.unique(axon))


def _infer_states(pts: np.ndarray, offsets: np.ndarray, final: np.ndarray,
                  lesion: tuple[float, float] | None, cross_depth: float | None) -> np.ndarray:
    crossed = STATE_NAMES.index("crossed")
    state = np.full(len(pts), STATE_NAMES.index("growing"), dtype=np.int64)
    for j in range(len(offsets) - 1):
        s, e = int(offsets[j]), int(offsets[j + 1])
        if e == s:
            continue
        state[e - 1] = final[j]
        if final[j] == crossed and lesion is not None and cross_depth is not None:
            z = pts[s:e, 2]
            descending = z[0] < 0.5 * (lesion[0] + lesion[1])
            beyond = z >= lesion[1] + cross_depth if descending else z <= lesion[0] - cross_depth
            if beyond.any():
                state[s + int(np.argmax(beyond)):e] = crossed
    return state


# -- 3D cut-away ----------------------------------------------------------------------


def _shown_z(grid, axons: Axons | None, lesion: tuple[float, float]) -> tuple[float, float]:
    """z-range drawn in 3D: the lesion and the axons, with a margin, within the cord."""
    lo, hi = grid.bounds[4], grid.bounds[5]
    zs = [lesion[0], lesion[1]]
    if axons is not None and len(axons.points):
        zs += [float(axons.points[:, 2].min()), float(axons.points[:, 2].max())]
    pad = 0.5 * (lesion[1] - lesion[0])
    return max(lo, min(zs) - pad), min(hi, max(zs) + pad)


def render_cutaway(grid, axons: Axons | None, scale: FieldScale, png: Path, *,
                   lesion: tuple[float, float], t_day: float | None = None,
                   size: tuple[int, int] = (1600, 1000)) -> Path:
    """Draw the 3D cut-away picture of a run.

    The segment around the lesion and the axons is drawn with its dorsal-right
    quadrant removed: the pia as a pale see-through shell; scar, scaffold and channels
    see-through in their region colours; the field on the exposed half of the
    mid-sagittal plane and the regions on the horizontal cut face, both with region
    borders as thin lines; every axon as a tube coloured by its final state. PyVista
    renders the scene; matplotlib adds the title, colour bar and legend.

    Args:
        grid: Final fields (``fields/final.vtu``) with cell data ``region``.
        axons: Trajectories, or None when the run traced none.
        scale: Colour scale of the field.
        png: Output picture.
        lesion: Rostral and caudal z of the lesion (mm); the camera centres on it.
        t_day: Time of the fields, for the title.
        size: Picture size in pixels.

    Returns:
        ``png``.
    """
    from matplotlib.cm import ScalarMappable
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    plt = _plt()
    dpi = 100
    scene_frac = 0.8  # of the width; the rest holds the colour bar and the legend
    top_frac = 0.9  # of the height; the rest holds the title
    scene = _cutaway_scene(grid, axons, scale, lesion,
                           (int(size[0] * scene_frac), int(size[1] * top_frac)))
    fig = plt.figure(figsize=(size[0] / dpi, size[1] / dpi), dpi=dpi, facecolor="white")
    ax = fig.add_axes((0.0, 0.0, scene_frac, top_frac))
    ax.imshow(scene, interpolation="none")
    ax.set_axis_off()
    when = f" at day {t_day:g}" if t_day is not None else ""
    fig.text(0.01, 0.975, f"{scale.name}{when}: cut-away of the cord around the lesion",
             fontsize=15, va="top")
    fig.text(0.01, 0.935, "dorsal-right quadrant removed; field on the mid-sagittal face, "
             "regions on the horizontal face; axons by final state", fontsize=10,
             color="#444444", va="top")
    cax = fig.add_axes((scene_frac + 0.03, 0.5, 0.022, 0.36))
    _colourbar(fig, ScalarMappable(norm=scale.norm(), cmap=scale.cmap), scale, cax=cax)
    handles = []
    if axons is not None and axons.count:
        for k, name in enumerate(STATE_NAMES):
            n = int(np.sum(axons.final_state == k))
            if n:
                handles.append(Line2D([], [], color=STATE_COLOURS[name], lw=4,
                                      label=f"{name} ({n})"))
    region = np.asarray(grid.cell_data["region"])
    for n in ("grey_matter", "scar", *IMPLANT_REGIONS, "cavity"):
        if np.any(region == CELL_TAGS[n]):
            handles.append(Patch(facecolor=REGION_COLOURS[n], edgecolor="#555555",
                                 label=n.replace("_", " ")))
    fig.legend(handles=handles, loc="upper left", bbox_to_anchor=(scene_frac + 0.005, 0.45),
               fontsize=10, frameon=False, title="axons / regions", title_fontsize=10,
               alignment="left")
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=dpi, facecolor="white")
    plt.close(fig)
    return png


def _cutaway_scene(grid, axons: Axons | None, scale: FieldScale, lesion: tuple[float, float],
                   size: tuple[int, int]) -> np.ndarray:
    """Render the 3D cut-away (no annotations) and return the RGB image."""
    pv = _pv()
    z0, z1 = _shown_z(grid, axons, lesion)
    b = grid.bounds
    radius = 0.5 * max(b[1] - b[0], b[3] - b[2])
    big = 10 * (radius + b[5] - b[4])

    def keep(ds, quadrant: bool = True):
        """``ds`` (a surface) within the shown z-range, without the dorsal-right quadrant.

        Plane clips keep a slice's triangles conforming (its region borders are then
        found exactly); the non-convex quadrant cut needs a box clip.
        """
        if z0 > b[4]:
            ds = ds.clip(normal=(0, 0, -1), origin=(0, 0, z0))
        if z1 < b[5]:
            ds = ds.clip(normal=(0, 0, 1), origin=(0, 0, z1))
        if quadrant:
            ds = ds.clip_box([0.0, big, 0.0, big, -big, big], invert=True, crinkle=False)
        return ds

    pl = pv.Plotter(off_screen=True, window_size=list(size))
    pl.set_background("white")
    # Surfaces are cut, not volumes: a clipped tetrahedral volume is not conforming and
    # its surface would show slivers. No depth peeling: on Mesa's off-screen EGL it
    # drops every translucent actor.
    region = np.asarray(grid.cell_data["region"])
    pia = keep(grid.extract_surface(algorithm=None))
    pl.add_mesh(pia, color=REGION_COLOURS["white_matter"], opacity=0.25, smooth_shading=True,
                split_sharp_edges=True, specular=0.2)
    for name, opacity in (("scar", 0.3), ("scaffold", 0.3), ("channel", 0.45), ("cavity", 0.4)):
        sel = np.flatnonzero(region == CELL_TAGS[name])
        if sel.size:
            surf = keep(grid.extract_cells(sel).extract_surface(algorithm=None))
            pl.add_mesh(surf, color=REGION_COLOURS[name], opacity=opacity, smooth_shading=True,
                        split_sharp_edges=True)
    # The cut faces are slices a hair inside the removed quadrant: no z-fighting with
    # the surfaces, and no degenerate cuts through the mesh's symmetry planes.
    eps = 2e-3 * radius
    # The horizontal cut face (y = 0, x > 0): anatomy in region colours, see-through.
    floor = keep(grid.slice(normal="y", origin=(0, eps, 0)).clip(normal=(-1, 0, 0),
                                                                   origin=(0, 0, 0)), False)
    if floor.n_cells:
        pl.add_mesh(floor, scalars=_region_rgb(floor), rgb=True, opacity=0.6, lighting=False)
        _add_borders(pv, pl, floor, (0, eps, 0))
    # The field on the exposed (dorsal) half of the mid-sagittal plane.
    face = keep(grid.slice(normal="x", origin=(eps, 0, 0)).clip(normal=(0, -1, 0),
                                                                  origin=(0, 0, 0)), False)
    if face.n_points:
        face.point_data["c"] = scale.clip(face.point_data[scale.name])
        pl.add_mesh(face, scalars="c", cmap=scale.cmap, clim=(scale.vmin, scale.vmax),
                    log_scale=scale.log, lighting=False, show_scalar_bar=False)
        _add_borders(pv, pl, face, (eps, 0, 0))
    if axons is not None and axons.count:
        for k, name in enumerate(STATE_NAMES):
            sel = np.flatnonzero(axons.final_state == k)
            if sel.size:
                lines = _polylines(pv, axons, sel)
                pl.add_mesh(lines.tube(radius=0.012 * radius, n_sides=10),
                            color=STATE_COLOURS[name], smooth_shading=True, specular=0.4)
    _oblique_camera(pl, lesion, radius, (z0, z1))
    pl.add_axes(xlabel="x lateral", ylabel="y dorsal", zlabel="z caudal", color="black",
                line_width=3)
    img = pl.screenshot(return_img=True)
    pl.close()
    return np.asarray(img)[..., :3]


def _region_rgb(ds) -> np.ndarray:
    """(n_cells, 3) uint8 colours of the cells of ``ds`` by region."""
    from matplotlib.colors import to_rgb

    region = np.asarray(ds.cell_data["region"])
    rgb = np.full((len(region), 3), 200, dtype=np.uint8)
    for name, tag in CELL_TAGS.items():
        rgb[region == tag] = (255 * np.array(to_rgb(REGION_COLOURS[name]))).astype(np.uint8)
    return rgb


def _add_borders(pv, pl, face, shift: tuple[float, float, float]) -> None:
    lines = _region_border_lines(pv, face)
    if lines.n_points:
        pl.add_mesh(lines.translate(shift), color="#2b2b2b", line_width=1.5)


def _region_border_lines(pv, face):
    """Region borders and outline of a planar slice as PolyData lines."""
    t, tri, region = _planar_triangles(face)
    pts = np.asarray(t.points)
    segs = _border_edges(tri, region, len(pts))
    if len(segs) == 0:
        return pv.PolyData()
    return pv.PolyData(pts, lines=np.column_stack([np.full(len(segs), 2), segs]).ravel())


def _planar_triangles(plane):
    """(PolyData, triangles, region per triangle) of a planar slice, made conforming.

    A plane through mesh vertices cuts edges at their ends: the points it duplicates
    there are merged, and the zero-area slivers it leaves are dropped (they carry no
    colour but would add false region borders).
    """
    t = plane.triangulate().clean(tolerance=1e-7, absolute=False, polys_to_lines=False,
                                  lines_to_points=False)
    pts = np.asarray(t.points)
    tri = (np.asarray(t.faces).reshape(-1, 4)[:, 1:] if t.n_cells
           else np.zeros((0, 3), dtype=np.int64))
    region = (np.asarray(t.cell_data["region"]) if "region" in t.cell_data
              else np.zeros(len(tri), dtype=int))
    if len(tri):
        e1, e2 = pts[tri[:, 1]] - pts[tri[:, 0]], pts[tri[:, 2]] - pts[tri[:, 0]]
        area = 0.5 * np.linalg.norm(np.cross(e1, e2), axis=1)
        ok = area > 1e-9 * max(float(np.sum(np.ptp(pts, axis=0) ** 2)), 1e-300)
        tri, region = tri[ok], region[ok]
    return t, tri, region


def _polylines(pv, axons: Axons, which: np.ndarray):
    """One PolyData of the axons ``which`` (indices)."""
    pts, cells, start = [], [], 0
    for j in which:
        p = axons.points[axons.offsets[j]:axons.offsets[j + 1]]
        if len(p) < 2:
            continue
        pts.append(p)
        cells.append(np.r_[len(p), start + np.arange(len(p))])
        start += len(p)
    if not pts:
        return pv.PolyData()
    return pv.PolyData(np.vstack(pts), lines=np.concatenate(cells))


def _oblique_camera(pl, lesion: tuple[float, float], radius: float,
                   shown: tuple[float, float]) -> None:
    """Look into the removed quadrant from dorsal-right and a little rostral."""
    zc = 0.5 * (lesion[0] + lesion[1])
    focus = np.array([0.0, 0.0, zc])
    direction = np.array([1.0, 0.75, -0.55])
    direction /= np.linalg.norm(direction)
    pl.camera.focal_point = tuple(focus)
    # 20° view angle: at 2.4 segment lengths the segment spans ~3/4 of a 16:10 frame.
    pl.camera.position = tuple(focus + 2.4 * (shown[1] - shown[0] + radius) * direction)
    pl.camera.up = (0, 1, 0)
    pl.camera.view_angle = 20.0
    pl.reset_camera_clipping_range()
    pl.camera.zoom(1.1)


# -- 2D slices (PyVista cuts, matplotlib draws) ---------------------------------------


@dataclass
class Slice2D:
    """A planar slice as triangles in 2D coordinates.

    Attributes:
        uv: (n, 2) point coordinates in the plane (mm).
        tri: (m, 3) triangles.
        values: (n,) field values at the points.
        borders: (k, 2, 2) segments of region borders and of the outline.
    """

    uv: np.ndarray
    tri: np.ndarray
    values: np.ndarray
    borders: np.ndarray


def slice_2d(mesh, field: str, normal: str, origin: Sequence[float] = (0, 0, 0)) -> Slice2D:
    """Cut ``mesh`` (a volume grid, or an already planar PolyData) by a plane.

    Args:
        mesh: PyVista dataset with point array ``field`` and cell array ``region``.
        field: Point array to keep.
        normal: ``"x"`` (sagittal: u = z, v = y) or ``"z"`` (transverse: u = x, v = y).
        origin: A point of the plane (ignored for PolyData input).
    """
    pv = _pv()
    plane = mesh if isinstance(mesh, pv.PolyData) else mesh.slice(normal=normal, origin=origin)
    t, tri, region = _planar_triangles(plane)
    uv = np.asarray(t.points)[:, (2, 1) if normal == "x" else (0, 1)]
    values = (np.asarray(t.point_data[field], dtype=float) if field in t.point_data
              else np.zeros(len(uv)))
    return Slice2D(uv, tri, values, _borders(uv, tri, region))


def _borders(uv: np.ndarray, tri: np.ndarray, region: np.ndarray) -> np.ndarray:
    """Segments (k, 2, 2) between triangles of different regions and on the outline."""
    if len(tri) == 0:
        return np.zeros((0, 2, 2))
    return uv[_border_edges(tri, region, len(uv))]


def _border_edges(tri: np.ndarray, region: np.ndarray, npts: int) -> np.ndarray:
    """Point pairs (k, 2) of the edges between regions and on the outline."""
    e = np.sort(np.vstack([tri[:, [0, 1]], tri[:, [1, 2]], tri[:, [2, 0]]]), axis=1)
    owner = np.tile(np.arange(len(tri)), 3)
    key = e[:, 0].astype(np.int64) * (npts + 1) + e[:, 1]
    order = np.argsort(key, kind="stable")
    key, e, owner = key[order], e[order], owner[order]
    first = np.r_[True, key[1:] != key[:-1]]
    last = np.r_[key[1:] != key[:-1], True]
    single = first & last
    pair = np.flatnonzero(~last)  # i and i + 1 share an edge
    differ = pair[region[owner[pair]] != region[owner[pair + 1]]]
    keep = np.r_[np.flatnonzero(single), differ]
    return e[keep]


def _draw_slice(ax, sl: Slice2D, scale: FieldScale):
    """The field on a slice, with region borders dark on a faint light halo (they read on
    both ends of the colormap)."""
    from matplotlib import patheffects
    from matplotlib.collections import LineCollection

    if len(sl.tri) == 0:
        return None
    m = ax.tripcolor(sl.uv[:, 0], sl.uv[:, 1], sl.tri, scale.clip(sl.values), shading="gouraud",
                     cmap=scale.cmap, norm=scale.norm(), rasterized=True)
    lc = LineCollection(sl.borders, colors="#262626", linewidths=0.6, zorder=2)
    lc.set_path_effects([patheffects.Stroke(linewidth=1.6, foreground="white", alpha=0.45),
                         patheffects.Normal()])
    ax.add_collection(lc)
    return m


def _plain_log_ticks(axis) -> None:
    """Label a log axis 0.1, 1, 10 rather than 10^-1, 10^0, 10^1."""
    from matplotlib.ticker import FuncFormatter

    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))


def _colourbar(fig, mappable, scale: FieldScale, **kw):
    cb = fig.colorbar(mappable, **kw)
    cb.set_label(scale.label)
    if scale.log:
        _plain_log_ticks(cb.ax.yaxis if cb.orientation == "vertical" else cb.ax.xaxis)
    return cb


def _state_legend_handles(states: Sequence[int], marker: bool):
    from matplotlib.lines import Line2D

    handles = []
    for k in sorted(set(int(s) for s in states)):
        name = STATE_NAMES[k]
        if marker:
            handles.append(Line2D([], [], ls="none", marker="o", mfc=STATE_COLOURS[name],
                                  mec="white", mew=0.6, ms=7, label=name))
        else:
            handles.append(Line2D([], [], color=STATE_COLOURS[name], lw=2, label=name))
    return handles


def render_cross_sections(grid, axons: Axons | None, scale: FieldScale, png: Path, *,
                          planes: Sequence[tuple[str, float]], t_day: float | None = None,
                          size: tuple[float, float] = (13.0, 4.6), dpi: int = 150) -> Path:
    """Draw transverse slices side by side, seen from caudal (dorsal up, right to the right).

    Args:
        grid: Final fields with cell data ``region``.
        axons: Trajectories (their piercing points are drawn), or None.
        scale: Colour scale (shared by all panels).
        png: Output picture.
        planes: (label, z) of each panel, e.g. ``[("rostral face", -1.0), ...]``.
        t_day: Time of the fields, for the title.
        size: Figure size in inches.
        dpi: Resolution.

    Returns:
        ``png``.
    """
    plt = _plt()
    fig, axes = plt.subplots(1, len(planes), figsize=size, squeeze=False, layout="constrained")
    lo, hi = np.array(grid.bounds[0::2]), np.array(grid.bounds[1::2])
    zs = [z for _, z in planes]
    # Slice a hair off each plane, towards the middle of the planes: a lesion face is a
    # mesh interface, and a plane through mesh facets cuts them degenerately.
    mid = 0.5 * (min(zs) + max(zs))
    hair = 1e-3 * max(max(zs) - min(zs), hi[0] - lo[0])
    mappable, states = None, []
    for ax, (label, z) in zip(axes[0], planes, strict=True):
        zz = z + (hair if z <= mid else -hair) * (1.0 if z != mid else 0.37)
        zz = float(np.clip(zz, lo[2] + hair, hi[2] - hair))
        sl = slice_2d(grid, scale.name, "z", (0, 0, zz))
        m = _draw_slice(ax, sl, scale)
        mappable = mappable or m
        n = 0
        if axons is not None and axons.count:
            xy, st, n = axons.crossings(z)
            for k in np.unique(st):
                sel = st == k
                ax.scatter(xy[sel, 0], xy[sel, 1], s=16, c=STATE_COLOURS[STATE_NAMES[k]],
                           edgecolors="white", linewidths=0.6, zorder=3)
            states.extend(st.tolist())
        ax.set_title(f"{label}, z = {z:+.2f} mm" + (f"\n{n} axons pass" if axons is not None
                                                     else ""), fontsize=11)
        ax.set_aspect("equal")
        ax.set_xlim(lo[0] - 0.05, hi[0] + 0.05)
        ax.set_ylim(lo[1] - 0.05, hi[1] + 0.05)
        ax.set_xlabel("x, lateral (mm)")
    axes[0][0].set_ylabel("y, dorsal (mm)")
    if mappable is not None:
        _colourbar(fig, mappable, scale, ax=axes[0].tolist(), shrink=0.8, pad=0.01)
    if states:
        fig.legend(handles=_state_legend_handles(states, marker=True), loc="outside lower center",
                   ncols=len(set(states)), fontsize=9, frameon=False,
                   title="points where axons pierce the plane, by final state",
                   title_fontsize=9)
    when = f" at day {t_day:g}" if t_day is not None else ""
    fig.suptitle(f"Transverse sections{when}, seen from caudal (dorsal up, right to the right): "
                 f"{scale.name}", fontsize=12)
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=dpi, facecolor="white")
    plt.close(fig)
    return png


# -- animation ------------------------------------------------------------------------


def render_growth(slices: Sequence[tuple[float, object]], axons: Axons | None,
                  scale: FieldScale, gif: Path, *, lesion: tuple[float, float] | None = None,
                  width_px: int = 1000, fps: float = 4.0, mp4: bool = True) -> list[Path]:
    """Animate the sagittal slices with the axons grown up to each frame.

    Args:
        slices: (t_day, PolyData) per output time, in time order.
        axons: Trajectories, or None.
        scale: Colour scale shared by every frame.
        gif: Output GIF; an MP4 with the same stem is written too when ``mp4`` and
            an ffmpeg executable is found.
        lesion: Lesion z-extent, marked by dashed lines.
        width_px: Frame width in pixels.
        fps: Frames per second.
        mp4: Also try an MP4.

    Returns:
        The files written.
    """
    plt = _plt()
    bnd = slices[0][1].bounds
    zl, zh, yl, yh = bnd[4], bnd[5], bnd[2] - 0.05, bnd[3] + 0.05
    # Fixed layout in inches, the plot box at the cord's aspect (no letterboxing).
    dpi = 100
    w = width_px / dpi
    left, right, top, below, foot = 0.75, 0.25, 0.42, 0.45, 0.62
    plot_w = w - left - right
    plot_h = plot_w * (yh - yl) / (zh - zl)
    h = top + plot_h + below + foot
    frames = []
    for t, poly in slices:
        sl = slice_2d(poly, scale.name, "x")
        fig = plt.figure(figsize=(w, h), dpi=dpi, facecolor="white")
        ax = fig.add_axes((left / w, (below + foot) / h, plot_w / w, plot_h / h))
        m = _draw_slice(ax, sl, scale)
        states = np.zeros(0, dtype=np.int64)
        if axons is not None and axons.count:
            paths, states = axons.grown_until(t)
            _draw_axon_paths(ax, paths, states)
        if lesion is not None:
            for z in lesion:
                ax.axvline(z, color="#1a1a1a", ls=(0, (4, 3)), lw=0.8, zorder=4)
        ax.set_xlim(zl, zh)
        ax.set_ylim(yl, yh)
        ax.set_xlabel("z, rostral → caudal (mm)", labelpad=2)
        ax.set_ylabel("y, dorsal (mm)")
        fig.text(left / w, 1 - 0.12 / h, f"Day {t:.1f}: {scale.name} on the mid-sagittal plane",
                 fontsize=12, va="top")
        if axons is not None:
            counts = ", ".join(f"{int(np.sum(states == k))} {name}"
                               for k, name in enumerate(STATE_NAMES))
            fig.text(1 - right / w, 1 - 0.14 / h, f"axons ({axons.count} seeded): {counts}",
                     fontsize=9, va="top", ha="right", color="#333333")
        if m is not None:
            cax = fig.add_axes((left / w, 0.25 / h, 0.35 * plot_w / w, 0.13 / h))
            _colourbar(fig, m, scale, cax=cax, orientation="horizontal")
        if axons is not None and axons.count:
            fig.legend(handles=_state_legend_handles(range(len(STATE_NAMES)), marker=False),
                       loc="center right", bbox_to_anchor=(1 - right / w, 0.33 / h), ncols=4,
                       fontsize=9, frameon=False, title="axons projected on the plane, by state",
                       title_fontsize=9)
        fig.canvas.draw()
        frames.append(np.asarray(fig.canvas.buffer_rgba())[..., :3].copy())
        plt.close(fig)
    gif.parent.mkdir(parents=True, exist_ok=True)
    durations = [1000.0 / fps] * len(frames)
    durations[-1] = 2500.0  # hold the last frame
    _write_gif(frames, gif, durations, scale)
    out = [gif]
    if mp4:
        video = _write_mp4(frames, gif.with_suffix(".mp4"), fps)
        if video is not None:
            out.append(video)
    return out


#: Drawing order of axon states in 2D, bottom to top: the outcome of interest on top.
_STACK = ("exited", "growing", "stalled", "crossed")


def _draw_axon_paths(ax, paths: Sequence[np.ndarray], states: np.ndarray) -> None:
    """Axons projected on the sagittal plane (z, y), in state colours."""
    from matplotlib.collections import LineCollection

    for k, name in enumerate(STATE_NAMES):
        segs = [p[:, (2, 1)] for p, s in zip(paths, states, strict=True) if s == k]
        if segs:
            # Wide enough for a core of pure colour: a 1-px blue line antialiased on
            # orange turns grey.
            lc = LineCollection(segs, colors=STATE_COLOURS[name], linewidths=1.4,
                                zorder=3 + 0.1 * _STACK.index(name))
            ax.add_collection(lc)


def _gif_palette(scale: FieldScale) -> list[tuple[int, int, int]]:
    """256 colours for every frame: greys for text, the axon and region colours (and
    their blends with white and black), and samples of the colormap.

    One fixed palette keeps colours steady between frames; a per-frame adaptive one
    drops the few pixels of a thin blue axon line into grey.
    """
    from matplotlib import colormaps
    from matplotlib.colors import to_rgb

    def rgb(c) -> tuple[int, int, int]:
        return tuple(int(round(255 * v)) for v in c[:3])

    pal = [rgb((g, g, g)) for g in np.linspace(0.0, 1.0, 32)]
    for c in (*STATE_COLOURS.values(), *REGION_COLOURS.values()):
        base = np.array(to_rgb(c))
        pal += [rgb(base), rgb(0.6 * base + 0.4), rgb(0.6 * base)]
    cm = colormaps[scale.cmap]
    pal += [rgb(cm(v)) for v in np.linspace(0.0, 1.0, 256 - len(pal))]
    return pal


def _write_gif(frames: Sequence[np.ndarray], path: Path, durations: Sequence[float],
               scale: FieldScale) -> None:
    from PIL import Image

    pal = Image.new("P", (1, 1))
    pal.putpalette([v for c in _gif_palette(scale) for v in c])
    imgs = [Image.fromarray(f).quantize(palette=pal, dither=Image.Dither.NONE) for f in frames]
    tmp = path.with_name(f".{path.name}.tmp")
    imgs[0].save(tmp, format="GIF", save_all=True, append_images=imgs[1:],
                 duration=[int(d) for d in durations], loop=0, optimize=False)
    tmp.replace(path)


def ffmpeg_executable() -> str | None:
    """Path of an ffmpeg executable (PATH, then imageio-ffmpeg), or None."""
    exe = shutil.which("ffmpeg")
    if exe:
        return exe
    try:
        import imageio_ffmpeg

        return imageio_ffmpeg.get_ffmpeg_exe()
    except (ImportError, RuntimeError):
        return None


def _write_mp4(frames: Sequence[np.ndarray], path: Path, fps: float) -> Path | None:
    exe = ffmpeg_executable()
    if exe is None:
        log.info("figures: no ffmpeg found; %s not written (the GIF is)", path.name)
        return None
    h, w = frames[0].shape[:2]
    cmd = [exe, "-y", "-loglevel", "error", "-f", "rawvideo", "-pix_fmt", "rgb24",
           "-s", f"{w}x{h}", "-r", f"{fps:g}", "-i", "-",
           "-vf", "pad=ceil(iw/2)*2:ceil(ih/2)*2:color=white",  # H.264 needs even sizes
           "-pix_fmt", "yuv420p", "-c:v", "libx264", str(path)]
    res = subprocess.run(cmd, input=b"".join(np.ascontiguousarray(f).tobytes() for f in frames),
                         capture_output=True, check=False)
    if res.returncode != 0:
        log.warning("figures: ffmpeg failed, %s not written: %s", path.name,
                    res.stderr.decode(errors="replace").strip()[-300:])
        path.unlink(missing_ok=True)
        return None
    return path


__all__ = ["DECADES", "FIELD_CMAP", "STATE_COLOURS", "STATE_NAMES", "Axons",
           "FieldScale", "Slice2D", "ffmpeg_executable", "field_scale", "render_cross_sections",
           "render_cutaway", "render_growth", "slice_2d"]
