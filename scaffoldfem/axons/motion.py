"""Moving growth cones through the mesh: walks, slides, book-keeping, migration.

:class:`Motion` is the part of :class:`~scaffoldfem.axons.tracer.Tracer` that
takes cones whose step target is set (``transit = 1``) to it:

* *walk* from the cone's cell to the target (:class:`~scaffoldfem.fem.locate.Locator`),
  sliding along the domain boundary (``pia``) and along barrier regions (the
  target is projected onto the face the walk reached, up to ``MAX_SLIDES`` times;
  then the cone stays where it was);
* *finish*: path length, heading after a slide, crossing, exit, stall, records;
* *exchange* (the one collective of a round): cones whose walk left the rank go,
  with the unfinished walk, to the rank that continues it; settled cones in a
  ghost cell go to its owner. The cone table travels as float64 rows: the
  columns of :mod:`scaffoldfem.axons.records` plus the tracer's extra columns
  (:attr:`Tracer.extra_columns`).
"""

from __future__ import annotations

import numpy as np
from mpi4py import MPI

from scaffoldfem.axons import guidance as am
from scaffoldfem.axons import records as st
from scaffoldfem.axons.records import CROSSED, EXITED, GROWING, STALLED
from scaffoldfem.fem.locate import BLOCKED, EXTERIOR, FOUND, LEFT, LOST

#: Projections of a step target onto boundary faces before the cone gives up the step.
MAX_SLIDES = 3


def pack_rows(c: dict[str, np.ndarray], extra: dict[str, tuple[int, type]]) -> np.ndarray:
    """Cone table as float64 rows: the record columns, then the extra columns."""
    n = len(c["id"])
    cols = [st.pack(c)] + [c[k].reshape(n, w).astype(np.float64) for k, (w, _) in extra.items()]
    return np.hstack(cols)


def unpack_rows(rows: np.ndarray, extra: dict[str, tuple[int, type]]) -> dict[str, np.ndarray]:
    """Inverse of :func:`pack_rows` (``cell`` set to -1)."""
    nb = st.ncols()
    c = st.unpack(rows[:, :nb])
    j = nb
    for k, (w, t) in extra.items():
        v = rows[:, j:j + w]
        c[k] = (v if w > 1 else v[:, 0]).astype(t)
        j += w
    return c


