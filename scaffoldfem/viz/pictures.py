"""Pictures of a run drawn from the files it left behind (no DOLFINx here): shared
pieces (axon states and colours, the colour scale of a field, the axons read from
``axons.vtp``) and the 3D cut-away.

* :func:`render_cutaway` - PyVista 3D: the cord around the lesion with its
  dorsal-right quadrant removed, regions in their colours, a growth factor on the
  mid-sagittal face and the axons as tubes coloured by outcome.

The 2D pictures (cross-sections, animation) are in :mod:`scaffoldfem.viz.slices`.
Every function draws off-screen; call them on one rank only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from scaffoldfem.regions import CELL_TAGS, IMPLANT_REGIONS
from scaffoldfem.viz.render import REGION_COLOURS

#: Final states of an axon, by the integer stored in ``axons.vtp`` (the same
#: tuple as ``scaffoldfem.axons.tracer.STATE_NAMES``; a test keeps them equal, but this
#: module must not import the tracer, which needs DOLFINx).
STATE_NAMES = ("growing", "crossed", "stalled", "exited")
GROWING, CROSSED = STATE_NAMES.index("growing"), STATE_NAMES.index("crossed")
#: Axon colours: the conventional good/bad green/red, growing blue, exited grey.
STATE_COLOURS = {"crossed": "#1a9e3a", "stalled": "#d62728", "growing": "#1f5fd1",
                 "exited": "#7f7f7f"}
#: Colormap of growth-factor concentrations: light yellow to dark red-brown, so it
#: never shares a hue with the green/blue/grey axon states or the blue implant.
FIELD_CMAP = "YlOrBr"
#: Decades of concentration shown below the maximum (log scale): a factor 10^3
#: spans the 1-100 ng/mL therapeutic window with room either side.
DECADES = 3.0


def offscreen_pyvista():
    """PyVista, set to draw off-screen (no display needed)."""
    import pyvista as pv

    pv.OFF_SCREEN = True
    return pv


def agg_pyplot():
    """matplotlib.pyplot on the Agg backend (no display needed)."""
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

    Pictures colour an axon by its *outcome*: crossed if it ever crossed the lesion
    (cell data ``crossed``; it may have stalled or exited afterwards), else its
    final state.

    Attributes:
        points: (n, 3) trajectory points, axon after axon, in growth order.
        t: (n,) time of each point (day).
        offsets: (m + 1,) axon j is ``points[offsets[j]:offsets[j + 1]]``.
        final_state: (m,) index into :data:`STATE_NAMES` (cell data ``final_state``).
        outcome: (m,) index into :data:`STATE_NAMES`: crossed, else the final state.
        state: (n,) outcome so far when the axon reached each point: growing, then
            crossed from the first point ``cross_depth`` beyond the far lesion face,
            and the outcome at the last point.
    """

    points: np.ndarray
    t: np.ndarray
    offsets: np.ndarray
    final_state: np.ndarray
    outcome: np.ndarray
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

        Args:
            path: The file.
            lesion: Rostral and caudal z of the lesion (mm), to time the crossings.
            cross_depth: Depth beyond the far face that counts as crossed (mm).
        """
        pv = offscreen_pyvista()
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
        # Lines come after any vertex cells in VTK's cell order.
        final = _state_codes(poly.cell_data["final_state"])[-m:] if m else np.zeros(0, np.int64)
        crossed = (np.asarray(poly.cell_data["crossed"])[-m:] > 0 if "crossed" in poly.cell_data
                   else final == CROSSED)
        outcome = np.where(crossed, CROSSED, final)
        state = _states_along(pts, offsets, outcome, lesion, cross_depth)
        return cls(pts, t, offsets, final, outcome, state)

    def grown_until(self, time: float) -> tuple[list[np.ndarray], np.ndarray]:
        """Polylines of the axons grown by ``time`` and each one's outcome so far.

        Returns:
            (paths, states): the points with ``t <= time`` of every axon that has at
            least two, and :attr:`state` at its last such point.
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
            (xy, outcome, n_axons): the (k, 2) piercing points, the outcome of the
            axon of each point, and the number of distinct axons piercing the plane.
        """
        p = self.points
        d = p[:, 2] - z
        # Segments inside one axon whose ends lie on opposite sides (or end on it).
        a = np.arange(max(len(p) - 1, 0))
        same = np.ones(len(a), dtype=bool)
        same[self.offsets[1:-1] - 1] = False
        hit = same & (d[a] * d[a + 1] <= 0) & (d[a] != d[a + 1])
        a = a[hit]
        w = (d[a] / (d[a] - d[a + 1]))[:, None]
        xy = (p[a] + w * (p[a + 1] - p[a]))[:, :2]
        axon = np.searchsorted(self.offsets, a, side="right") - 1
        return xy, self.outcome[axon], len(np.unique(axon))


def _state_codes(values) -> np.ndarray:
    """States as indices into :data:`STATE_NAMES`, from integers or from names."""
    a = np.asarray(values)
    if a.dtype.kind in "USO":
        return np.array([STATE_NAMES.index(str(v)) for v in a], dtype=np.int64)
    return a.astype(np.int64)


def _states_along(pts: np.ndarray, offsets: np.ndarray, outcome: np.ndarray,
                  lesion: tuple[float, float] | None, cross_depth: float | None) -> np.ndarray:
    """Outcome so far at every point (see :attr:`Axons.state`).

    The crossing test is the tracer's: a descending axon (seeded rostral of the
    lesion centre) has crossed once z >= caudal face + cross_depth, an ascending one
    once z <= rostral face - cross_depth.
    """
    state = np.full(len(pts), GROWING, dtype=np.int64)
    for j in range(len(offsets) - 1):
        s, e = int(offsets[j]), int(offsets[j + 1])
        if e == s:
            continue
        state[e - 1] = outcome[j]
        if outcome[j] == CROSSED and lesion is not None and cross_depth is not None:
            z = pts[s:e, 2]
            descending = z[0] < 0.5 * (lesion[0] + lesion[1])
            beyond = z >= lesion[1] + cross_depth if descending else z <= lesion[0] - cross_depth
            if beyond.any():
                state[s + int(np.argmax(beyond)):e] = CROSSED
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
    borders as thin lines; every axon as a tube coloured by its outcome. PyVista
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

    plt = agg_pyplot()
    dpi = size[0] / 16.0  # a 16-inch-wide page: the text keeps its size relative to it
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
    drawn = axons is not None and axons.count > 0
    fig.text(0.01, 0.935, "dorsal-right quadrant removed; field on the mid-sagittal face, "
             "regions on the horizontal face" + ("; axons by outcome (crossed, else final state)"
                                                 if drawn else ""),
             fontsize=10, color="#444444", va="top")
    cax = fig.add_axes((scene_frac + 0.03, 0.5, 0.022, 0.36))
    colourbar(fig, ScalarMappable(norm=scale.norm(), cmap=scale.cmap), scale, cax=cax)
    handles = []
    if drawn:
        for k, name in enumerate(STATE_NAMES):
            n = int(np.sum(axons.outcome == k))
            if n:
                handles.append(Line2D([], [], color=STATE_COLOURS[name], lw=4,
                                      label=f"{name} ({n})"))
    region = np.asarray(grid.cell_data["region"])
    for n in ("grey_matter", "scar", *IMPLANT_REGIONS, "cavity"):
        if np.any(region == CELL_TAGS[n]):
            handles.append(Patch(facecolor=REGION_COLOURS[n], edgecolor="#555555",
                                 label=n.replace("_", " ")))
    fig.legend(handles=handles, loc="upper left", bbox_to_anchor=(scene_frac + 0.005, 0.45),
               fontsize=10, frameon=False, title="axons / regions" if drawn else "regions",
               title_fontsize=10, alignment="left")
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=dpi, facecolor="white")
    plt.close(fig)
    return png


def _cutaway_scene(grid, axons: Axons | None, scale: FieldScale, lesion: tuple[float, float],
                   size: tuple[int, int]) -> np.ndarray:
    """Render the 3D cut-away (no annotations) and return the RGB image."""
    pv = offscreen_pyvista()
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
        # Thinner tubes for crowds, so hundreds of axons stay apart.
        tube = radius * (0.012 if axons.count <= 150 else 0.008)
        for k, name in enumerate(STATE_NAMES):
            sel = np.flatnonzero(axons.outcome == k)
            if sel.size:
                lines = _polylines(pv, axons, sel)
                pl.add_mesh(lines.tube(radius=tube, n_sides=10),
                            color=STATE_COLOURS[name], smooth_shading=True, specular=0.4)
    ends = pv.PolyData(np.array([[0.0, 1.2 * radius, z0], [0.0, 1.2 * radius, z1]]))
    pl.add_point_labels(ends, ["rostral", "caudal"], font_size=max(8, round(size[0] / 70)),
                        text_color="#333333", shape=None, show_points=False,
                        always_visible=True)
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
    t, tri, region = planar_triangles(face)
    pts = np.asarray(t.points)
    segs = border_edges(tri, region, len(pts))
    if len(segs) == 0:
        return pv.PolyData()
    return pv.PolyData(pts, lines=np.column_stack([np.full(len(segs), 2), segs]).ravel())


def planar_triangles(plane):
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


def border_edges(tri: np.ndarray, region: np.ndarray, npts: int) -> np.ndarray:
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


def plain_log_ticks(axis) -> None:
    """Label a log axis 0.1, 1, 10 rather than 10^-1, 10^0, 10^1."""
    from matplotlib.ticker import FuncFormatter

    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))


def colourbar(fig, mappable, scale: FieldScale, **kw):
    """A matplotlib colour bar titled with the field and unit, plain log tick labels."""
    cb = fig.colorbar(mappable, **kw)
    cb.set_label(scale.label)
    if scale.log:
        plain_log_ticks(cb.ax.yaxis if cb.orientation == "vertical" else cb.ax.xaxis)
    return cb


__all__ = [
    "DECADES",
    "FIELD_CMAP",
    "STATE_COLOURS",
    "STATE_NAMES",
    "Axons",
    "FieldScale",
    "agg_pyplot",
    "border_edges",
    "colourbar",
    "field_scale",
    "offscreen_pyvista",
    "plain_log_ticks",
    "planar_triangles",
    "render_cutaway",
]
