""":class:`Results`: a run directory read back as Python objects.

Every attribute reads its file the first time it is used (tables and metrics are
then kept; the PyVista meshes are read anew by each call, so they can be changed
freely). A run without ``DONE`` (interrupted, failed, still running) is readable
too: the files it has so far are there, the others raise :class:`RunDirError`.
"""

from __future__ import annotations

import json
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyvista as pv

from scaffoldfem.axons.records import STATE_NAMES
from scaffoldfem.config.study import Study
from scaffoldfem.errors import RunDirError


class Results:
    """The files of a run directory (``scaffoldfem run --out DIR``) as Python objects.

    Example::

        res = Results("runs/baseline")
        res.metrics["axons"]["crossing_fraction"]
        res.timeseries.plot(x="t_day", y="lesion_mean_BDNF_ng_per_mL")
        res.final_mesh().plot(scalars="BDNF")

    Attributes:
        out: The run directory.
    """

    def __init__(self, out: str | Path):
        """Open the run directory ``out``.

        Raises:
            RunDirError: ``out`` is not a directory, or holds no run (no
                ``study.resolved.toml``).
        """
        self.out = Path(out)
        if not self.out.is_dir():
            raise RunDirError(f"{self.out}: no such run directory")
        if not (self.out / "study.resolved.toml").is_file():
            raise RunDirError(f"{self.out} holds no run (no study.resolved.toml)")

    def __repr__(self) -> str:
        return f"Results({str(self.out)!r}, {'done' if self.done else 'incomplete'})"

    def _path(self, name: str) -> Path:
        path = self.out / name
        if not path.exists():
            why = "" if self.done else " (the run is incomplete: no DONE)"
            raise RunDirError(f"{self.out}: no {name}{why}")
        return path

    @property
    def done(self) -> bool:
        """The run finished (``DONE`` is written last)."""
        return (self.out / "DONE").exists()

    @cached_property
    def study(self) -> Study:
        """The resolved study of the run (``study.resolved.toml``: every default filled in)."""
        return Study.from_toml(self.out / "study.resolved.toml")

    @cached_property
    def metrics(self) -> dict[str, Any]:
        """``metrics.json``: axons, exposure per growth factor, scaffold, mechanics, mesh,
        timings (see the README's run-directory table)."""
        return json.loads(self._path("metrics.json").read_text())

    @cached_property
    def timeseries(self) -> pd.DataFrame:
        """``timeseries.csv``: one row per output time (``t_day``): content and mass-balance
        terms of each factor, lesion means, scaffold mass, porosity, modulus, axons crossed."""
        return pd.read_csv(self._path("timeseries.csv"))

    @cached_property
    def regions(self) -> pd.DataFrame:
        """``regions.csv``: long table ``t_day, region, field, mean, min, max``."""
        return pd.read_csv(self._path("regions.csv"))

    @cached_property
    def centerline(self) -> pd.DataFrame:
        """``centerline.csv``: every field along the cord axis (``z_mm``) at every output time."""
        return pd.read_csv(self._path("centerline.csv"))

    def final_mesh(self) -> pv.UnstructuredGrid:
        """``fields/final.vtu``: the mesh at the end with every scalar field (point data)
        and the cell ``region`` ids of :mod:`scaffoldfem.regions`."""
        return pv.read(self._path("fields/final.vtu"))

    def fields(self) -> dict[float, pv.PolyData]:
        """The mid-sagittal slices (x = 0) written at every output time, by time in days
        (``fields/sagittal/t_*.vtp``; the full 3D series is ``fields/*.bp`` for ParaView)."""
        out: dict[float, pv.PolyData] = {}
        for i, path in enumerate(sorted(self._path("fields/sagittal").glob("t_*.vtp"))):
            ds = pv.read(path)
            t = float(np.ravel(ds.field_data["t_day"])[0]) if "t_day" in ds.field_data else i
            out[t] = ds
        return out

    @cached_property
    def trajectories(self) -> pv.PolyData:
        """``axons.vtp``: one polyline per axon (point data ``t_day``, ``speed_mm_per_day``,
        ``region``, ``c_<factor>``; cell data ``axon_id``, ``final_state``, ``crossed``)."""
        return pv.read(self._path("axons.vtp"))

    @cached_property
    def axons(self) -> pd.DataFrame:
        """One row per axon, from :attr:`trajectories`: ``axon_id``, ``final_state``
        (growing, crossed, stalled, exited), ``crossed``, ``points``, ``length_mm``,
        ``z_start_mm``, ``z_end_mm``, ``t_end_day``."""
        poly = self.trajectories
        x = np.asarray(poly.points, dtype=float)
        t = np.asarray(poly.point_data["t_day"], dtype=float)
        lines = np.asarray(poly.lines, dtype=np.int64)
        rows = []
        i = j = 0
        while i < len(lines):
            n = int(lines[i])
            ids = lines[i + 1 : i + 1 + n]
            seg = np.linalg.norm(np.diff(x[ids], axis=0), axis=1)
            rows.append({"points": n, "length_mm": float(seg.sum()),
                         "z_start_mm": float(x[ids[0], 2]), "z_end_mm": float(x[ids[-1], 2]),
                         "t_end_day": float(t[ids[-1]])})
            i += n + 1
            j += 1
        df = pd.DataFrame(rows, columns=["points", "length_mm", "z_start_mm", "z_end_mm",
                                         "t_end_day"])
        cells = poly.cell_data
        df.insert(0, "axon_id", np.asarray(cells["axon_id"]) if "axon_id" in cells else range(j))
        if "final_state" in cells:
            df.insert(1, "final_state", [STATE_NAMES[int(s)] for s in cells["final_state"]])
        if "crossed" in cells:
            df.insert(2, "crossed", np.asarray(cells["crossed"]).astype(bool))
        return df

    @property
    def figures(self) -> list[Path]:
        """The pictures in ``figures/`` (PNG, GIF, MP4), sorted by name."""
        return sorted(p for p in (self.out / "figures").glob("*") if p.is_file())
