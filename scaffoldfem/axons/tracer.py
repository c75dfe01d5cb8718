"""Axon growth-cone tracing through the evolving fields, under MPI.

A :class:`Tracer` holds the growth cones of a run; each lives on the rank that
owns its cell. The growth cone is a persistent random walk per unit arc length
``s`` (``docs/model.md`` §11; laws in :mod:`scaffoldfem.axons.guidance`)::

    dx = d ds,   dd = P(d)[G(x) + κ_g (a·d) a] ds + sqrt(2 D_θ) P(d) dW,   D_θ = 1/(2 ℓ_p)

integrated with a fixed arc step Δs (``axons.arc_step``): Heun (predictor–corrector)
on the drift, the corrector stage sampling the cone's cell extrapolated to the
predicted point (no second point location), and the same projected Gaussian
increment ``sqrt(2 D_θ Δs) P(d) ξ`` in both stages, applied by the exponential map
on the sphere (:func:`~scaffoldfem.axons.guidance.rotate`) — weak order 1,
deterministic order 2. The speed ``v`` (:func:`~scaffoldfem.axons.guidance.speed`)
only converts arc length into time: within a solver step ``[t0, t1]`` a cone
takes steps of Δs, each lasting ``Δs/v``, and a last partial step of ``v (t1 − t)``.
Random numbers are counter-based per (seed, axon, step) and every operation is
per cone, so a cone's path does not depend on when or on which rank it is
computed.

Parallel: each rank steps its cones until every one has reached ``t1`` or left the
rank mid-walk; then ONE exchange (:meth:`Motion._exchange`) hands the walks over,
and the receivers carry on. This repeats until no cone moves between ranks, so a
solver step costs as many exchanges as the largest number of rank changes of a
single cone in it, plus one.
"""

from __future__ import annotations  # noqa: I001  (scaffoldfem before dolfinx)

from collections.abc import Mapping, Sequence

import numpy as np

import scaffoldfem  # noqa: F401
from dolfinx import la
from dolfinx import mesh as dmesh
from mpi4py import MPI

from scaffoldfem.axons import guidance as am
from scaffoldfem.axons import records as st
from scaffoldfem.axons.compiled import CompiledSteps
from scaffoldfem.axons.fields import CueFields, GrowthFields, Local, Sample
from scaffoldfem.axons.motion import MAX_SLIDES, Motion
from scaffoldfem.axons.records import (
    CROSSED, EXITED, GRAFT_ENTERED, GRAFT_LEFT_FAR, GROWING, STALLED, STATE_NAMES, TracerOutputs)
from scaffoldfem.axons.seeding import Seeding
from scaffoldfem.config.axons import AxonsConfig
from scaffoldfem.fem.locate import Locator
from scaffoldfem.regions import IMPLANT_REGIONS, cell_tag

__all__ = ["CROSSED", "EXITED", "GROWING", "STALLED", "STATE_NAMES", "GrowthFields", "Tracer"]



