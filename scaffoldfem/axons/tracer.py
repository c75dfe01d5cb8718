"""Axon growth-cone tracing through the evolving fields, under MPI.

A :class:`Tracer` holds the growth cones of a run. Each cone lives on the rank
that owns its cell; one growth step is

1. *heading and speed* from the fields sampled in the cone's cell
   (:mod:`scaffoldfem.axons.guidance`),
2. *move*: walk from the cell to the target point (:class:`~scaffoldfem.fem.locate.Locator`),
   sliding along the domain boundary (``pia``) and along barrier regions,
3. *bookkeeping*: path length, crossing, exit, stall, trajectory record,

followed by ONE collective exchange per step: cones that ended in a ghost
cell go to the rank owning it, and cones whose walk left this rank's cells go,
with their unfinished walk, to the owner of the last cell walked; that rank
continues the same walk, so the cells visited (and the result) are those of a
serial run. A cone whose walk must hop again waits for the next exchange and
catches up (its own step counter and the counter-based random numbers make
the catch-up exact). Trajectories and final states are gathered at the end.
"""

from __future__ import annotations  # noqa: I001  (scaffoldfem before dolfinx)

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

import scaffoldfem  # noqa: F401
from dolfinx import fem, la
from dolfinx import mesh as dmesh
from mpi4py import MPI

from scaffoldfem.axons import guidance as am
from scaffoldfem.axons import records as st
from scaffoldfem.axons.records import (  # noqa: F401  (re-exported)
    CROSSED, EXITED, GROWING, STALLED, STATE_NAMES, TracerOutputs)
from scaffoldfem.config.axons import AxonsConfig
from scaffoldfem.fem.locate import BLOCKED, EXTERIOR, FOUND, LEFT, LOST, Locator, alltoallv_rows
from scaffoldfem.regions import CELL_TAGS, cell_tag

_MAX_SLIDES = 3


@dataclass
class GrowthFields:
    """Fields the growth cones see during one :meth:`Tracer.advance` call.

    Attributes:
        concentrations: P1 concentration Function (ng/mL) per growth-factor name.
        stiffness: Young's modulus (kPa), DG0 or P1; None switches durotaxis off.
        guidance_axis: Optional vector field (DG0 or P1, 3 components) of the
            local channel / fibre axis; default the cord axis z.
    """

    concentrations: Mapping[str, fem.Function] = field(default_factory=dict)
    stiffness: fem.Function | None = None
    guidance_axis: fem.Function | None = None


