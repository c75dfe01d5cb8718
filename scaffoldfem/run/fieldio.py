"""Field files of a run: VTX (or XDMF) series, sagittal slices, final grid, axons.

``fields/`` holds one ``.bp`` series per element family (``concentrations``,
``material``, ``displacement``; XDMF without ADIOS2), continued in new files
``<name>_<k>`` by resumed segment k; ``fields/sagittal/t_XXXX.vtp`` the
mid-sagittal slice at every output and ``fields/final.vtu`` the last state, both
gathered to rank 0 by mesh-file index. ``axons.vtp`` holds one polyline per axon.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dolfinx
import numpy as np

import scaffoldfem  # noqa: F401  (MPI before dolfinx)
from scaffoldfem.axons.tracer import STATE_NAMES
from scaffoldfem.fem.gather import MeshGather
from scaffoldfem.model.coupled import CoupledModel
from scaffoldfem.run.tables import scalar_fields


def _save(obj: Any, path: Path) -> None:
    """Save a PyVista object through a temporary file and a rename.

    PolyData (``.vtp``: the slices, the axons) is LZ4-compressed: ParaView and PyVista
    read it, meshio reads no ``.vtp`` at all, and it writes 4x faster than zlib for a
    1.4x larger file (medium mesh: 20 against 77 ms per slice, on rank 0 while the
    other ranks wait). ``final.vtu`` keeps zlib, which meshio can read (not LZ4).
    """
    tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")
    obj.save(tmp, compression="lz4" if path.suffix == ".vtp" else "zlib")
    tmp.replace(path)


class FieldOutput:
    """Field series and gathered grids of a model (collective methods).

    Args:
        out: Run directory.
        model: The model whose :meth:`~CoupledModel.fields` are written.
    """

    def __init__(self, out: Path, model: CoupledModel):
        d = model.disc
        self.dir, self.model, self.comm = Path(out) / "fields", model, d.comm
        self.rank0 = self.comm.rank == 0
        self.gather = MeshGather(d.mesh, d.V, d.Q)
        self.region_dg = d.dg0("region", d.region.astype(float))
        self.writers: list[Any] = []

    def open(self, segment: int) -> None:
        """Open the series of run segment ``segment`` (0, then one more per resume)."""
        d, fields = self.model.disc, self.model.fields()
        if self.rank0:
            (self.dir / "sagittal").mkdir(parents=True, exist_ok=True)
        self.comm.barrier()
        p1 = [f for f in fields.values() if f.function_space == d.V]
        dg = [f for f in fields.values() if f.function_space == d.Q] + [self.region_dg]
        vec = [f for n, f in fields.items() if n == "displacement"]
        tag = f"_{segment}" if segment else ""
        groups = {f"concentrations{tag}": p1, f"material{tag}": dg, f"displacement{tag}": vec}
        for name, funcs in groups.items():
            if not funcs:
                continue
            if dolfinx.has_adios2:
                # The mesh never moves (the displacement is a field): written once, not
                # at every output.
                self.writers.append(
                    dolfinx.io.VTXWriter(self.comm, self.dir / f"{name}.bp", funcs, engine="BP4",
                                         mesh_policy=dolfinx.io.VTXMeshPolicy.reuse)
                )
            else:  # XDMF fallback (P1 / DG0 only)
                xf = dolfinx.io.XDMFFile(self.comm, self.dir / f"{name}.xdmf", "w")
                xf.write_mesh(d.mesh)
                self.writers.append((xf, funcs))

    def write(self, t: float) -> None:
        """Append the fields at time ``t`` to every series."""
        for w in self.writers:
            if isinstance(w, tuple):
                xf, funcs = w
                for f in funcs:
                    xf.write_function(f, t)
            else:
                w.write(t)

    def close(self) -> None:
        for w in self.writers:
            (w[0] if isinstance(w, tuple) else w).close()
        self.writers = []

    def _grid_data(self) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        d, g = self.model.disc, self.gather
        point, cell = {}, {}
        for name, f in scalar_fields(self.model).items():
            if f.function_space == d.V:
                point[name] = g.point_values(f)
            else:
                cell[name] = g.cell_values(f)
        cell["region"] = g.cell_array(d.region)
        return point, cell

    def sagittal(self, index: int) -> None:
        """The mid-sagittal slice ``sagittal/t_<index>.vtp`` of the current state."""
        point, cell = self._grid_data()
        if not self.rank0:
            return
        grid = self.gather.grid(point, cell)
        sl = grid.slice(normal="x", origin=(0.0, 0.0, 0.0))
        sl.field_data["t_day"] = np.array([self.model.t])
        _save(sl, self.dir / "sagittal" / f"t_{index:04d}.vtp")

    def final(self) -> None:
        """The whole gathered grid ``final.vtu`` of the current state."""
        point, cell = self._grid_data()
        if self.rank0:
            grid = self.gather.grid(point, cell)
            grid.field_data["t_day"] = np.array([self.model.t])
            _save(grid, self.dir / "final.vtu")


def write_axons(path: Path, tr: dict | None) -> None:
    """``axons.vtp``: one polyline per axon with its point and cell data.

    Args:
        path: Output file.
        tr: Trajectories gathered by ``Tracer.trajectories`` (None: nothing to
            write, e.g. on ranks other than the gathering one).
    """
    if tr is None:
        return
    import pyvista as pv  # heavy; rank 0 only

    offsets = np.asarray(tr["offsets"])
    lines = []
    for j in range(len(offsets) - 1):
        n = offsets[j + 1] - offsets[j]
        lines.extend([n, *range(offsets[j], offsets[j + 1])])
    poly = pv.PolyData(np.asarray(tr["x"], dtype=float), lines=np.asarray(lines, dtype=np.int64))
    poly.point_data["t_day"] = np.asarray(tr["t"], dtype=float)
    poly.point_data["speed_mm_per_day"] = np.asarray(tr["speed"], dtype=float)
    poly.point_data["region"] = np.asarray(tr["region"]).astype(np.int32)
    for name, vals in tr["concentration"].items():
        poly.point_data[f"c_{name}"] = np.asarray(vals, dtype=float)
    fs = np.asarray(tr["final_state"])
    codes = np.array(
        [
            STATE_NAMES.index(str(x)) if not np.issubdtype(fs.dtype, np.number) else int(x)
            for x in fs
        ],
        dtype=np.int32,
    )
    poly.cell_data["axon_id"] = np.asarray(tr["axons"], dtype=np.int64)
    poly.cell_data["final_state"] = codes
    # An axon that crossed and then stalled or exited still crossed.
    poly.cell_data["crossed"] = np.asarray(tr["crossed"]).astype(np.int32)
    _save(poly, path)
