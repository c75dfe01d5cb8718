"""The run's tables: ``timeseries.csv``, ``regions.csv`` and ``centerline.csv``.

Rows are collected on every rank and written by rank 0 through a temporary file
and a rename after every output, so a killed run keeps its tables up to its last
output (and a resumed one cuts them back to its checkpoint).
"""

from __future__ import annotations

import io
from collections.abc import Callable
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


def csv_bytes(df: pd.DataFrame, header: bool = True) -> bytes:
    """CSV bytes of ``df`` (10 significant digits, no index)."""
    buf = io.StringIO()
    df.to_csv(buf, index=False, float_format="%.10g", header=header)
    return buf.getvalue().encode()


class CsvCache:
    """The CSV bytes of a growing table, formatting only the rows added since the last
    call (the tables were reformatted whole at every output: quadratic in the outputs).

    The bytes are those of :func:`csv_bytes` of the whole table: pandas formats each
    value on its own, so new rows whose frame has the columns and dtypes of the table
    so far join to the same text; new rows that do not (a new column, another dtype)
    make it format the whole table again.
    """

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """Forget the formatted rows (call when rows were replaced or changed in place)."""
        self._done = 0
        self._signature: tuple | None = None
        self._chunks: list[bytes] = []

    def __call__(self, items: list, frame: Callable[[list], pd.DataFrame]) -> bytes:
        """CSV bytes of ``frame(items)``.

        Args:
            items: The table's rows so far (only appended to between calls).
            frame: The table of a list of rows (e.g. ``pd.DataFrame``).
        """
        new = items[self._done:]
        if self._signature is not None and new:
            chunk = frame(new)
            cols = list(self._signature[0])
            if set(chunk.columns) == set(cols) and len(chunk.columns) == len(cols):
                # The whole table orders its columns by first appearance: so do these rows.
                chunk = chunk[cols]
            if _signature(chunk) == self._signature:
                self._chunks.append(csv_bytes(chunk, header=False))
                self._done = len(items)
                return b"".join(self._chunks)
        if self._signature is None or new:  # first call, or rows that do not fit
            whole = frame(items)
            self._chunks = [csv_bytes(whole)]
            self._signature = _signature(whole)
            self._done = len(items)
        return b"".join(self._chunks)


def _signature(df: pd.DataFrame) -> tuple:
    return tuple(df.columns), tuple(str(t) for t in df.dtypes)


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
        self._csv = {name: CsvCache() for name in TABLES}  # formatted rows per table
        self._scratch = fem.Function(model.disc.Q)  # P1 -> DG0 midpoint values
        self._regions = _RegionIndex(model.disc)

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
        self._scratch.interpolate(f)  # cell midpoint values
        return d.cells_of(self._scratch)

    def _region_rows(self) -> list[dict[str, Any]]:
        """Volume mean, min and max of every scalar field over every region present:
        per-region sums of contiguous slices (cells sorted by region once), three
        reductions per output (were four per field and region)."""
        d, t, ri = self.model.disc, self.model.t, self._regions
        fields = scalar_fields(self.model)
        local = np.array([ri.local(self._cell_values(f)[: d.n_owned]) for f in fields.values()])
        local = local.reshape(len(fields), 3, len(ri.names))
        s = self.comm.allreduce(local[:, 0], op=MPI.SUM)  # as the per-value sums were
        lo, hi = np.empty_like(local[:, 1]), np.empty_like(local[:, 2])
        self.comm.Allreduce(np.ascontiguousarray(local[:, 1]), lo, op=MPI.MIN)
        self.comm.Allreduce(np.ascontiguousarray(local[:, 2]), hi, op=MPI.MAX)
        rows = []
        for i, fname in enumerate(fields):
            for j, rname in enumerate(ri.names):
                v = float(ri.volume[j])
                rows.append({"t_day": t, "region": rname, "field": fname,
                             "mean": float(s[i, j]) / v if v else float("nan"),
                             "min": float(lo[i, j]), "max": float(hi[i, j])})
        return rows

    def _centerline(self) -> pd.DataFrame:
        n = len(self.centerline)
        cols = {"t_day": np.full(n, self.model.t), "z_mm": self.centerline[:, 2]}
        for fname, f in scalar_fields(self.model).items():
            cols[fname] = self.sampler(f)[:, 0]
        return pd.DataFrame(cols)

    def write(self, changed: bool = False) -> None:
        """Write the three tables (rank 0; no communication).

        Only the rows added since the last write are formatted (:class:`CsvCache`);
        ``changed``: rows were changed in place (e.g. columns added), format all.
        """
        if self.comm.rank != 0:
            return
        tables = {"timeseries": (self.rows, pd.DataFrame),
                  "regions": (self.region_rows, pd.DataFrame),
                  "centerline": (self.center_rows, pd.concat)}
        for name, (items, frame) in tables.items():
            if changed:
                self._csv[name].reset()
            atomic_write_bytes(self.out / f"{name}.csv", self._csv[name](items, frame))

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
        for cache in self._csv.values():
            cache.reset()


class _RegionIndex:
    """Owned cells sorted by region (stably: each region keeps its cell order), so a
    region's cells are one contiguous slice; the regions present and their volumes.

    A slice's ``np.sum`` adds the same values in the same order as the boolean
    selection it replaces: the means are bit for bit those of the per-region masks.
    """

    def __init__(self, d: Any):
        own = d.n_owned
        self.names = [r for r in CELL_TAGS if d.has[r]]
        tags = np.array([CELL_TAGS[r] for r in self.names], dtype=np.int64)
        reg = d.region[:own]
        slot = np.full(own, len(tags), dtype=np.int64)  # cells of no region present: last
        for j, tag in enumerate(tags):
            slot[reg == tag] = j
        self.order = np.argsort(slot, kind="stable")
        counts = np.bincount(slot, minlength=len(tags) + 1)[: len(tags)]
        self.bounds = np.r_[0, np.cumsum(counts)]
        self.vol = d.cell_volume[:own][self.order]
        local = np.array([np.sum(self.vol[a:b]) for a, b in self._slices()])
        self.volume = d.comm.allreduce(local, op=MPI.SUM) if len(local) else local

    def _slices(self) -> list[tuple[int, int]]:
        return list(zip(self.bounds[:-1], self.bounds[1:], strict=True))

    def local(self, vals: np.ndarray) -> np.ndarray:
        """(3, regions): local ∫ vals, min and max per region (±inf where none here)."""
        v = vals[self.order]
        wv = v * self.vol
        out = np.empty((3, len(self.names)))
        for j, (a, b) in enumerate(self._slices()):
            out[0, j] = np.sum(wv[a:b])
            out[1, j] = v[a:b].min(initial=np.inf)
            out[2, j] = v[a:b].max(initial=-np.inf)
        return out
