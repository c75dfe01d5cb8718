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

from scaffoldfem.regions import CELL_TAGS, HOST_REGIONS
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


def _quadrant_cut(grid, xmax: float, ymax: float, zlo: float, zhi: float):
    """``grid`` without its dorsal-right quadrant (x > 0, y > 0)."""
    return grid.clip_box([0.0, xmax + 1, 0.0, ymax + 1, zlo - 1, zhi + 1], invert=True,
                         crinkle=False)


def render_cutaway(grid, axons: Axons | None, scale: FieldScale, png: Path, *,
                   lesion: tuple[float, float], t_day: float | None = None,
                   size: tuple[int, int] = (1600, 1000)) -> Path:
    """Draw the 3D cut-away picture of a run.

    Args:
        grid: Final fields (``fields/final.vtu``) with cell data ``region``.
        axons: Trajectories, or None when the run traced none.
        scale: Colour scale of the field drawn on the mid-sagittal face.
        png: Output picture.
        lesion: Rostral and caudal z of the lesion (mm); the camera centres on it.
        t_day: Time of the fields, for the title.
        size: Window size in pixels.

    Returns:
        ``png``.
    """
    pv = _pv()
    lo, hi = np.array(grid.bounds[0::2]), np.array(grid.bounds[1::2])
    radius = float(max(hi[0] - lo[0], hi[1] - lo[1])) / 2
    cut = _quadrant_cut(grid, hi[0], hi[1], lo[2], hi[2])
    pl = pv.Plotter(off_screen=True, window_size=list(size))
    pl.set_background("white")
    pl.enable_depth_peeling(number_of_peels=6)
    region = np.asarray(cut.cell_data["region"])
    # Host pale and see-through, so axons and implant show; implant solid-ish.
    opacity = {"white_matter": 0.16, "grey_matter": 0.28, "scar": 0.55, "scaffold": 0.35,
               "channel": 0.5, "cavity": 0.4}
    for name, tag in CELL_TAGS.items():
        sel = np.flatnonzero(region == tag)
        if sel.size == 0:
            continue
        surf = cut.extract_cells(sel).extract_surface()
        pl.add_mesh(surf, color=REGION_COLOURS[name], opacity=opacity.get(name, 0.5),
                    smooth_shading=False, specular=0.1, show_scalar_bar=False)
    # The field on the exposed half of the mid-sagittal plane (y > 0), nudged towards
    # the removed quadrant so it does not z-fight with the cut faces.
    face = grid.slice(normal=(1, 0, 0), origin=(0, 0, 0)).clip(normal=(0, -1, 0),
                                                               origin=(0, 0, 0))
    if face.n_points:
        face = face.translate((2e-3 * radius, 0, 0))
        face.point_data["c"] = scale.clip(face.point_data[scale.name])
        pl.add_mesh(face, scalars="c", cmap=scale.cmap, clim=(scale.vmin, scale.vmax),
                    log_scale=scale.log, lighting=False, show_scalar_bar=True,
                    scalar_bar_args=dict(title=scale.label, vertical=True, fmt="%.3g",
                                         position_x=0.88, position_y=0.3, height=0.45,
                                         width=0.04, title_font_size=22, label_font_size=18,
                                         color="black", n_labels=4))
        # Region borders on that face, thin and dark, so the field reads against anatomy.
        edges = face.extract_feature_edges(boundary_edges=True, feature_edges=False,
                                           non_manifold_edges=False, manifold_edges=False)
        if edges.n_points:
            pl.add_mesh(edges.translate((1e-3 * radius, 0, 0)), color="#404040", line_width=1)
    labels = []
    if axons is not None and axons.count:
        tube_r = 0.008 * radius * 2
        for k, name in enumerate(STATE_NAMES):
            sel = np.flatnonzero(axons.final_state == k)
            if sel.size == 0:
                continue
            lines = _polylines(pv, axons, sel)
            pl.add_mesh(lines.tube(radius=tube_r, n_sides=8), color=STATE_COLOURS[name],
                        smooth_shading=True, specular=0.3)
            labels.append((f"{name} ({sel.size})", STATE_COLOURS[name]))
    labels += [(n.replace("_", " "), REGION_COLOURS[n]) for n in ("scar", "scaffold", "channel")
               if np.any(region == CELL_TAGS[n])]
    if labels:
        pl.add_legend(labels, bcolor="white", border=True, size=(0.17, 0.04 * len(labels)),
                      loc="lower right", face="rectangle")
    _oblique_camera(pl, lesion, radius)
    title = f"{scale.name}, mid-sagittal face" + (f", day {t_day:g}" if t_day is not None else "")
    pl.add_text(title + "\ndorsal-right quadrant removed; axons coloured by final state",
                font_size=12, color="black", position="upper_left")
    pl.add_axes(xlabel="x lateral", ylabel="y dorsal", zlabel="z caudal", color="black")
    png.parent.mkdir(parents=True, exist_ok=True)
    pl.screenshot(str(png))
    pl.close()
    return png


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


