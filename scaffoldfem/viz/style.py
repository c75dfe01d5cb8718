"""How the pictures look: axon-state colours, the colour scale of a field, colour
bars, and the off-screen PyVista and matplotlib backends (no DOLFINx here)."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["DECADES", "FIELD_CMAP", "STATE_COLOURS", "FieldScale", "agg_pyplot", "colourbar",
           "field_scale", "offscreen_pyvista", "plain_log_ticks"]

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
    if sys.platform.startswith("linux") and not (
            os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        # Headless: VTK would try X first and print "bad X server connection" into
        # every run's log before falling back to EGL; ask for EGL (read when a
        # render window is made, so setting it after the import is enough).
        os.environ.setdefault("VTK_DEFAULT_OPENGL_WINDOW", "vtkEGLRenderWindow")
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