class Tracer(TracerOutputs):
    """Growth cones of one run on a distributed mesh.

    Args:
        mesh: Tetrahedral mesh (cord axis z, mm).
        cell_tags: Region tags of the cells (tags of :data:`scaffoldfem.regions.CELL_TAGS`).
        params: The ``[axons]`` study section.
        lesion_z: Rostral and caudal z of the lesion (mm).
        species: Growth-factor names the cones respond to (order of the outputs).
        locator: An existing :class:`Locator` for ``mesh`` (built if None).
    """

    def __init__(self, mesh: dmesh.Mesh, cell_tags: dmesh.MeshTags, params: AxonsConfig,
                 lesion_z: tuple[float, float], species: Sequence[str],
                 locator: Locator | None = None):
        self.mesh, self.comm, self.p = mesh, mesh.comm, params
        self.loc = locator if locator is not None else Locator(mesh)
        self.lesion_z = (float(lesion_z[0]), float(lesion_z[1]))
        self.species = list(species)
        self.kd = np.array([params.kd(s) for s in self.species], dtype=np.float64)
        self.region = self._cell_regions(cell_tags)
        tags = {v: k for k, v in CELL_TAGS.items()}
        nc = self.loc.num_cells
        self.blocked = np.isin(self.region, [cell_tag(r) for r in params.barrier_regions])
        self.guide_w = np.zeros(nc)
        self.speed_f = np.ones(nc)
        for t in np.unique(self.region):
            name = tags.get(int(t))
            if name is not None:
                self.guide_w[self.region == t] = params.guidance_weight(name)
        scar = self.region == cell_tag("scar")
        self.speed_f[scar] = params.scar_speed_factor
        self.has_scar = self.comm.allreduce(int(scar[: self.loc.num_owned].sum())) > 0
        self.scar_nodal = (self.loc.cell_average_to_nodes(scar.astype(np.float64))
                           if self.has_scar else None)
        zl = self.loc.x[:, 2]
        self.z_min = self.comm.allreduce(float(zl.min()) if len(zl) else np.inf, op=MPI.MIN)
        self.z_max = self.comm.allreduce(float(zl.max()) if len(zl) else -np.inf, op=MPI.MAX)
        self.xy_min = np.array([self.comm.allreduce(float(self.loc.x[:, i].min()), op=MPI.MIN)
                                for i in (0, 1)])
        self.xy_max = np.array([self.comm.allreduce(float(self.loc.x[:, i].max()), op=MPI.MAX)
                                for i in (0, 1)])
        self._delta = 1e-9 * max(self.z_max - self.z_min, 1.0)
        self.c = st.empty_cones()
        self.records: list[np.ndarray] = []
        self.step = 0
        self.time: float | None = None
        self.next_id = 0
        self._stiff_src: np.ndarray | None = None
        self._stiff_nodal: np.ndarray | None = None
        self._F: dict | None = None
        #: Cones this rank has sent to other ranks (diagnostics).
        self.n_migrated = 0

    # -- set-up ------------------------------------------------------------
    def _cell_regions(self, ct: dmesh.MeshTags) -> np.ndarray:
        """Region tag per local cell, ghosts filled from their owners (-1 untagged)."""
        imap = self.mesh.topology.index_map(3)
        v = la.vector(imap, 1, dtype=np.int32)
        v.array[:] = -1
        idx = np.asarray(ct.indices)
        keep = idx < len(v.array)
        v.array[idx[keep]] = np.asarray(ct.values)[keep]
        v.scatter_forward()
        return v.array[: self.loc.num_cells].copy()

    # -- seeding -------------------------------------------------------------
    def seed(self, t0: float = 0.0, points: np.ndarray | None = None,
             directions: np.ndarray | None = None) -> int:
        """Collective: create growth cones; returns the number seeded globally.

        Args:
            t0: Time (day) of seeding.
            points: Explicit start points (n, 3), the same on every rank; by
                default ``count`` descending cones on the plane ``seed_offset``
                rostral of the lesion in ``seeding_regions`` (and, with
                ``sensory``, ascending cones caudal of it).
            directions: Start headings (n, 3) for explicit points (default +z).
        """
        if self.time is None:
            self.time = float(t0)
        if points is not None:
            pts = np.asarray(points, dtype=np.float64).reshape(-1, 3)
            dirs = (np.tile([0.0, 0.0, 1.0], (len(pts), 1)) if directions is None
                    else am.unit(np.asarray(directions, dtype=np.float64).reshape(-1, 3)))
            return self._add(pts, dirs, t0)
        n = 0
        if self.p.count:
            z = self.lesion_z[0] - self.p.seed_offset
            pts = self._sample_plane(z, self.p.count, stream=0)
            n += self._add(pts, np.tile([0.0, 0.0, 1.0], (len(pts), 1)), t0)
        if self.p.sensory:
            m = self.p.count if self.p.sensory_count is None else self.p.sensory_count
            if m:
                z = self.lesion_z[1] + self.p.seed_offset
                pts = self._sample_plane(z, m, stream=1)
                n += self._add(pts, np.tile([0.0, 0.0, -1.0], (len(pts), 1)), t0)
        return n

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

    def _add(self, pts: np.ndarray, dirs: np.ndarray, t0: float) -> int:
        owner, cell = self.loc.locate_global(pts, blocked=self.blocked)
        if np.any(owner < 0):
            raise ValueError(f"{int(np.sum(owner < 0))} seed point(s) lie outside the mesh")
        ids = np.arange(len(pts), dtype=np.int64) + self.next_id
        self.next_id += len(pts)
        mine = owner == self.comm.rank
        m = int(mine.sum())
        c = st.empty_cones()
        c = {k: np.zeros((m, *v.shape[1:]), dtype=v.dtype) for k, v in c.items()}
        c["id"], c["cell"] = ids[mine], cell[mine]
        c["gcell"] = self.loc.global_cell[cell[mine]]
        c["k"][:] = self.step
        for k in ("x", "x0", "anchor", "xold", "target"):
            c[k] = pts[mine].copy()
        c["d"] = dirs[mine].copy()
        c["sense"] = np.where(dirs[mine, 2] < 0, -1.0, 1.0)
        c["anchor_t"][:] = t0
        c["t"][:] = t0
        c["t_seed"][:] = t0
        c["t_cross"][:] = np.nan
        c["speed"][:] = 0.0
        c["hfacet"][:] = -1
        c["hrank"][:] = -1
        self.c = st.concat(self.c, c)
        return len(pts)

    # -- fields --------------------------------------------------------------
    def _prepare(self, f: GrowthFields | Mapping) -> dict:
        """Nodal / cell arrays of the fields for this advance (collective)."""
        if isinstance(f, Mapping):
            f = GrowthFields(**f)
        missing = [s for s in self.species if s not in f.concentrations]
        if missing:
            raise KeyError(f"no concentration field for {missing}")
        out: dict = {"conc": []}
        for s in self.species:
            u = f.concentrations[s]
            u.x.scatter_forward()
            out["conc"].append(self.loc.nodal_values(u))
        out["E"] = self._stiffness(f.stiffness)
        ax = f.guidance_axis
        if ax is not None:
            ax.x.scatter_forward()
            dg0 = np.asarray(ax.function_space.dofmap.list).shape[1] == 1
            out["axis"] = ("cell", self.loc.cell_values(ax)) if dg0 else (
                "node", self.loc.nodal_values(ax))
        else:
            out["axis"] = None
        return out

    def _stiffness(self, E: fem.Function | None) -> np.ndarray | None:
        """Nodal stiffness; DG0 is averaged to the nodes (redone only if it changed)."""
        if E is None or self.p.weights.durotaxis == 0:
            return None
        E.x.scatter_forward()
        if np.asarray(E.function_space.dofmap.list).shape[1] != 1:
            return self.loc.nodal_values(E)
        cv = self.loc.cell_values(E)
        same = self._stiff_src is not None and np.array_equal(cv, self._stiff_src)
        # Decide together: the averaging is collective.
        if self.comm.allreduce(0 if same else 1) > 0:
            self._stiff_src = cv.copy()
            self._stiff_nodal = self.loc.cell_average_to_nodes(cv)
        return self._stiff_nodal

    # -- one step ----------------------------------------------------------
    def _heading(self, i: np.ndarray, F: dict, dt: float) -> None:
        """Heading, speed and target of cones ``i`` from the fields in their cells."""
        p, c, loc = self.p, self.c, self.loc
        cells, x, d = c["cell"][i], c["x"][i], c["d"][i]
        n = len(i)
        lam = loc.barycentric(cells, x)
        ns = len(self.species)
        conc = np.empty((n, ns))
        grads = np.empty((n, ns, 3))
        for s in range(ns):
            conc[:, s] = loc.interpolate(F["conc"][s], cells, lam)
            grads[:, s] = loc.gradient(F["conc"][s], cells)
        w = p.weights
        width = p.growth_cone_width
        terms: list = [(w.persistence, d)]
        if ns and w.chemotaxis:
            bias, _ = am.chemotaxis(conc, grads, self.kd, width, p.detection_threshold,
                                    p.chemotaxis_half_saturation)
            terms.append((w.chemotaxis, bias))
        gw = self.guide_w[cells]
        if np.any(gw > 0):
            axis = np.tile([0.0, 0.0, 1.0], (n, 1))
            if F["axis"] is not None:
                kind, arr = F["axis"]
                if kind == "cell":
                    a = arr[cells]
                else:
                    a = np.column_stack([loc.interpolate(arr[:, k], cells, lam) for k in range(3)])
                axis = am.unit(a, fallback=axis)
            pref = np.zeros((n, 3))
            pref[:, 2] = c["sense"][i]  # growth polarity: descending +z, ascending -z
            terms.append((gw, am.aligned_axis(axis, d, pref)))
        if F["E"] is not None:
            E = loc.interpolate(F["E"], cells, lam)
            terms.append((w.durotaxis, am.durotaxis(E, loc.gradient(F["E"], cells), width,
                                                    p.durotaxis_threshold)))
        if self.scar_nodal is not None and w.scar_repulsion:
            terms.append((w.scar_repulsion, am.unit(-loc.gradient(self.scar_nodal, cells))))
        if w.noise:
            terms.append((w.noise, am.random_unit(p.seed, c["id"][i], c["k"][i])))
        dnew = am.heading(terms, d)
        v = p.speed * (1.0 + p.occupancy_speed_gain * am.any_occupancy(conc, self.kd))
        v = np.minimum(v, p.max_speed) * self.speed_f[cells]
        target = x + (v * dt)[:, None] * dnew
        # The ends of the segment: stop just inside, the axon exits there.
        exiting = np.zeros(n, dtype=bool)
        for zend, sgn in ((self.z_max - self._delta, 1.0), (self.z_min + self._delta, -1.0)):
            over = sgn * (target[:, 2] - zend) > 0
            if over.any():
                dz = target[over, 2] - x[over, 2]
                f = np.clip((zend - x[over, 2]) / np.where(dz != 0, dz, 1.0), 0.0, 1.0)
                target[over] = x[over] + f[:, None] * (target[over] - x[over])
                exiting |= over
        c["target"][i] = target
        c["xold"][i] = x
        c["speed"][i] = v
        c["exiting"][i] = exiting
        c["slides"][i] = _MAX_SLIDES
        c["back"][i] = 0
        c["transit"][i] = 1

    def _move(self, i: np.ndarray, dt: float, t0: float, k0: int) -> None:
        """Walk cones ``i`` (in transit) to their targets, sliding at boundaries."""
        c, loc = self.c, self.loc
        act = np.asarray(i)
        for _ in range(2 * _MAX_SLIDES + 4):
            if act.size == 0:
                return
            r = loc.walk(c["target"][act], c["cell"][act], self.blocked)
            res_status, res_cell, res_face = r.status, r.cell, r.face
            c["cell"][act] = res_cell
            c["gcell"][act] = loc.global_cell[res_cell]
            lost = res_status == LOST
            if lost.any():  # walk did not converge: tree over local cells
                j = act[lost]
                cells, score = loc.locate_tree(c["target"][j], blocked=self.blocked)
                hit = score >= -loc.eps
                c["cell"][j[hit]] = cells[hit]
                c["gcell"][j[hit]] = loc.global_cell[cells[hit]]
                res_status[np.flatnonzero(lost)[hit]] = FOUND
                res_status[np.flatnonzero(lost)[~hit]] = EXTERIOR
                res_face[np.flatnonzero(lost)[~hit]] = -1
            done = res_status == FOUND
            self._finish(act[done], dt, t0, k0)
            left = res_status == LEFT  # stays in transit; continued on another rank
            if left.any():
                jl, cl, fl = act[left], res_cell[left], res_face[left]
                ghost = cl >= loc.num_owned
                c["hrank"][jl] = np.where(ghost, loc.owner[cl], loc.remote_rank[cl, fl])
                c["hfacet"][jl] = np.where(ghost, -1, loc.remote_facet[cl, fl])
            hit = (res_status == EXTERIOR) | (res_status == BLOCKED)
            j, faces = act[hit], res_face[hit]
            if j.size:
                slide = (c["slides"][j] > 0) & (faces >= 0)
                js, fs = j[slide], faces[slide]
                if js.size:  # slide: project the target onto the plane of that face
                    cj = c["cell"][js]
                    nrm = loc.face_normal(cj, fs)
                    xf = loc.x[loc.nodes[cj, (fs.astype(np.int64) + 1) % 4]]
                    tg = c["target"][js]
                    e = tg - xf
                    dn = e[:, 0] * nrm[:, 0] + e[:, 1] * nrm[:, 1] + e[:, 2] * nrm[:, 2]
                    c["target"][js] = tg - np.maximum(dn, 0.0)[:, None] * nrm
                    c["slides"][js] -= 1
                jb = j[~slide]
                back = c["back"][jb] == 0
                # Out of slides: walk back to where the step started (no move).
                c["target"][jb[back]] = c["xold"][jb[back]]
                c["back"][jb[back]] = 1
                stuck = jb[~back]
                if stuck.size:  # last resort: park at the centroid of the last cell
                    c["target"][stuck] = loc.midpoints(c["cell"][stuck])
                    self._finish(stuck, dt, t0, k0)
            act = j[(c["transit"][j] == 1)]
        if act.size:  # pragma: no cover - bounded by the slide logic above
            c["target"][act] = loc.midpoints(c["cell"][act])
            self._finish(act, dt, t0, k0)

    def _finish(self, i: np.ndarray, dt: float, t0: float, k0: int) -> None:
        """Book-keeping of cones ``i`` that reached their (final) target."""
        if i.size == 0:
            return
        p, c = self.p, self.c
        x, xold = c["target"][i], c["xold"][i]
        disp = x - xold
        seg = am.norm3(disp)
        c["x"][i] = x
        c["length"][i] += seg
        c["absdz"][i] += np.abs(disp[:, 2])
        c["d"][i] = am.unit(disp, fallback=c["d"][i], tiny=1e-12 * p.step_length)
        c["k"][i] += 1
        t = t0 + (c["k"][i] - k0) * dt
        c["t"][i] = t
        c["transit"][i] = 0
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

    def _live(self, st: np.ndarray) -> np.ndarray:
        """Cones that still grow (crossed ones too, unless stop_at_cross)."""
        if self.p.stop_at_cross:
            return st == GROWING
        return (st == GROWING) | (st == CROSSED)

    def _active(self) -> np.ndarray:
        return self._live(self.c["state"])

    def _record_seeds(self) -> None:
        """Record start points not yet recorded (sampled in the current fields)."""
        i = np.flatnonzero(self.c["rec0"] == 0)
        self._record(i)
        self.c["rec0"][i] = 1

    # -- MPI -------------------------------------------------------------------
    def _exchange(self, dt: float, t0: float, k0: int) -> None:
        """The one collective of a step: migrate cones to the owners of their cells."""
        if self.comm.size == 1:
            return
        c, loc = self.c, self.loc
        # In transit (walk left this rank): to the rank across the face it left by.
        # Settled in a ghost cell: to the cell's owner.
        transit = c["transit"] == 1
        send = transit | ((c["cell"] >= loc.num_owned) & self._active())
        dest = np.where(transit, c["hrank"], loc.owner[np.maximum(c["cell"], 0)])[send]
        self.n_migrated += int(send.sum())
        rows = alltoallv_rows(self.comm, dest, st.pack(st.take(c, send)))
        self.c = st.take(c, ~send)
        got = st.unpack(rows)
        viaf = got["hfacet"] >= 0
        got["cell"][~viaf] = loc.global_to_local(got["gcell"][~viaf])
        got["cell"][viaf] = loc.cell_across(got["hfacet"][viaf])
        got["gcell"] = loc.global_cell[got["cell"]]
        got["hfacet"][:] = -1
        if np.any(got["cell"] < 0):  # pragma: no cover - the sender named a local cell
            raise RuntimeError("migrated growth cone not found on its owner")
        n0 = len(self.c["id"])
        self.c = st.concat(self.c, got)
        moving = n0 + np.flatnonzero(got["transit"] == 1)
        self._move(moving, dt, t0, k0)

    def _run_until(self, K: int, F: dict, dt: float, t0: float, k0: int) -> None:
        """Step every settled live cone until it has done step ``K``."""
        while True:
            i = np.flatnonzero(self._active() & (self.c["transit"] == 0) & (self.c["k"] <= K))
            if i.size == 0:
                return
            self._heading(i, F, dt)
            self._move(i, dt, t0, k0)

    def advance(self, t0: float, t1: float, fields: GrowthFields | Mapping) -> None:
        """Collective: grow all cones from ``t0`` to ``t1`` in the given fields.

        The number of growth steps is ``max(substeps, ceil((t1-t0)·v_max/step_length))``
        with ``v_max`` the fastest speed the model allows, so that no step is
        longer than ``step_length``. Fields are those of the current time.
        """
        if t1 <= t0:
            return
        p = self.p
        vmax = min(p.max_speed, p.speed * (1.0 + p.occupancy_speed_gain))
        n = max(p.substeps, int(np.ceil((t1 - t0) * vmax / p.step_length - 1e-9)))
        dt = (t1 - t0) / n
        F = self._F = self._prepare(fields)
        self._record_seeds()
        k0 = self.step
        for j in range(n):
            self._run_until(k0 + j, F, dt, t0, k0)
            self._exchange(dt, t0, k0)
        kend = k0 + n
        while self.comm.size > 1:  # cones still hopping between ranks finish here
            c = self.c
            pending = int(np.sum((c["transit"] == 1) | (self._active() & (c["k"] < kend))))
            if self.comm.allreduce(pending) == 0:
                break
            self._run_until(kend - 1, F, dt, t0, k0)
            self._exchange(dt, t0, k0)
        # Cones that ended before t1 (stalled / exited) keep their own time.
        self.step = kend
        self.time = float(t1)