def _oblique_camera(pl, lesion: tuple[float, float], radius: float) -> None:
    """Look into the removed quadrant from dorsal-right and a little rostral."""
    zc = 0.5 * (lesion[0] + lesion[1])
    span = max(lesion[1] - lesion[0], 2 * radius)
    focus = np.array([0.0, 0.0, zc])
    direction = np.array([1.0, 0.85, -0.75])
    direction /= np.linalg.norm(direction)
    pl.camera_position = [tuple(focus + 4.2 * span * direction), tuple(focus), (0, 1, 0)]
    pl.camera.view_angle = 30.0


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
    plane = plane.triangulate().clean()
    cols = (2, 1) if normal == "x" else (0, 1)
    uv = np.asarray(plane.points)[:, cols]
    tri = np.asarray(plane.faces).reshape(-1, 4)[:, 1:] if plane.n_cells else np.zeros((0, 3), int)
    values = (np.asarray(plane.point_data[field], dtype=float) if field in plane.point_data
              else np.zeros(len(uv)))
    region = (np.asarray(plane.cell_data["region"]) if "region" in plane.cell_data
              else np.zeros(len(tri), dtype=int))
    return Slice2D(uv, tri, values, _borders(uv, tri, region))


def _borders(uv: np.ndarray, tri: np.ndarray, region: np.ndarray) -> np.ndarray:
    """Edges between triangles of different regions, and edges on the outline."""
    if len(tri) == 0:
        return np.zeros((0, 2, 2))
    e = np.sort(np.vstack([tri[:, [0, 1]], tri[:, [1, 2]], tri[:, [2, 0]]]), axis=1)
    owner = np.tile(np.arange(len(tri)), 3)
    key = e[:, 0].astype(np.int64) * (len(uv) + 1) + e[:, 1]
    order = np.argsort(key, kind="stable")
    key, e, owner = key[order], e[order], owner[order]
    first = np.r_[True, key[1:] != key[:-1]]
    last = np.r_[key[1:] != key[:-1], True]
    single = first & last
    pair = np.flatnonzero(~last)  # i and i + 1 share an edge
    differ = pair[region[owner[pair]] != region[owner[pair + 1]]]
    keep = np.r_[np.flatnonzero(single), differ]
    return uv[e[keep]]


