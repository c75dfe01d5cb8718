"""The run's tables: ``timeseries.csv``, ``regions.csv`` and ``centerline.csv``.

Rows are collected on every rank and written by rank 0 through a temporary file
and a rename after every output, so a killed run keeps its tables up to its last
output (and a resumed one cuts them back to its checkpoint).
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from dolfinx import fem
from mpi4py import MPI

import scaffoldfem  # noqa: F401  (MPI before dolfinx)
from scaffoldfem.fem.sampling import PointSampler
from scaffoldfem.files import atomic_write_bytes
from scaffoldfem.model.coupled import CoupledModel
from scaffoldfem.mpi import on_rank0
from scaffoldfem.regions import CELL_TAGS

#: Points along the cord axis in centerline.csv.
CENTERLINE_POINTS = 201
#: The tables by file stem.
TABLES = ("timeseries", "regions", "centerline")


def csv_bytes(df: pd.DataFrame) -> bytes:
    """CSV bytes of ``df`` (10 significant digits, no index)."""
    buf = io.StringIO()
    df.to_csv(buf, index=False, float_format="%.10g")
    return buf.getvalue().encode()


def scalar_fields(model: CoupledModel) -> dict[str, fem.Function]:
    """The model's output fields that are scalar (everything but the displacement)."""
    return {k: f for k, f in model.fields().items() if k != "displacement"}


