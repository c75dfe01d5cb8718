"""Growth-cone state table, trajectory records, outputs and checkpoints.

The cones of a rank are a table: a dict of NumPy arrays with one row per cone
(:data:`COLUMNS`), packed into float64 rows to travel between ranks.
:class:`TracerOutputs` is the part of :class:`~scaffoldfem.axons.tracer.Tracer` that
reads this table: per-axon summaries, run metrics, gathered trajectories and
the checkpoint state; :meth:`TracerOutputs.outcomes` hands the gathered
trajectories to :mod:`scaffoldfem.axons.outcomes` (crossing curves, channel
occupancy and crossing times with their intervals).
"""

from __future__ import annotations

import numpy as np

from scaffoldfem.axons import guidance as am
from scaffoldfem.axons.crossing import wilson_interval
from scaffoldfem.axons.outcomes import Outcomes

#: Final states of an axon.
GROWING, CROSSED, STALLED, EXITED = 0, 1, 2, 3
STATE_NAMES = ("growing", "crossed", "stalled", "exited")

#: Cone state columns: name -> (width, dtype); packed as float64 for migration.
COLUMNS: dict[str, tuple[int, type]] = {
    "id": (1, np.int64), "k": (1, np.int64), "state": (1, np.int64),
    "crossed": (1, np.int64), "transit": (1, np.int64), "slides": (1, np.int64),
    "exiting": (1, np.int64), "back": (1, np.int64), "gcell": (1, np.int64),
    "hfacet": (1, np.int64), "hrank": (1, np.int64),
    "x": (3, np.float64), "d": (3, np.float64), "x0": (3, np.float64),
    "anchor": (3, np.float64), "target": (3, np.float64), "xold": (3, np.float64),
    "anchor_t": (1, np.float64), "t": (1, np.float64), "t_seed": (1, np.float64),
    "t_cross": (1, np.float64), "length": (1, np.float64), "absdz": (1, np.float64),
    "sense": (1, np.float64), "speed": (1, np.float64), "rec0": (1, np.int64),
}


def empty_cones() -> dict[str, np.ndarray]:
    c = {k: np.zeros((0, w) if w > 1 else 0, dtype=t) for k, (w, t) in COLUMNS.items()}
    c["cell"] = np.zeros(0, dtype=np.int32)
    return c


def take(c: dict[str, np.ndarray], sel) -> dict[str, np.ndarray]:
    return {k: v[sel] for k, v in c.items()}