def _draw_slice(ax, sl: Slice2D, scale: FieldScale, border_colour: str = "#303030"):
    from matplotlib.collections import LineCollection

    if len(sl.tri) == 0:
        return None
    m = ax.tripcolor(sl.uv[:, 0], sl.uv[:, 1], sl.tri, scale.clip(sl.values), shading="gouraud",
                     cmap=scale.cmap, norm=scale.norm(), rasterized=True)
    ax.add_collection(LineCollection(sl.borders, colors=border_colour, linewidths=0.6))
    return m


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
    mappable, states = None, []
    for ax, (label, z) in zip(axes[0], planes, strict=True):
        # A plane exactly on a region interface cuts faces, not cells: nudge it inwards.
        zz = float(np.clip(z, lo[2] + 1e-6, hi[2] - 1e-6))
        sl = slice_2d(grid, scale.name, "z", (0, 0, zz))
        m = _draw_slice(ax, sl, scale)
        mappable = mappable or m
        n = 0
        if axons is not None and axons.count:
            xy, st, n = axons.crossings(z)
            for k in np.unique(st):
                sel = st == k
                ax.scatter(xy[sel, 0], xy[sel, 1], s=14, c=STATE_COLOURS[STATE_NAMES[k]],
                           edgecolors="white", linewidths=0.5, zorder=3)
            states.extend(st.tolist())
        ax.set_title(f"{label}, z = {z:+.2f} mm" + (f"\n{n} axons pass" if axons is not None
                                                     else ""), fontsize=11)
        ax.set_aspect("equal")
        ax.set_xlim(lo[0] - 0.05, hi[0] + 0.05)
        ax.set_ylim(lo[1] - 0.05, hi[1] + 0.05)
        ax.set_xlabel("x, lateral (mm)")
        ax.set_facecolor("white")
    axes[0][0].set_ylabel("y, dorsal (mm)")
    if mappable is not None:
        cb = fig.colorbar(mappable, ax=axes[0].tolist(), shrink=0.85, pad=0.01)
        cb.set_label(scale.label)
    if states:
        axes[0][-1].legend(handles=_state_legend_handles(states, marker=True), loc="upper right",
                           fontsize=8, title="axon final state", title_fontsize=8,
                           framealpha=0.85)
    when = f" at day {t_day:g}" if t_day is not None else ""
    fig.suptitle(f"Transverse sections{when}, seen from caudal: {scale.name} and the axons "
                 "passing each plane", fontsize=12)
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
    import imageio.v3 as iio

    plt = _plt()
    first = slices[0][1]
    b = first.bounds
    zl, zh, yl, yh = b[4], b[5], b[2], b[3]
    dpi = 100
    w_in = width_px / dpi
    # Height follows the cord's aspect, plus room for title, axis and colour bar.
    h_in = max(2.6, w_in * (yh - yl) / (zh - zl) * 0.92 + 1.6)
    frames = []
    for t, poly in slices:
        sl = slice_2d(poly, scale.name, "x")
        fig, ax = plt.subplots(figsize=(w_in, h_in), dpi=dpi, layout="constrained")
        m = _draw_slice(ax, sl, scale, border_colour="#505050")
        states = []
        if axons is not None and axons.count:
            paths, states = axons.grown_until(t)
            _draw_axon_paths(ax, paths, states)
        if lesion is not None:
            for z in lesion:
                ax.axvline(z, color="#303030", ls=(0, (4, 3)), lw=0.8)
        ax.set_xlim(zl, zh)
        ax.set_ylim(yl - 0.05, yh + 0.05)
        ax.set_aspect("equal")
        ax.set_xlabel("z, rostral → caudal (mm)")
        ax.set_ylabel("y, dorsal (mm)")
        n_cross = int(np.sum(np.asarray(states) == STATE_NAMES.index("crossed")))
        ax.set_title(f"Day {t:5.1f}   {scale.name} on the mid-sagittal plane"
                     + (f"   axons: {len(states)} growing or done, {n_cross} crossed"
                        if axons is not None else ""), fontsize=11, loc="left")
        if m is not None:
            cb = fig.colorbar(m, ax=ax, orientation="vertical", fraction=0.03, pad=0.01)
            cb.set_label(scale.label)
        if axons is not None and axons.count:
            ax.legend(handles=_state_legend_handles(range(len(STATE_NAMES)), marker=False),
                      loc="lower left", ncols=4, fontsize=8, framealpha=0.85)
        fig.canvas.draw()
        frames.append(np.asarray(fig.canvas.buffer_rgba())[..., :3].copy())
        plt.close(fig)
    gif.parent.mkdir(parents=True, exist_ok=True)
    durations = [1000.0 / fps] * len(frames)
    durations[-1] = 2500.0  # hold the last frame
    iio.imwrite(gif, np.stack(frames), extension=".gif", duration=durations, loop=0)
    out = [gif]
    if mp4:
        video = _write_mp4(frames, gif.with_suffix(".mp4"), fps)
        if video is not None:
            out.append(video)
    return out


def _draw_axon_paths(ax, paths: Sequence[np.ndarray], states: np.ndarray) -> None:
    """Axons projected on the sagittal plane (z, y), drawn in state colours with a halo."""
    from matplotlib import patheffects
    from matplotlib.collections import LineCollection

    for k, name in enumerate(STATE_NAMES):
        segs = [p[:, (2, 1)] for p, s in zip(paths, states, strict=True) if s == k]
        if segs:
            lc = LineCollection(segs, colors=STATE_COLOURS[name], linewidths=0.9, alpha=0.9,
                                zorder=3 + (k == STATE_NAMES.index("crossed")))
            lc.set_path_effects([patheffects.Stroke(linewidth=1.8, foreground="white", alpha=0.6),
                                 patheffects.Normal()])
            ax.add_collection(lc)


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


__all__ = ["DECADES", "FIELD_CMAP", "HOST_REGIONS", "STATE_COLOURS", "STATE_NAMES", "Axons",
           "FieldScale", "Slice2D", "ffmpeg_executable", "field_scale", "render_cross_sections",
           "render_cutaway", "render_growth", "slice_2d"]
