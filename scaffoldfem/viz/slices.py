"""2D pictures of a run: slices cut by PyVista and drawn by matplotlib (mm axes).

* :func:`render_cross_sections` - transverse slices at the lesion faces and centre:
  concentration, region borders and the points where axons pierce each plane.
* :func:`render_growth` - the sagittal slices over time with the axons grown up to
  each frame (GIF; MP4 too when an ffmpeg executable exists).

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

from scaffoldfem.viz.axon_paths import STATE_NAMES, Axons
from scaffoldfem.viz.planar import border_edges, planar_triangles
from scaffoldfem.viz.style import (
    STATE_COLOURS,
    FieldScale,
    agg_pyplot,
    colourbar,
    offscreen_pyvista,
)

log = logging.getLogger(__name__)


@dataclass
class Slice2D:
    """A planar slice as triangles in 2D coordinates.

    Attributes:
        uv: (n, 2) point coordinates in the plane (mm).
        tri: (m, 3) triangles.
        values: (n,) field values at the points.
        borders: (k, 2, 2) segments of region borders and of the outline.
        border_values: (k,) field value at the middle of each border segment.
    """

    uv: np.ndarray
    tri: np.ndarray
    values: np.ndarray
    borders: np.ndarray
    border_values: np.ndarray


def slice_2d(mesh, field: str, normal: str, origin: Sequence[float] = (0, 0, 0)) -> Slice2D:
    """Cut ``mesh`` (a volume grid, or an already planar PolyData) by a plane.

    Args:
        mesh: PyVista dataset with point array ``field`` and cell array ``region``.
        field: Point array to keep.
        normal: ``"x"`` (sagittal: u = z, v = y) or ``"z"`` (transverse: u = x, v = y).
        origin: A point of the plane (ignored for PolyData input).
    """
    pv = offscreen_pyvista()
    plane = mesh if isinstance(mesh, pv.PolyData) else mesh.slice(normal=normal, origin=origin)
    t, tri, region = planar_triangles(plane)
    uv = np.asarray(t.points)[:, (2, 1) if normal == "x" else (0, 1)]
    values = (np.asarray(t.point_data[field], dtype=float) if field in t.point_data
              else np.zeros(len(uv)))
    edges = (border_edges(tri, region, len(uv)) if len(tri)
             else np.zeros((0, 2), dtype=np.int64))
    return Slice2D(uv, tri, values, uv[edges], values[edges].mean(axis=1))


def _draw_slice(ax, sl: Slice2D, scale: FieldScale):
    """The field on a slice with its region borders: dark lines over the light end of
    the colormap, light over the dark end (a ramp between), so they read everywhere."""
    from matplotlib.collections import LineCollection

    if len(sl.tri) == 0:
        return None
    m = ax.tripcolor(sl.uv[:, 0], sl.uv[:, 1], sl.tri, scale.clip(sl.values), shading="gouraud",
                     cmap=scale.cmap, norm=scale.norm(), rasterized=True)
    if len(sl.borders):
        # A grey ramp, not a switch: a line that flips from dark to light at one value
        # makes the eye see a false step in the field there.
        shade = np.asarray(scale.norm()(scale.clip(sl.border_values)), dtype=float)
        grey = 0.15 + 0.8 * np.clip((shade - 0.45) / 0.35, 0.0, 1.0)
        colours = np.column_stack([grey, grey, grey, np.ones_like(grey)])
        ax.add_collection(LineCollection(sl.borders, colors=colours, linewidths=0.7, zorder=2))
    return m


def _state_legend_handles(states: Sequence[int], marker: bool):
    """Legend entries of the axon states in ``states`` (dots or lines)."""
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
    plt = agg_pyplot()
    fig, axes = plt.subplots(1, len(planes), figsize=size, squeeze=False, layout="constrained")
    lo, hi = np.array(grid.bounds[0::2]), np.array(grid.bounds[1::2])
    zs = [z for _, z in planes]
    # Cut a hair off each plane, towards the middle of the planes (the lesion): a lesion
    # face is a mesh interface, and a plane through mesh facets cuts them degenerately.
    mid = 0.5 * (min(zs) + max(zs))
    hair = 1e-3 * max(max(zs) - min(zs), hi[0] - lo[0])
    mappable, states = None, []
    for ax, (label, z) in zip(axes[0], planes, strict=True):
        inward = float(np.sign(mid - z)) or 0.37  # the middle plane: any small offset
        zz = float(np.clip(z + inward * hair, lo[2] + hair, hi[2] - hair))
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
        # The range on the section, in words: a near-uniform field reads as one colour.
        rng = (f"{scale.name} {sl.values.min():.3g}–{sl.values.max():.3g} ng/mL"
               if len(sl.values) else "")
        ax.set_title(f"{label}, z = {z:+.2f} mm\n{rng}" + (f", {n} axons pass"
                                                             if axons is not None else ""),
                     fontsize=10)
        ax.set_aspect("equal")
        ax.set_xlim(lo[0] - 0.05, hi[0] + 0.05)
        ax.set_ylim(lo[1] - 0.05, hi[1] + 0.05)
        ax.set_xlabel("x, lateral (mm)")
    axes[0][0].set_ylabel("y, dorsal (mm)")
    if mappable is not None:
        colourbar(fig, mappable, scale, ax=axes[0].tolist(), shrink=0.8, pad=0.01)
    if states:
        fig.legend(handles=_state_legend_handles(states, marker=True), loc="outside lower center",
                   ncols=len(set(states)), fontsize=9, frameon=False,
                   title="points where axons pierce the plane, by outcome",
                   title_fontsize=9)
    when = f" at day {t_day:g}" if t_day is not None else ""
    fig.suptitle(f"{scale.name}{when} on transverse sections, seen from caudal "
                 "(dorsal up, right to the right)", fontsize=12)
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
    plt = agg_pyplot()
    bnd = slices[0][1].bounds
    zl, zh, yl, yh = bnd[4], bnd[5], bnd[2] - 0.05, bnd[3] + 0.05
    # Fixed layout on a 10-inch-wide page (pixels set the dpi), the plot box at the
    # cord's aspect (no letterboxing).
    w = 10.0
    dpi = width_px / w
    left, right, top, below, foot = 0.75, 0.25, 0.42, 0.45, 0.62
    plot_w = w - left - right
    plot_h = plot_w * (yh - yl) / (zh - zl)
    h = top + plot_h + below + foot
    # One figure for every frame: only the slice, the axons and two texts change. A
    # new figure per frame spent most of the animation building axes and ticks again;
    # the pixels are the same (same artists, order and limits).
    fig = plt.figure(figsize=(w, h), dpi=dpi, facecolor="white")
    ax = fig.add_axes((left / w, (below + foot) / h, plot_w / w, plot_h / h))
    if lesion is not None:
        for z in lesion:
            ax.axvline(z, color="#1a1a1a", ls=(0, (4, 3)), lw=0.8, zorder=4)
    ax.set_xlabel("z, rostral → caudal (mm)", labelpad=2)
    ax.set_ylabel("y, dorsal (mm)")
    title = fig.text(left / w, 1 - 0.12 / h, "", fontsize=12, va="top")
    counts_text = (fig.text(1 - right / w, 1 - 0.14 / h, "", fontsize=9, va="top", ha="right",
                            color="#333333") if axons is not None else None)
    cax = None
    legend_due = axons is not None and axons.count
    frames = []
    for t, poly in slices:
        sl = slice_2d(poly, scale.name, "x")
        before = list(ax.collections)
        m = _draw_slice(ax, sl, scale)
        states = np.zeros(0, dtype=np.int64)
        if axons is not None and axons.count:
            paths, states = axons.grown_until(t)
            _draw_axon_paths(ax, paths, states)
        ax.set_xlim(zl, zh)
        ax.set_ylim(yl, yh)
        title.set_text(f"Day {t:.1f}: {scale.name} on the mid-sagittal plane")
        if counts_text is not None:
            counts = ", ".join(f"{int(np.sum(states == k))} {name}"
                               for k, name in enumerate(STATE_NAMES))
            counts_text.set_text(f"axons ({axons.count} seeded): {counts}")
        if m is not None and cax is None:
            cax = fig.add_axes((left / w, 0.25 / h, 0.35 * plot_w / w, 0.13 / h))
            colourbar(fig, m, scale, cax=cax, orientation="horizontal")
        if cax is not None:
            cax.set_visible(m is not None)
        if legend_due:
            fig.legend(handles=_state_legend_handles(range(len(STATE_NAMES)), marker=False),
                       loc="center right", bbox_to_anchor=(1 - right / w, 0.33 / h), ncols=4,
                       fontsize=9, frameon=False,
                       title="axons projected on the plane, by outcome so far",
                       title_fontsize=9)
            legend_due = False
        fig.canvas.draw()
        frames.append(np.asarray(fig.canvas.buffer_rgba())[..., :3].copy())
        for c in [c for c in ax.collections if c not in before]:  # this frame's slice, axons
            c.remove()
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
    """256 colours for every frame: greys for text and borders, the axon colours (and
    a darker shade of each), and dense samples of the colormap.

    One fixed palette keeps colours steady between frames; a per-frame adaptive one
    drops the few pixels of a thin blue axon line into grey. No other colours: one
    near the colormap would capture a band of the field and show as a false edge.
    """
    from matplotlib import colormaps
    from matplotlib.colors import to_rgb

    def rgb(c) -> tuple[int, int, int]:
        return tuple(round(255 * float(v)) for v in c[:3])

    pal = [rgb((g, g, g)) for g in np.linspace(0.0, 1.0, 24)]
    for c in STATE_COLOURS.values():
        base = np.array(to_rgb(c))
        pal += [rgb(base), rgb(0.7 * base)]
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
    tmp = path.with_name(f".{path.name}.tmp")
    cmd = [exe, "-y", "-loglevel", "error", "-f", "rawvideo", "-pix_fmt", "rgb24",
           "-s", f"{w}x{h}", "-r", f"{fps:g}", "-i", "-",
           "-vf", "pad=ceil(iw/2)*2:ceil(ih/2)*2:color=white",  # H.264 needs even sizes
           "-pix_fmt", "yuv420p", "-c:v", "libx264", "-f", "mp4", str(tmp)]
    res = subprocess.run(cmd, input=b"".join(np.ascontiguousarray(f).tobytes() for f in frames),
                         capture_output=True, check=False)
    if res.returncode != 0:
        log.warning("figures: ffmpeg failed, %s not written: %s", path.name,
                    res.stderr.decode(errors="replace").strip()[-300:])
        tmp.unlink(missing_ok=True)
        return None
    tmp.replace(path)
    return path


__all__ = ["Slice2D", "ffmpeg_executable", "render_cross_sections", "render_growth", "slice_2d"]
