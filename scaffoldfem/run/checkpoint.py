"""Whole-state checkpoints that survive a kill and resume on any number of ranks.

State is stored by *input* indices (mesh-file node and cell numbers, see
:mod:`scaffoldfem.fem.gather`), so a checkpoint written on N ranks is read on M.
Files: ``checkpoints/ckpt_<step>.npz`` (written by rank 0 through a temporary file
and a rename) and ``ckpt_<step>.json`` (its SHA-256 and the scalar state, written
after the data): a checkpoint without a matching hash is ignored. Two are kept.

The model's part is its :class:`~scaffoldfem.model.state.ModelState` (the same
object that undoes a failed step): cell arrays as ``cell:<name>``, P1 node arrays
as ``node:<name>``, scalars under ``meta["model"]``; partition-local arrays are not
written (the model recomputes them on restore).
"""

from __future__ import annotations

import hashlib
import io
import json
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from dolfinx import fem
from mpi4py import MPI

import scaffoldfem  # noqa: F401  (MPI before dolfinx)
from scaffoldfem.fem.gather import node_to_dof_map
from scaffoldfem.files import BackgroundWrites, atomic_write_bytes, atomic_write_text
from scaffoldfem.model.state import ModelState

KEEP = 2


class StateMap:
    """Map per-rank P1 / cell arrays to and from global input-indexed arrays."""

    def __init__(self, mesh: Any, V: fem.FunctionSpace, Q: fem.FunctionSpace):
        self.comm = mesh.comm
        tdim = mesh.topology.dim
        imap = mesh.topology.index_map(tdim)
        self.n_owned = imap.size_local
        self.n_cells = imap.size_local + imap.num_ghosts
        geo = mesh.geometry
        self.node_to_dof = node_to_dof_map(mesh, V)
        self.node_gid = np.asarray(geo.input_global_indices, dtype=np.int64)
        self.n_nodes = self.comm.allreduce(int(self.node_gid.max(initial=-1)) + 1, op=MPI.MAX)
        ocs = np.asarray(mesh.topology.original_cell_index, dtype=np.int64)
        self.cell_gid_owned = ocs[: self.n_owned]
        self.n_cells_global = imap.size_global
        self.Q = Q
        self.qdof = Q.dofmap.list[:, 0]

    # -- to global (rank 0) ------------------------------------------------------
    def nodes_to_global(self, values: np.ndarray) -> np.ndarray | None:
        """Gather node values (indexed like P1 dofs) into a global array on rank 0."""
        vals = np.asarray(values)[self.node_to_dof]
        parts = self.comm.gather((self.node_gid, vals), root=0)
        if self.comm.rank != 0:
            return None
        shape = (self.n_nodes, *vals.shape[1:])
        out = np.zeros(shape)
        for gid, v in parts:
            out[gid] = v
        return out

    def cells_to_global(self, values: np.ndarray) -> np.ndarray | None:
        """Gather owned-cell values into a global array (by original cell index) on rank 0."""
        vals = np.asarray(values)[: self.n_owned]
        parts = self.comm.gather((self.cell_gid_owned, vals), root=0)
        if self.comm.rank != 0:
            return None
        out = np.zeros((self.n_cells_global, *vals.shape[1:]))
        for gid, v in parts:
            out[gid] = v
        return out

    # -- from global -----------------------------------------------------------------
    def nodes_from_global(self, glob: np.ndarray, dof_values: np.ndarray) -> None:
        """Fill P1 dof values (in place) from a global node array."""
        dof_values[self.node_to_dof] = glob[self.node_gid]

    def cells_from_global(self, glob: np.ndarray) -> np.ndarray:
        """Per-local-cell values (owned and ghost) from a global cell array."""
        f = fem.Function(self.Q)
        f.x.array[self.qdof[: self.n_owned]] = glob[self.cell_gid_owned]
        f.x.scatter_forward()  # ghost cells get their owners' values
        return f.x.array[self.qdof].copy()

    # -- a model state ---------------------------------------------------------------
    def state_to_global(self, state: ModelState) -> dict[str, np.ndarray]:
        """Arrays of ``state`` by mesh-file index (on rank 0; empty elsewhere)."""
        out = {f"cell:{k}": self.cells_to_global(v) for k, v in state.cells.items()}
        out.update({f"node:{k}": self.nodes_to_global(v) for k, v in state.nodes.items()})
        return {k: v for k, v in out.items() if v is not None}

    def state_from_global(
        self, arrays: dict[str, np.ndarray], scalars: dict[str, Any]
    ) -> ModelState:
        """The state of this partition from checkpoint arrays (every rank has them)."""
        state = ModelState(scalars=dict(scalars))
        for key, glob in arrays.items():
            kind, _, name = key.partition(":")
            if kind == "cell":
                state.cells[name] = self.cells_from_global(glob)
            elif kind == "node":
                vals = np.zeros((len(self.node_to_dof), *glob.shape[1:]))
                self.nodes_from_global(glob, vals)
                state.nodes[name] = vals
        return state


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def save(
    directory: Path, step: int, arrays: dict[str, np.ndarray], meta: dict[str, Any], comm: Any,
    writes: BackgroundWrites | None = None,
) -> None:
    """Write a checkpoint (rank 0 writes; arrays must be global, on rank 0).

    With ``writes`` rank 0 only hands the files to that worker (the arrays must not be
    changed afterwards; ``meta`` is serialised here) and goes on: the other ranks
    stop waiting for its disk (~0.6 s per checkpoint of the medium mesh).
    """
    if comm.rank == 0:
        text = json.dumps(meta, default=float)  # now: meta may hold live objects
        job = partial(_write, directory, step, dict(arrays), text)
        if writes is None:
            job()
        else:
            writes.submit(job)
    comm.barrier()


def _write(directory: Path, step: int, arrays: dict[str, np.ndarray], meta_json: str) -> None:
    """The data, then its hash and meta (the same JSON as ``json.dumps`` of both), then
    the removal of the checkpoints beyond the newest :data:`KEEP`."""
    directory.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    data = buf.getvalue()
    name = f"ckpt_{step:08d}"
    atomic_write_bytes(directory / f"{name}.npz", data)
    atomic_write_text(directory / f"{name}.json",
                      f'{{"sha256": "{_digest(data)}", "meta": {meta_json}}}')
    for old in sorted(directory.glob("ckpt_*.json"))[:-KEEP]:
        old.unlink(missing_ok=True)
        old.with_suffix(".npz").unlink(missing_ok=True)


def load_latest(directory: Path, comm: Any) -> tuple[dict[str, np.ndarray], dict[str, Any]] | None:
    """Newest checkpoint whose data matches its hash (broadcast to every rank), or None."""
    found = None
    if comm.rank == 0 and directory.is_dir():
        for side in sorted(directory.glob("ckpt_*.json"), reverse=True):
            try:
                info = json.loads(side.read_text())
                data = side.with_suffix(".npz").read_bytes()
            except (OSError, ValueError):
                continue
            if _digest(data) != info.get("sha256"):
                continue
            with np.load(io.BytesIO(data)) as z:
                found = ({k: z[k] for k in z.files}, info["meta"])
            break
    return comm.bcast(found, root=0)