class Tracer(Motion, CompiledSteps, Seeding, TracerOutputs):
    """Growth cones of one run on a distributed mesh.

    Args:
        mesh: Tetrahedral mesh (cord axis z, mm).
        cell_tags: Region tags of the cells (tags of :data:`scaffoldfem.regions.CELL_TAGS`).
        params: The ``[axons]`` study section.
        lesion_z: Rostral and caudal z of the lesion (mm).
        species: Growth-factor names the cones respond to (order of the outputs).
        locator: An existing :class:`Locator` for ``mesh`` (built if None).

    Raises:
        StudyError: ``axons.cue_smoothing`` under two cell sizes where regions meet.

    Attributes for outputs (besides the columns of :mod:`scaffoldfem.axons.records`):
        c["t_seed"]: time each cone starts to grow (after the die-back delay);
        c["graft"]: flags :data:`GRAFT_ENTERED` | :data:`GRAFT_LEFT_FAR`;
        c["adapt"]: adapted level per factor (only with ``axons.adaptation``);
        fields: the :class:`~scaffoldfem.axons.fields.CueFields` (smoothed cue
            fields: :meth:`CueFields.smoothed_functions`).
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
        self.blocked = np.isin(self.region, [cell_tag(r) for r in params.barrier_regions])
        self.implant = np.isin(self.region, [cell_tag(r) for r in IMPLANT_REGIONS])
        self.fields = CueFields(self.loc, self.region, params, self.species)
        x = self.loc.x
        self.z_min = self.comm.allreduce(float(x[:, 2].min()) if len(x) else np.inf, op=MPI.MIN)
        self.z_max = self.comm.allreduce(float(x[:, 2].max()) if len(x) else -np.inf, op=MPI.MAX)
        self.xy_min = np.array([self.comm.allreduce(float(x[:, i].min()), op=MPI.MIN)
                                for i in (0, 1)])
        self.xy_max = np.array([self.comm.allreduce(float(x[:, i].max()), op=MPI.MAX)
                                for i in (0, 1)])
        self._delta = 1e-9 * max(self.z_max - self.z_min, 1.0)
        #: Per-cone columns beyond those of records.COLUMNS: name -> (width, dtype).
        self.extra_columns: dict[str, tuple[int, type]] = {"graft": (1, np.int64)}
        if params.adaptation and self.species:
            self.extra_columns["adapt"] = (len(self.species), np.float64)
        self.c = st.empty_cones()
        for k, (w, t) in self.extra_columns.items():
            self.c[k] = np.zeros((0, w) if w > 1 else 0, dtype=t)
        self.records: list[np.ndarray] = []
        #: Number of completed :meth:`advance` calls.
        self.step = 0
        self.time: float | None = None
        self.next_id = 0
        self._F: dict | None = None
        #: Cones this rank has sent to other ranks, and collective exchanges (diagnostics).
        self.n_migrated = self.n_exchanges = 0
        #: Grow cones with the compiled steps (False: the vectorised reference laws).
        self.compiled = True

    def _cell_regions(self, ct: dmesh.MeshTags) -> np.ndarray:
        """Region tag per local cell, ghosts filled from their owners (-1 untagged)."""
        v = la.vector(self.mesh.topology.index_map(3), 1, dtype=np.int32)
        v.array[:] = -1
        idx = np.asarray(ct.indices)
        keep = idx < len(v.array)
        v.array[idx[keep]] = np.asarray(ct.values)[keep]
        v.scatter_forward()
        return v.array[: self.loc.num_cells].copy()

    # -- the growth-cone step ------------------------------------------------
    def _k_eff(self, i: np.ndarray, n: int) -> np.ndarray:
        kd = np.broadcast_to(self.kd, (n, len(self.kd)))
        if "adapt" not in self.c:
            return kd
        return kd + self.c["adapt"][i].reshape(n, -1)

    def _cue(self, S: Sample, k_eff: np.ndarray) -> np.ndarray:
        """Field part ``G = κ_c ρ ĝ − χ_E ∇q̃ − χ_s ∇s̃`` of the drift (1/mm)."""
        p = self.p
        G = np.zeros((len(S.kappa_g), 3))
        if self.species and p.cues.chemotaxis:
            rho_g, _ = am.chemotaxis(S.conc, S.grad_c, k_eff, p.growth_cone_width,
                                     p.chemotaxis_half_saturation)
            G += p.cues.chemotaxis * rho_g
        if S.grad_q is not None and p.cues.durotaxis:
            G -= p.cues.durotaxis * S.grad_q
        if S.grad_s is not None and p.cues.scar_repulsion:
            G -= p.cues.scar_repulsion * S.grad_s
        return G

    def _speed(self, S: Sample) -> np.ndarray:
        p = self.p
        pb = am.any_occupancy(S.conc, self.kd) if self.species else np.zeros(len(S.kappa_g))
        return am.speed(p.speed, p.max_speed, p.occupancy_speed_gain, pb, S.e_s,
                        p.stiffness_half_speed, S.s, p.cspg_half_inhibition)

    def _rot_diffusion(self, S: Sample) -> np.ndarray | float:
        """``D_θ = 1/(2 ℓ_p(E))`` (1/mm) per cone at the start of its step."""
        p = self.p
        return am.rotational_diffusion(p.persistence_length, S.e_s,
                                       p.stiffness_half_persistence)

    def _heading(self, i: np.ndarray, t1: float) -> np.ndarray:
        """One arc step of cones ``i``: new heading and target; returns those to move."""
        p, c = self.p, self.c
        cells, x, d = c["cell"][i], c["x"][i], c["d"][i]
        F = self.fields
        L = F.gather(cells)
        S1 = F.sample(L, F.barycentric(L, x))
        v = np.maximum(self._speed(S1), 1e-300)
        reach = v * (t1 - c["t"][i])
        full = reach >= p.arc_step * (1.0 - 1e-9)  # a step that ends at t1 up to round-off
        last = full & (reach <= p.arc_step * (1.0 + 1e-9))
        ds = np.where(full, p.arc_step, reach)
        idle = ds <= 1e-9 * p.arc_step  # nothing left of this interval (round-off)
        c["t"][i[idle]] = t1
        keep = ~idle
        if idle.any():
            i, x, d, ds, v, full, last = (a[keep] for a in (i, x, d, ds, v, full, last))
            L = Local(L.aff[keep], tuple(a[keep] for a in L.v), L.grad_c[keep],
                      L.kappa_g[keep], None if L.axis is None else L.axis[keep])
            S1 = Sample(*(None if a is None else a[keep] for a in vars(S1).values()))
        n = len(i)
        if "adapt" in c:
            a = c["adapt"][i].reshape(n, -1)
            cc = np.maximum(S1.conc, 0.0)
            a = np.where(a < 0, cc, a)
            a = cc + (a - cc) * np.exp(-(ds / v)[:, None] / p.adaptation_time)
            c["adapt"][i] = a.reshape(c["adapt"][i].shape)
        k_eff = self._k_eff(i, n)
        b1 = am.drift(d, self._cue(S1, k_eff), S1.kappa_g, S1.axis)
        xi = am.normals(p.seed, c["id"][i], c["k"][i], 3, am.STREAM_NOISE)
        eta = np.sqrt(2.0 * self._rot_diffusion(S1) * ds)[:, None] * am.perp(d, xi)
        d1 = am.rotate(d, ds[:, None] * b1 + eta)
        x1 = x + ds[:, None] * d
        S2 = F.sample(L, F.barycentric(L, x1))
        b2 = am.drift(d1, self._cue(S2, k_eff), S2.kappa_g, S2.axis)
        dn = am.rotate(d, am.perp(d, (0.5 * ds)[:, None] * (b1 + b2)) + eta)
        target = x + (0.5 * ds)[:, None] * (d + dn)
        # The ends of the segment: stop just inside, the axon exits there.
        exiting = np.zeros(n, dtype=bool)
        for zend, sgn in ((self.z_max - self._delta, 1.0), (self.z_min + self._delta, -1.0)):
            over = sgn * (target[:, 2] - zend) > 0
            if over.any():
                dz = target[over, 2] - x[over, 2]
                f = np.clip((zend - x[over, 2]) / np.where(dz != 0, dz, 1.0), 0.0, 1.0)
                target[over] = x[over] + f[:, None] * (target[over] - x[over])
                exiting |= over
        c["t"][i] = np.where(full & ~last, c["t"][i] + ds / v, t1)
        c["target"][i], c["xold"][i], c["d"][i], c["speed"][i] = target, x, dn, v
        c["exiting"][i] = exiting
        c["slides"][i] = MAX_SLIDES
        c["back"][i] = 0
        c["transit"][i] = 1
        return i

    def _graft_flags(self, i: np.ndarray) -> None:
        c = self.c
        g = c["graft"][i] | np.where(self.implant[c["cell"][i]], GRAFT_ENTERED, 0)
        z = c["x"][i, 2]
        far = np.where(c["sense"][i] > 0, z > self.lesion_z[1], z < self.lesion_z[0])
        c["graft"][i] = g | np.where(far & ((g & GRAFT_ENTERED) > 0), GRAFT_LEFT_FAR, 0)

    # -- driver ----------------------------------------------------------------
    def _record_seeds(self) -> None:
        """Record start points not yet recorded (sampled in the current fields)."""
        i = np.flatnonzero(self.c["rec0"] == 0)
        self._record(i)
        self.c["rec0"][i] = 1

    def _run_local(self, t1: float) -> None:
        """Step every settled live cone on this rank until it reaches ``t1`` or its
        walk leaves the rank: compiled steps (:mod:`~scaffoldfem.axons.kernel`) while
        walks end in a local cell, the vectorised :meth:`_move` for the others (or,
        with ``compiled`` False, the vectorised reference :meth:`_heading` throughout)."""
        while True:
            c = self.c
            i = np.flatnonzero(self._active() & (c["transit"] == 0) & (c["t"] < t1))
            if i.size == 0:
                return
            self._move(self._compiled_steps(i, t1) if self.compiled else self._heading(i, t1))

    def advance(self, t0: float, t1: float, fields: GrowthFields | Mapping) -> None:
        """Collective: grow all cones from ``t0`` to ``t1`` in the fields of this step.

        A cone that has not started (``t_seed > t1``) waits; one that starts
        within the interval grows from its ``t_seed``.
        """
        if t1 <= t0:
            return
        self.fields.prepare(fields)
        self._F = {"conc": self.fields.conc}
        self._record_seeds()
        if self._any_moving(t1):  # else no cue is sampled: solves wait (die-back delay)
            self.fields.ensure(t1)
        while True:
            self._run_local(t1)
            if self.comm.size == 1 or self._exchange() == 0:
                break
        self.step += 1
        self.time = float(t1)

    def destroy(self) -> None:
        """Free the cue filters' PETSc objects now (collective), not at collection."""
        self.fields.destroy()

    # -- checkpoint: the extra columns ride along -----------------------------------
    def get_state(self, root: int = 0) -> dict | None:
        """Collective: :meth:`TracerOutputs.get_state`, ``cones_extra`` (id, then the extra
        columns) sorted by id, and the cues' history (``cue_*``, :mod:`~.axons.cues`)."""
        cues = self.fields.cues.get_state(root)
        state = super().get_state(root)
        n = len(self.c["id"])
        cols = [self.c["id"].reshape(n, 1).astype(np.float64)] + [
            self.c[k].reshape(n, w).astype(np.float64) for k, (w, _) in self.extra_columns.items()]
        rows = self.comm.gather(np.hstack(cols), root=root)
        if state is None:
            return None
        rows = np.vstack(rows)
        return {**state, **cues, "cones_extra": rows[np.argsort(rows[:, 0], kind="stable")]}

    def set_state(self, state: dict | None, root: int = 0) -> None:
        """Collective: restore :meth:`get_state` output on any number of ranks."""
        super().set_state(state, root)
        self.fields.cues.set_state(state, root)
        ex = self.comm.bcast(None if state is None else state.get("cones_extra"), root=root)
        n = len(self.c["id"])
        pos = None
        if ex is not None and len(ex):
            pos = np.searchsorted(ex[:, 0], self.c["id"].astype(np.float64))
            pos = np.minimum(pos, len(ex) - 1)
        j = 1
        for k, (w, t) in self.extra_columns.items():
            col = np.zeros((n, w))
            if pos is not None and ex.shape[1] >= j + w:
                col = ex[pos, j:j + w]
            self.c[k] = (col if w > 1 else col[:, 0]).astype(t)
            j += w
