"""The 3D cut-away picture of a run (PyVista scene, matplotlib annotations).

:func:`render_cutaway` draws the cord around the lesion with its dorsal-right
quadrant removed, regions in their colours, a growth factor on the mid-sagittal
face and the axons as tubes coloured by outcome. Draws off-screen; call on one
rank only. The 2D pictures (cross-sections, animation) are in
:mod:`scaffoldfem.viz.slices`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from scaffoldfem.regions import CELL_TAGS, IMPLANT_REGIONS
from scaffoldfem.viz.axon_paths import STATE_NAMES, Axons
from scaffoldfem.viz.planar import border_edges, planar_triangles
from scaffoldfem.viz.render import REGION_COLOURS
from scaffoldfem.viz.style import (
    STATE_COLOURS,
    FieldScale,
    agg_pyplot,
    colourbar,
    offscreen_pyvista,
)

__all__ = ["render_cutaway"]


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