class Motion:
    """Walk, slide, finish and migrate growth cones (mixin of the tracer)."""

    def _move(self, i: np.ndarray) -> None:
        """Walk cones ``i`` (in transit) to their targets, sliding at boundaries."""
        c, loc = self.c, self.loc
        act = np.asarray(i)
        for _ in range(2 * MAX_SLIDES + 4):
            if act.size == 0:
                return
            r = loc.walk(c["target"][act], c["cell"][act], self.blocked)
            status, rcell, rface = r.status, r.cell, r.face
            c["cell"][act] = rcell
            c["gcell"][act] = loc.global_cell[rcell]
            lost = status == LOST
            if lost.any():  # walk did not converge: tree over local cells
                j = act[lost]
                cells, score = loc.locate_tree(c["target"][j], blocked=self.blocked)
                hit = score >= -loc.eps
                c["cell"][j[hit]] = cells[hit]
                c["gcell"][j[hit]] = loc.global_cell[cells[hit]]
                status[np.flatnonzero(lost)[hit]] = FOUND
                status[np.flatnonzero(lost)[~hit]] = EXTERIOR
                rface[np.flatnonzero(lost)[~hit]] = -1
            self._finish(act[status == FOUND])
            left = status == LEFT  # stays in transit; continued on another rank
            if left.any():
                jl, cl, fl = act[left], rcell[left], rface[left]
                ghost = cl >= loc.num_owned
                c["hrank"][jl] = np.where(ghost, loc.owner[cl], loc.remote_rank[cl, fl])
                c["hfacet"][jl] = np.where(ghost, -1, loc.remote_facet[cl, fl])
            hit = (status == EXTERIOR) | (status == BLOCKED)
            j, faces = act[hit], rface[hit]
            if j.size:
                slide = (c["slides"][j] > 0) & (faces >= 0)
                js, fs = j[slide], faces[slide]
                if js.size:  # slide: project the target onto the plane of that face
                    cj = c["cell"][js]
                    nrm = loc.face_normal(cj, fs)
                    xf = loc.x[loc.nodes[cj, (fs.astype(np.int64) + 1) % 4]]
                    tg = c["target"][js]
                    dn = am.dot3(tg - xf, nrm)
                    c["target"][js] = tg - np.maximum(dn, 0.0)[:, None] * nrm
                    c["slides"][js] -= 1
                jb = j[~slide]
                back = c["back"][jb] == 0
                # Out of slides: walk back to where the step started (no move).
                c["target"][jb[back]] = c["xold"][jb[back]]
                c["back"][jb[back]] = 1
                stuck = jb[~back]
                if stuck.size:  # last resort: stay, pulled into the last cell visited
                    c["target"][stuck] = self._into_cell(c["cell"][stuck], c["xold"][stuck])
                    self._finish(stuck)
            act = j[(c["transit"][j] == 1)]
        if act.size:  # pragma: no cover - bounded by the slide logic above
            c["target"][act] = self._into_cell(c["cell"][act], c["xold"][act])
            self._finish(act)

    def _into_cell(self, cells: np.ndarray, x: np.ndarray) -> np.ndarray:
        """``x`` moved into ``cells`` (negative barycentrics clipped): a round-off move
        for a cone on a face or an edge, never a jump across the cell."""
        lam = np.maximum(self.loc.barycentric(cells, x), 0.0)
        lam /= lam.sum(axis=1)[:, None]
        return np.einsum("nj,njk->nk", lam, self.loc.x[self.loc.nodes[cells]])

    def _finish(self, i: np.ndarray) -> None:
        """Book-keeping of cones ``i`` that reached their (final) target.

        The heading is the integrator's (set with the target) unless the walk slid
        or went back: then it is the direction actually moved (along the obstacle).
        """
        if i.size == 0:
            return
        p, c = self.p, self.c
        x, xold = c["target"][i], c["xold"][i]
        disp = x - xold
        seg = am.norm3(disp)
        c["x"][i] = x
        c["length"][i] += seg
        c["absdz"][i] += np.abs(disp[:, 2])
        deflected = (c["slides"][i] < MAX_SLIDES) | (c["back"][i] == 1)
        if deflected.any():
            jd = i[deflected]
            c["d"][jd] = am.unit(disp[deflected], fallback=c["d"][jd],
                                 tiny=1e-6 * p.arc_step)
        c["k"][i] += 1
        t = c["t"][i]
        c["transit"][i] = 0
        self._graft_flags(i)
        zc = np.where(c["sense"][i] > 0, x[:, 2] >= self.lesion_z[1] + p.cross_depth,
                      x[:, 2] <= self.lesion_z[0] - p.cross_depth)
        new = zc & (c["crossed"][i] == 0)
        c["crossed"][i[new]] = 1
        c["t_cross"][i[new]] = t[new]
        old = c["state"][i]
        state = old.copy()
        state[new & (state == GROWING)] = CROSSED
        live = self._live(state)
        moved = am.norm3(x - c["anchor"][i]) >= p.stall_distance
        c["anchor"][i[moved]] = x[moved]
        c["anchor_t"][i[moved]] = t[moved]
        state[live & ~moved & (t - c["anchor_t"][i] >= p.stall_time * (1 - 1e-12))] = STALLED
        # reached an end of the segment (not pulled back by a slide)
        tol = 2 * self._delta
        at_end = (x[:, 2] >= self.z_max - tol) | (x[:, 2] <= self.z_min + tol)
        state[live & (c["exiting"][i] == 1) & at_end] = EXITED
        c["state"][i] = state
        self._record(i[(c["k"][i] % p.record_every == 0) | (state != old)])

    def _live(self, s: np.ndarray) -> np.ndarray:
        """Cones that still grow (crossed ones too, unless stop_at_cross)."""
        if self.p.stop_at_cross:
            return s == GROWING
        return (s == GROWING) | (s == CROSSED)

    def _active(self) -> np.ndarray:
        return self._live(self.c["state"])

    def _any_moving(self, t1: float) -> bool:
        """Collective: does a cone on any rank grow before ``t1`` (the same on all)?"""
        moving = int(np.any(self._active() & (self.c["t"] < t1)))
        return bool(self.comm.allreduce(moving, op=MPI.MAX))

    def _exchange(self) -> int:
        """Collective, the one exchange of a round: cones whose walk left this rank go
        to the rank that continues it, settled live cones in a ghost cell to its
        owner. Returns the number of cones sent by all ranks (0: nothing pending)."""
        comm, c, loc = self.comm, self.c, self.loc
        transit = c["transit"] == 1
        send = transit | ((c["cell"] >= loc.num_owned) & self._active())
        dest = np.where(transit, c["hrank"], loc.owner[np.maximum(c["cell"], 0)])[send]
        rows = pack_rows(st.take(c, send), self.extra_columns)
        order = np.argsort(dest, kind="stable")
        rows = np.ascontiguousarray(rows[order])
        counts = np.bincount(dest[order], minlength=comm.size).astype(np.int64)
        # Counts and this rank's total in one Alltoall: every rank learns the global total.
        out = np.column_stack([counts, np.full(comm.size, counts.sum())])
        inc = np.empty_like(out)
        comm.Alltoall(out, inc)
        self.n_exchanges += 1
        total = int(inc[:, 1].sum())
        if total == 0:
            return 0
        recv = inc[:, 0]
        ncol = rows.shape[1]
        got = np.empty((int(recv.sum()), ncol))
        sd = np.r_[0, np.cumsum(counts)[:-1]] * ncol
        rd = np.r_[0, np.cumsum(recv)[:-1]] * ncol
        comm.Alltoallv([rows, counts * ncol, sd, MPI.DOUBLE], [got, recv * ncol, rd, MPI.DOUBLE])
        self.n_migrated += int(send.sum())
        self.c = st.take(c, ~send)
        g = unpack_rows(got, self.extra_columns)
        viaf = g["hfacet"] >= 0
        g["cell"][~viaf] = loc.global_to_local(g["gcell"][~viaf])
        g["cell"][viaf] = loc.cell_across(g["hfacet"][viaf])
        g["gcell"] = loc.global_cell[g["cell"]]
        g["hfacet"][:] = -1
        if np.any(g["cell"] < 0):  # pragma: no cover - the sender named a local cell
            raise RuntimeError("migrated growth cone not found on its owner")
        n0 = len(self.c["id"])
        self.c = st.concat(self.c, g)
        self._move(n0 + np.flatnonzero(g["transit"] == 1))
        return total
