"""Where and when growth cones start (mixin of :class:`~scaffoldfem.axons.tracer.Tracer`).

Default seeding matches the injury: ``count`` descending cones on the plane
``seed_offset`` rostral of the lesion in ``seeding_regions`` (and, with
``sensory``, ascending cones caudal of it), uniform over that cross-section by
rejection from the counter-based random numbers; each cone starts to grow at
``t0 + dieback_delay + seeding_window (j + u_j)/n`` (stratified over the window,
``u_j`` per axon). Until then it waits at its start point (state growing, length
0). Positions and start times depend only on the seed, never on the rank count.
"""

from __future__ import annotations

import numpy as np
from mpi4py import MPI

from scaffoldfem.axons import guidance as am
from scaffoldfem.axons import records as st
from scaffoldfem.regions import cell_tag


class Seeding:
    """Seeding of growth cones (mixin of the tracer)."""

    def seed(self, t0: float = 0.0, points: np.ndarray | None = None,
             directions: np.ndarray | None = None, start: np.ndarray | float | None = None
             ) -> int:
        """Collective: create growth cones; returns the number seeded globally.

        Args:
            t0: Time of seeding (day; the injury when called by the run).
            points: Explicit start points (n, 3), the same on every rank; by
                default the injury's populations (module docstring).
            directions: Start headings (n, 3) for explicit points (default +z).
            start: Start time(s) of growth for explicit points (default ``t0``).
        """
        if self.time is None:
            self.time = float(t0)
        if points is not None:
            pts = np.asarray(points, dtype=np.float64).reshape(-1, 3)
            dirs = (np.tile([0.0, 0.0, 1.0], (len(pts), 1)) if directions is None
                    else am.unit(np.asarray(directions, dtype=np.float64).reshape(-1, 3)))
            ts = np.broadcast_to(np.asarray(t0 if start is None else start, dtype=np.float64),
                                 (len(pts),))
            return self._add(pts, dirs, ts)
        n = 0
        p = self.p
        if p.count:
            z = self.lesion_z[0] - p.seed_offset
            pts = self._sample_plane(z, p.count, stream=0)
            n += self._add(pts, np.tile([0.0, 0.0, 1.0], (len(pts), 1)),
                           self._start_times(t0, len(pts)))
        if p.sensory:
            m = p.count if p.sensory_count is None else p.sensory_count
            if m:
                z = self.lesion_z[1] + p.seed_offset
                pts = self._sample_plane(z, m, stream=1)
                n += self._add(pts, np.tile([0.0, 0.0, -1.0], (len(pts), 1)),
                               self._start_times(t0, len(pts)))
        return n

    def _start_times(self, t0: float, n: int) -> np.ndarray:
        """Start times of the next ``n`` axons (ids from ``next_id``), stratified."""
        p = self.p
        ids = np.arange(n, dtype=np.int64) + self.next_id
        u = am.uniforms(p.seed, ids, 0, 1, am.STREAM_START)[:, 0]
        return t0 + p.dieback_delay + p.seeding_window * (np.arange(n) + u) / max(n, 1)

    def _sample_plane(self, z: float, n: int, stream: int) -> np.ndarray:
        """``n`` points uniform over the seeding regions' section at ``z`` (rejection)."""
        want = [cell_tag(r) for r in self.p.seeding_regions]
        got: list[np.ndarray] = []
        total, batch = 0, max(4 * n, 64)
        for b in range(200):
            ids = np.arange(b * batch, (b + 1) * batch)
            u = am.uniforms(self.p.seed, ids, -1 - stream, 2, am.STREAM_SEED)
            pts = np.column_stack([self.xy_min + u * (self.xy_max - self.xy_min),
                                   np.full(batch, z)])
            _owner, cell = self.loc.locate_global(pts, blocked=self.blocked)
            ok_l = np.zeros(batch, dtype=np.int32)
            mine = cell >= 0
            ok_l[mine] = (np.isin(self.region[cell[mine]], want)
                          & ~self.blocked[cell[mine]]).astype(np.int32)
            ok = np.empty_like(ok_l)
            self.comm.Allreduce(ok_l, ok, op=MPI.MAX)
            acc = pts[ok == 1]
            got.append(acc[: n - total])
            total += min(len(acc), n - total)
            if total >= n:
                return np.concatenate(got)
            if total == 0 and b >= 3:
                break
        raise ValueError(f"no cells of {self.p.seeding_regions} found on the plane z = {z:g} mm "
                         "to seed growth cones in (is axons.seed_offset inside the scar rim?)")

    def _add(self, pts: np.ndarray, dirs: np.ndarray, t_start: np.ndarray) -> int:
        owner, cell = self.loc.locate_global(pts, blocked=self.blocked)
        if np.any(owner < 0):
            raise ValueError(f"{int(np.sum(owner < 0))} seed point(s) lie outside the mesh")
        ids = np.arange(len(pts), dtype=np.int64) + self.next_id
        self.next_id += len(pts)
        mine = owner == self.comm.rank
        m = int(mine.sum())
        c = {k: np.zeros((m, *v.shape[1:]), dtype=v.dtype) for k, v in st.empty_cones().items()}
        for k, (w, t) in self.extra_columns.items():
            c[k] = np.zeros((m, w) if w > 1 else m, dtype=t)
        if "adapt" in c:
            c["adapt"][:] = -1.0  # adapted to the local level at the first step
        c["id"], c["cell"] = ids[mine], cell[mine]
        c["gcell"] = self.loc.global_cell[cell[mine]]
        c["k"][:] = 0
        for k in ("x", "x0", "anchor", "xold", "target"):
            c[k] = pts[mine].copy()
        c["d"] = dirs[mine].copy()
        c["sense"] = np.where(dirs[mine, 2] < 0, -1.0, 1.0)
        ts = np.asarray(t_start, dtype=np.float64)[mine]
        for k in ("anchor_t", "t", "t_seed"):
            c[k][:] = ts
        c["t_cross"][:] = np.nan
        c["hfacet"][:] = -1
        c["hrank"][:] = -1
        self.c = st.concat(self.c, c)
        return len(pts)