def concat(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {k: np.concatenate([a[k], b[k]]) for k in a}


def pack(c: dict[str, np.ndarray]) -> np.ndarray:
    n = len(c["id"])
    return np.hstack([c[k].reshape(n, w).astype(np.float64) for k, (w, _) in COLUMNS.items()])


def unpack(rows: np.ndarray) -> dict[str, np.ndarray]:
    out, j = {}, 0
    for k, (w, t) in COLUMNS.items():
        v = rows[:, j:j + w]
        out[k] = (v if w > 1 else v[:, 0]).astype(t)
        j += w
    out["cell"] = np.full(len(rows), -1, dtype=np.int32)
    return out


def ncols() -> int:
    return sum(w for w, _ in COLUMNS.values())



#: Flags of the ``graft`` column: has been in the implant; then reached host tissue
#: beyond the far lesion face.
GRAFT_ENTERED, GRAFT_LEFT_FAR = 1, 2


class TracerOutputs:
    """Outputs and checkpointing of a :class:`~scaffoldfem.axons.tracer.Tracer` (mixin)."""

    def _rows(self, i: np.ndarray) -> np.ndarray:
        """Trajectory rows of cones ``i``: id, step, t, x, y, z, speed, region, state, c_s..."""
        c = self.c
        cells = c["cell"][i]
        ok = cells >= 0
        conc = np.full((i.size, len(self.species)), np.nan)
        if ok.any() and self._F is not None:
            lam = self.loc.barycentric(cells[ok], c["x"][i[ok]])
            for s in range(len(self.species)):
                conc[ok, s] = self.loc.interpolate(self._F["conc"][s], cells[ok], lam)
        reg = np.where(ok, self.region[np.where(ok, cells, 0)], -1)
        return np.column_stack([c["id"][i], c["k"][i], c["t"][i], c["x"][i], c["speed"][i],
                                reg, c["state"][i], conc])

    def _record(self, i: np.ndarray) -> None:
        """Append trajectory points of cones ``i`` (sampled at their positions)."""
        i = np.unique(i)
        if i.size:
            self.records.append(self._rows(i))

    # -- summaries -------------------------------------------------------------
    def n_crossed(self) -> int:
        """Collective: number of axons that have crossed so far."""
        return int(self.comm.allreduce(int(np.sum(self.c["crossed"]))))

    def final(self) -> dict[str, np.ndarray]:
        """Collective: per-axon summary on every rank, sorted by axon id.

        Returns:
            Arrays ``id, state, crossed, t_seed, t_cross, t, length, end_to_end,
            tortuosity, alignment, x, x0, sense`` (tortuosity = path length /
            end-to-end distance, alignment = path-averaged |cos| with the cord axis).
        """
        c = self.c
        tab = np.column_stack([c["id"], c["state"], c["crossed"], c["t_seed"], c["t_cross"],
                               c["t"], c["length"], c["absdz"], c["x"], c["x0"], c["sense"]])
        tab = np.vstack([t for t in self.comm.allgather(tab) if len(t)] or [tab])
        tab = tab[np.argsort(tab[:, 0], kind="stable")]
        x, x0, L = tab[:, 8:11], tab[:, 11:14], tab[:, 6]
        e2e = am.norm3(x - x0)
        with np.errstate(divide="ignore", invalid="ignore"):
            tort = np.where(e2e > 0, L / e2e, np.nan)
            align = np.where(L > 0, tab[:, 7] / L, np.nan)
        return {"id": tab[:, 0].astype(np.int64), "state": tab[:, 1].astype(np.int64),
                "crossed": tab[:, 2] > 0, "t_seed": tab[:, 3], "t_cross": tab[:, 4],
                "t": tab[:, 5], "length": L, "end_to_end": e2e, "tortuosity": tort,
                "alignment": align, "x": x, "x0": x0, "sense": tab[:, 14]}

    def metrics(self) -> dict:
        """Collective: the ``axons`` metrics, identical on every rank.

        ``crossing_ci95`` is the 95 % Wilson interval of ``crossing_fraction``;
        ``median_time_to_cross_day`` and means over an empty set are None.
        """
        f = self.final()
        n = len(f["id"])
        nc = int(f["crossed"].sum())

        def mean(a):
            a = a[np.isfinite(a)]
            return float(np.mean(a)) if a.size else None

        ttc = (f["t_cross"] - f["t_seed"])[f["crossed"]]
        return {
            "seeded": n,
            "crossed": nc,
            "crossing_fraction": nc / n if n else 0.0,
            "crossing_ci95": list(wilson_interval(nc, n)),
            "mean_length_mm": mean(f["length"]),
            "mean_tortuosity": mean(f["tortuosity"]),
            "mean_alignment_cos": mean(f["alignment"]),
            "median_time_to_cross_day": float(np.median(ttc)) if ttc.size else None,
            "states": {name: int(np.sum(f["state"] == k)) for k, name in enumerate(STATE_NAMES)},
        }

    def trajectories(self, root: int = 0) -> dict | None:
        """Collective: recorded trajectory points gathered on ``root``.

        Returns (on ``root``; None elsewhere) points sorted by (axon, step):
        ``axon_id, step, t, x (m, 3), speed, region, state, concentration``
        (dict by species), the polyline ``offsets`` (axon j is points
        ``offsets[j]:offsets[j+1]``), ``axons`` (ids), and per axon ``final_state``
        (name) and ``crossed`` (bool: an exited axon may have crossed before),
        ``sense`` (+1 descending, -1 ascending), ``population`` (name),
        ``t_seed`` and ``t_cross`` (day; NaN if not crossed). The per-axon arrays
        are what :mod:`scaffoldfem.axons.outcomes` reads.
        """
        f = self.final()
        ncol = 9 + len(self.species)
        tail = self._rows(np.arange(len(self.c["id"])))  # current point of every cone
        rows = np.vstack([*self.records, tail]) if self.records or len(tail) else np.zeros(
            (0, ncol))
        gathered = self.comm.gather(rows, root=root)
        if self.comm.rank != root:
            return None
        R = np.vstack(gathered) if gathered else np.zeros((0, ncol))
        R = R[np.lexsort((R[:, 1], R[:, 0]))]
        last = np.r_[(R[1:, 0] != R[:-1, 0]) | (R[1:, 1] != R[:-1, 1]), True]
        R = R[last]
        ids, starts = np.unique(R[:, 0].astype(np.int64), return_index=True)
        # final() is sorted by id and holds every axon: index it by position.
        pos = np.searchsorted(f["id"], ids)
        if len(ids) and not np.array_equal(f["id"][np.minimum(pos, len(f["id"]) - 1)], ids):
            raise RuntimeError("trajectory axons and cone table disagree")  # pragma: no cover
        sense = np.where(f["sense"][pos] < 0, -1.0, 1.0)
        return {
            "axon_id": R[:, 0].astype(np.int64), "step": R[:, 1].astype(np.int64),
            "t": R[:, 2], "x": R[:, 3:6], "speed": R[:, 6], "region": R[:, 7].astype(np.int64),
            "state": R[:, 8].astype(np.int64),
            "concentration": {s: R[:, 9 + j] for j, s in enumerate(self.species)},
            "offsets": np.r_[starts, len(R)].astype(np.int64), "axons": ids,
            "final_state": np.array([STATE_NAMES[k] for k in f["state"][pos].tolist()]),
            "crossed": np.asarray(f["crossed"][pos], dtype=bool),
            "sense": sense,
            "population": np.where(sense > 0, "descending", "ascending"),
            "t_seed": f["t_seed"][pos].astype(np.float64),
            "t_cross": np.where(f["crossed"][pos], f["t_cross"][pos], np.nan).astype(np.float64),
        }

    def outcomes(self, layout, root: int = 0):
        """Collective: :class:`~scaffoldfem.axons.outcomes.Outcomes` (crossing curves,
        channel occupancy, crossing times with their intervals) of the gathered
        trajectories, on ``root`` (None elsewhere).

        Args:
            layout: :class:`~scaffoldfem.axons.outcomes.Layout` of the geometry
                (``Layout.from_study(study)``).
            root: Rank that gathers.
        """
        traj = self.trajectories(root=root)
        return None if traj is None else Outcomes(traj, layout)

    # -- checkpoint --------------------------------------------------------
    def get_state(self, root: int = 0) -> dict | None:
        """Collective: the full tracer state as arrays on ``root`` (None elsewhere).

        Call between :meth:`advance` calls. Contains the step counter, time,
        next axon id, all cone states and all trajectory records.
        """
        rows = pack(self.c)
        # The cell is kept as its input index: the same whatever the partition, so a
        # cone on a face (e.g. slid along a barrier) restarts in the very same cell.
        ok = self.c["cell"] >= 0
        rows[ok, list(COLUMNS).index("gcell")] = self.loc.orig_cell[self.c["cell"][ok]]
        rows[~ok, list(COLUMNS).index("gcell")] = -1
        cones = self.comm.gather(rows, root=root)
        recs = self.records and np.vstack(self.records)
        recs = self.comm.gather(recs if len(recs) else np.zeros((0, 9 + len(self.species))),
                                root=root)
        if self.comm.rank != root:
            return None
        cones = np.vstack([a for a in cones if len(a)] or [np.zeros((0, ncols()))])
        return {"step": np.int64(self.step),
                "time": np.float64(np.nan if self.time is None else self.time),
                "next_id": np.int64(self.next_id),
                "cones": cones[np.argsort(cones[:, 0], kind="stable")],
                "records": np.vstack(recs)}

    def set_state(self, state: dict | None, root: int = 0) -> None:
        """Collective: restore :meth:`get_state` output (given on ``root``) on any
        number of ranks; each live cone goes to the rank owning its position."""
        state = self.comm.bcast(state if self.comm.rank == root else None, root=root)
        self.step = int(state["step"])
        self.time = None if np.isnan(state["time"]) else float(state["time"])
        self.next_id = int(state["next_id"])
        from mpi4py import MPI

        c = unpack(np.asarray(state["cones"], dtype=np.float64).reshape(-1, ncols()))
        live = self._live(c["state"])
        # Each live cone goes to the owner of its saved cell if that cell (by input
        # index) contains it, else to the owner of its position.
        cell = self.loc.owned_from_input_index(c["gcell"][live])
        has = cell >= 0
        if has.any():
            lam = self.loc.barycentric(cell[has], c["x"][live][has])
            bad = np.flatnonzero(has)[lam.min(axis=1) < -self.loc.eps]
            cell[bad] = -1
        size = self.comm.size
        mine0 = np.where(cell >= 0, self.comm.rank, size).astype(np.int32)
        owner = np.empty_like(mine0)
        self.comm.Allreduce(mine0, owner, op=MPI.MIN)
        lost = owner == size
        if lost.any():
            o2, c2 = self.loc.locate_global(c["x"][live][lost], blocked=self.blocked)
            if np.any(o2 < 0):
                raise ValueError(f"{int(np.sum(o2 < 0))} growing cone(s) lie outside this mesh")
            owner[lost], cell[lost] = o2, c2
        own = np.full(len(live), root, dtype=np.int64)  # finished cones need no cell
        own[live] = owner
        cells = np.full(len(live), -1, dtype=np.int32)
        cells[live] = np.where(owner == self.comm.rank, cell, -1)
        mine = own == self.comm.rank
        self.c = take(c, mine)
        self.c["cell"] = cells[mine]
        ok = self.c["cell"] >= 0
        self.c["gcell"][ok] = self.loc.global_cell[self.c["cell"][ok]]
        self.records = [np.asarray(state["records"])] if self.comm.rank == root else []

    def graft_metrics(self) -> dict[str, int]:
        """Collective: ``graft_entered`` (axons that grew into the implant),
        ``graft_left_far`` (of those, reached host beyond the far lesion face) and
        ``graft_trapped`` (entered, not crossed, now between the lesion faces): the
        behaviour of axons drawn into a factor-loaded graft that do not leave it
        (Taylor et al. 2006 J Neurosci 26:9713)."""
        c = self.c
        ent = (c["graft"] & GRAFT_ENTERED) > 0
        far = (c["graft"] & GRAFT_LEFT_FAR) > 0
        z = c["x"][:, 2]
        inside = (z >= self.lesion_z[0]) & (z <= self.lesion_z[1])
        local = np.array([ent.sum(), far.sum(), (ent & (c["crossed"] == 0) & inside).sum()])
        tot = np.zeros_like(local)
        self.comm.Allreduce(local, tot)
        return {"graft_entered": int(tot[0]), "graft_left_far": int(tot[1]),
                "graft_trapped": int(tot[2])}
