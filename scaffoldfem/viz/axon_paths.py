"""Axon trajectories read back from a run's ``axons.vtp`` (no DOLFINx here)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from scaffoldfem.viz.style import offscreen_pyvista

__all__ = ["CROSSED", "GROWING", "STATE_NAMES", "Axons"]

#: Final states of an axon, by the integer stored in ``axons.vtp`` (the same
#: tuple as ``scaffoldfem.axons.tracer.STATE_NAMES``; a test keeps them equal, but this
#: module must not import the tracer, which needs DOLFINx).
STATE_NAMES = ("growing", "crossed", "stalled", "exited")
GROWING, CROSSED = STATE_NAMES.index("growing"), STATE_NAMES.index("crossed")


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