class Tables:
    """Rows of the three tables (collective methods unless noted).

    Args:
        out: Run directory.
        model: The model whose quantities are tabulated.
        cord_length: ``geometry.cord.length`` (mm): the centerline spans it.
    """

    def __init__(self, out: Path, model: CoupledModel, cord_length: float):
        self.out, self.model = Path(out), model
        self.comm = model.disc.comm
        z = np.linspace(-cord_length / 2, cord_length / 2, CENTERLINE_POINTS)
        self.centerline = np.column_stack([np.zeros_like(z), np.zeros_like(z), z])
        self.sampler = PointSampler(model.disc.mesh, self.centerline)
        self.rows: list[dict[str, float]] = []
        self.region_rows: list[dict[str, Any]] = []
        self.center_rows: list[pd.DataFrame] = []

    def last_time(self) -> float | None:
        """Time of the last output row (None before the first)."""
        return self.rows[-1]["t_day"] if self.rows else None

    def append(self, crossed: int) -> None:
        """Add the rows of the current time (``crossed``: axons across so far)."""
        self.rows.append(self._timeseries_row(crossed))
        self.region_rows.extend(self._region_rows())
        self.center_rows.append(self._centerline())

    def _timeseries_row(self, crossed: int) -> dict[str, float]:
        m = self.model
        row: dict[str, float] = {"t_day": m.t}
        means, masses, balance = m.lesion_means(), m.masses(), m.balance()
        for name in m.species_names:
            row[f"mass_{name}_ng"] = masses[name][0]
            for k, v in balance[name].items():
                row[f"{k}_{name}_ng"] = v
            row[f"bound_{name}_ng"] = masses[name][1]
            row[f"lesion_mean_{name}_ng_per_mL"] = means[name][0]
        for name, vals in m.exposure_means().items():  # enzymes, ROS; near-host factor
            if name in m.species_names:
                row[f"host_mean_{name}_ng_per_mL"] = vals["host"]
                row[f"occupancy_lesion_{name}"] = vals["occupancy_lesion"]
                if "dorsal_horn" in vals:  # the region exists (model/exposure.py)
                    row[f"dorsal_horn_mean_{name}_ng_per_mL"] = vals["dorsal_horn"]
                    row[f"occupancy_dorsal_horn_{name}"] = vals["occupancy_dorsal_horn"]
            else:
                row[f"lesion_mean_{name}_ng_per_mL"] = vals["lesion"]
        scaffold = m.scaffold_summary()
        row["scaffold_mass_fraction"] = scaffold["mass_fraction"]
        row["porosity_mean"] = scaffold["porosity"]
        row["modulus_mean_kPa"] = scaffold["modulus_kPa"]
        secreted = m.cells.secreted()
        for name, count in m.cells.surviving().items():  # graft cohorts
            row[f"cells_{name}_count"] = count
            for sp, ng in secreted[name].items():
                row[f"cells_{name}_secreted_{sp}_ng"] = ng
        row.update(m.cspg.summary())  # CSPG region means, ChABC (ng); empty when off
        if m.ingrowth.enabled:  # tissue ingrowth: filled pore fraction, cavitated volume
            ing = m.ingrowth
            row["tissue_fill_mean"] = ing.mean_fill()
            row["cavitation_volume_mm3"] = ing.volume
            row["cavitation_lesion_fraction"] = (ing.volume / ing.lesion_volume
                                                 if ing.lesion_volume > 0 else 0.0)
        row["axons_crossed"] = float(crossed)
        return row

    def _cell_values(self, f: fem.Function) -> np.ndarray:
        d = self.model.disc
        if f.function_space == d.Q:
            return d.cells_of(f)
        g = fem.Function(d.Q)
        g.interpolate(f)  # cell midpoint values
        return d.cells_of(g)

    def _region_rows(self) -> list[dict[str, Any]]:
        d, comm, t = self.model.disc, self.comm, self.model.t
        vol = d.cell_volume[: d.n_owned]
        reg = d.region[: d.n_owned]
        rows = []
        for fname, f in scalar_fields(self.model).items():
            vals = self._cell_values(f)[: d.n_owned]
            for rname, tag in CELL_TAGS.items():
                if not d.has[rname]:
                    continue
                sel = reg == tag
                s = comm.allreduce(float(np.sum(vals[sel] * vol[sel])), op=MPI.SUM)
                v = comm.allreduce(float(np.sum(vol[sel])), op=MPI.SUM)
                lo = comm.allreduce(float(vals[sel].min(initial=np.inf)), op=MPI.MIN)
                hi = comm.allreduce(float(vals[sel].max(initial=-np.inf)), op=MPI.MAX)
                rows.append(
                    {
                        "t_day": t,
                        "region": rname,
                        "field": fname,
                        "mean": s / v if v else float("nan"),
                        "min": lo,
                        "max": hi,
                    }
                )
        return rows

    def _centerline(self) -> pd.DataFrame:
        n = len(self.centerline)
        cols = {"t_day": np.full(n, self.model.t), "z_mm": self.centerline[:, 2]}
        for fname, f in scalar_fields(self.model).items():
            cols[fname] = self.sampler(f)[:, 0]
        return pd.DataFrame(cols)

    def write(self) -> None:
        """Write the three tables (rank 0; no communication)."""
        if self.comm.rank != 0:
            return
        atomic_write_bytes(self.out / "timeseries.csv", csv_bytes(pd.DataFrame(self.rows)))
        atomic_write_bytes(self.out / "regions.csv", csv_bytes(pd.DataFrame(self.region_rows)))
        atomic_write_bytes(self.out / "centerline.csv", csv_bytes(pd.concat(self.center_rows)))

    def reload(self, t: float) -> None:
        """Rows written before a checkpoint at ``t`` (rows after it are dropped)."""
        eps = 1e-9 * max(1.0, t)

        def read() -> dict[str, pd.DataFrame]:
            loaded = {}
            for name in TABLES:
                p = self.out / f"{name}.csv"
                df = pd.read_csv(p) if p.exists() else pd.DataFrame({"t_day": []})
                loaded[name] = df[df["t_day"] <= t + eps]
            return loaded

        # on_rank0: an error reading the tables reaches every rank (none waits forever).
        loaded = on_rank0(self.comm, read)
        self.rows = loaded["timeseries"].to_dict("records")
        self.region_rows = loaded["regions"].to_dict("records")
        self.center_rows = [loaded["centerline"]]
