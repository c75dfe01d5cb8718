"""The smoothed cue fields of a tracer: which input each one smooths, when it is solved,
and its checkpoint state.

A cue (``"s"`` the CSPG level, ``"q"`` the saturated log-modulus) is re-smoothed
only when its input moved by more than a tolerance since the input last smoothed
(:meth:`SmoothedCues.offer`, decided collectively): that *accepted input* is part of
the model, so it is saved with the tracer (:meth:`SmoothedCues.get_state`) and a
resumed run smooths exactly the inputs an uninterrupted one does.

Three things keep the cost per solver step down without changing any result:

* the Helmholtz operator depends only on the mesh and ℓ, so one
  :class:`~scaffoldfem.fem.smoothing.HelmholtzFilter` per input kind (DG0 / P1)
  serves every cue (one matrix, one GAMG set-up), each cue solved into its own
  Function and started from the projection on its own last results
  (:mod:`scaffoldfem.fem.guess`: an input that moves smoothly as the scaffold degrades
  needs a few iterations, not ten; the history is checkpointed with the cue);
* a solve is deferred until a growth cone samples the cues (:meth:`SmoothedCues.solve`):
  a step in which no cone moves (die-back delay, all cones ended) costs the
  decision only, and the solve, when it comes, smooths the same accepted input;
* the nodal gradients of all cues solved together are one sparse product
  (:class:`~scaffoldfem.fem.smoothing.NodalGradient`).
"""

from __future__ import annotations  # noqa: I001  (scaffoldfem before dolfinx)

import numpy as np

import scaffoldfem  # noqa: F401
from dolfinx import fem
from mpi4py import MPI

from scaffoldfem.fem.guess import MAX_GUESS_LEVELS
from scaffoldfem.fem.smoothing import HelmholtzFilter, NodalGradient

__all__ = ["CUE_KEYS", "SmoothedCues"]

#: The cues, in the (rank-independent) order they are solved and saved.
CUE_KEYS = ("s", "q")
_KINDS = ("DG0", "P1")


class SmoothedCues:
    """Smoothed nodal cue fields and their nodal gradients (collective methods).

    Args:
        loc: Locator of the mesh.
        length: Smoothing length ℓ (mm).
    """

    def __init__(self, loc, length: float):
        self.loc, self.comm, self.length = loc, loc.comm, float(length)
        self._filters: dict[str, HelmholtzFilter] = {}
        self._grad: NodalGradient | None = None
        #: Accepted input per cue: (kind, values per local cell (DG0) or P1 dof).
        self.src: dict[str, tuple[str, np.ndarray]] = {}
        #: Cues whose accepted input is not solved yet.
        self.pending: set[str] = set()
        #: Last result per cue (P1): its warm start (and the key of its guess history).
        self.guess: dict[str, fem.Function] = {}
        #: Smoothed nodal values and nodal gradients per cue.
        self.smooth: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        #: The same as P1 Functions (for output).
        self.functions: dict[str, fem.Function] = {}
        #: Helmholtz solves so far (kept here: :meth:`destroy` drops the filters).
        self._solves = 0

    # -- decisions -----------------------------------------------------------------
    def filter(self, kind: str) -> HelmholtzFilter:
        """The filter of inputs of ``kind`` (created collectively on first use)."""
        if kind not in self._filters:
            self._filters[kind] = HelmholtzFilter(self.loc.mesh, self.length,
                                                  f"axon_cue_{kind}", source=kind)
        return self._filters[kind]

    def offer(self, key: str, kind: str, values: np.ndarray, tol: float) -> None:
        """Collective: accept ``values`` as the input of cue ``key`` unless the accepted
        one differs from it by at most ``tol`` everywhere (then nothing changes)."""
        old = self.src.get(key)
        n = self.loc.num_owned if kind == "DG0" else len(values)
        moved = (np.inf if old is None or old[0] != kind or old[1].shape != values.shape
                 else float(np.max(np.abs(values[:n] - old[1][:n]), initial=0.0)))
        if self.comm.allreduce(moved, op=MPI.MAX) <= tol:
            return
        self.src[key] = (kind, values.copy())
        self.pending.add(key)

    def drop(self, key: str) -> None:
        """Cue ``key`` is not in use this step (its history is forgotten)."""
        for d in (self.src, self.smooth, self.functions):
            d.pop(key, None)
        self.pending.discard(key)

    @property
    def ready(self) -> bool:
        """True when every accepted input is solved (the same on every rank)."""
        return not self.pending

    # -- solves ----------------------------------------------------------------------
    def _guess(self, key: str, kind: str) -> fem.Function:
        if key not in self.guess:
            self.guess[key] = fem.Function(self.filter(kind).V, name=f"axon_cue_{key}")
        return self.guess[key]

    def _set(self, keys: list[str], nodal: list[np.ndarray]) -> None:
        """Store the smoothed nodal values of ``keys`` with their nodal gradients."""
        if not keys:
            return
        if self._grad is None:
            self._grad = NodalGradient(self.loc)
        grads = self._grad(np.column_stack(nodal))
        for j, key in enumerate(keys):
            self.smooth[key] = (nodal[j], np.ascontiguousarray(grads[:, j]))
            self.functions[key] = self.guess[key].copy()

    def solve(self, time: float = float("nan")) -> None:
        """Collective: smooth the pending accepted inputs."""
        keys = [k for k in CUE_KEYS if k in self.pending]
        nodal = []
        for key in keys:
            kind, values = self.src[key]
            out = self.filter(kind).smooth(values, time, guess=self._guess(key, kind))
            self._solves += 1
            nodal.append(self.loc.nodal_values(out).copy())
        self._set(keys, nodal)
        self.pending.clear()

    def solves(self) -> int:
        """Number of Helmholtz solves so far (also after :meth:`destroy`)."""
        return self._solves

    # -- checkpoint --------------------------------------------------------------------
    def _nodes(self) -> tuple[np.ndarray, int]:
        own = self.loc.mesh.geometry.index_map().size_local
        return np.asarray(self.loc.mesh.geometry.input_global_indices, dtype=np.int64), own

    def _gather(self, idx: np.ndarray, vals: np.ndarray, root: int) -> np.ndarray | None:
        """Owned values with their input indices -> one array by input index on root."""
        parts = self.comm.gather((idx, vals), root=root)
        if parts is None:
            return None
        # Input indices are those of the mesh file: sized by the largest, not assumed dense.
        n = max((int(i.max()) + 1 for i, _ in parts if len(i)), default=0)
        out = np.full(n, np.nan)
        for i, v in parts:
            out[i] = v
        return out

    def _history(self, key: str, kind: str) -> list[np.ndarray]:
        """The projected-guess history of cue ``key`` as nodal values (local nodes)."""
        if key not in self.guess:
            return []
        f = self.filter(kind)
        tmp = fem.Function(f.V)
        own = f.V.dofmap.index_map.size_local
        out = []
        for h in f.history(self.guess[key]):
            tmp.x.array[:own] = h
            tmp.x.scatter_forward()
            out.append(self.loc.nodal_values(tmp).copy())
        return out

    def _set_history(self, key: str, kind: str, nodal: list[np.ndarray]) -> None:
        """Restore :meth:`_history` output (nodal values of the local nodes)."""
        f = self.filter(kind)
        tmp = fem.Function(f.V)
        own = f.V.dofmap.index_map.size_local
        perm = self.loc.p1_perm(f.V)
        arrays = []
        for h in nodal:
            tmp.x.array[perm] = h
            arrays.append(tmp.x.array[:own].copy())
        f.set_history(self._guess(key, kind), arrays)

    def get_state(self, root: int = 0) -> dict[str, np.ndarray] | None:
        """Collective: per cue in use its accepted input (``cue_<key>_src``, by input
        cell or node index, and ``cue_<key>_kind``), its last result
        (``cue_<key>_out``, by input node index) and whether that is the smoothing of
        the input (``cue_<key>_done``); on ``root``, None elsewhere."""
        loc = self.loc
        gid, own = self._nodes()
        state: dict[str, np.ndarray] = {}
        for key in CUE_KEYS:
            if key not in self.src:
                continue
            kind, values = self.src[key]
            if kind == "DG0":
                src = self._gather(loc.orig_cell[: loc.num_owned],
                                   values[: loc.num_owned], root)
            else:
                nod = values[loc.p1_perm(self.filter(kind).V)]
                src = self._gather(gid[:own], nod[:own], root)
            out = self._gather(gid[:own], loc.nodal_values(self.guess[key])[:own], root) \
                if key in self.guess else None
            hist = [self._gather(gid[:own], h[:own], root) for h in self._history(key, kind)]
            if src is None:
                continue
            state[f"cue_{key}_kind"] = np.int64(_KINDS.index(kind))
            state[f"cue_{key}_src"] = src
            state[f"cue_{key}_done"] = np.int64(key not in self.pending)
            if out is not None:
                state[f"cue_{key}_out"] = out
            for j, h in enumerate(hist):
                state[f"cue_{key}_h{j}"] = h
        return state if self.comm.rank == root else None

    def set_state(self, state: dict | None, root: int = 0) -> None:
        """Collective: restore :meth:`get_state` output (given on ``root``; keys absent:
        an older checkpoint, the cues are smoothed afresh) on any number of ranks."""
        loc = self.loc
        keys = {k: v for k, v in (state or {}).items() if str(k).startswith("cue_")}
        keys = self.comm.bcast(keys if self.comm.rank == root else None, root=root)
        for key in CUE_KEYS:
            self.drop(key)
        gid, _ = self._nodes()
        done_keys, done_nodal = [], []
        for key in CUE_KEYS:
            if f"cue_{key}_src" not in keys:
                continue
            kind = _KINDS[int(keys[f"cue_{key}_kind"])]
            src = np.asarray(keys[f"cue_{key}_src"])
            if kind == "DG0":
                values = src[loc.orig_cell[: loc.num_cells]]
            else:
                V = self.filter(kind).V
                values = np.empty(len(fem.Function(V).x.array))
                values[loc.p1_perm(V)] = src[gid]
            self.src[key] = (kind, values)
            self.pending.add(key)
            if f"cue_{key}_out" in keys:
                g = self._guess(key, kind)
                nodal = np.asarray(keys[f"cue_{key}_out"])[gid]
                g.x.array[loc.p1_perm(g.function_space)] = nodal
                hist = [np.asarray(keys[f"cue_{key}_h{j}"])[gid] for j in range(MAX_GUESS_LEVELS)
                        if f"cue_{key}_h{j}" in keys]
                self._set_history(key, kind, hist)
                if int(keys[f"cue_{key}_done"]):
                    done_keys.append(key)
                    done_nodal.append(nodal)
        # A result saved as done is used as saved (no solve): bit-identical on the same
        # ranks, the smoothing's own (~1e-10) difference on others.
        self._set(done_keys, done_nodal)
        self.pending.difference_update(done_keys)

    def destroy(self) -> None:
        for f in self._filters.values():
            f.destroy()
        self._filters.clear()
