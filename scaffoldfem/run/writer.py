"""The run directory writer: fields, tables, metrics, checkpoints, progress, DONE.

Public contract (issue 5): ``study.resolved.toml``, ``provenance.json``, ``fields/``
(VTX ``.bp`` per element family, or XDMF without ADIOS2; ``final.vtu`` and the
mid-sagittal ``sagittal/t_XXXX.vtp`` slices for pictures), ``axons.vtp``,
``timeseries.csv``, ``regions.csv``, ``centerline.csv``, ``metrics.json``,
``figures/``, ``checkpoints/``, ``DONE``. Tables and JSON are written by rank 0
through a temporary file and a rename.
"""

from __future__ import annotations

import io
import math
import signal
import sys
import time
from pathlib import Path
from typing import Any

import dolfinx
import numpy as np
import pandas as pd
import ufl
from dolfinx import fem
from mpi4py import MPI

import scaffoldfem  # noqa: F401  (MPI before dolfinx)
from scaffoldfem.config.study import Study
from scaffoldfem.fem.compat import integrate
from scaffoldfem.fem.gather import MeshGather, PointSampler
from scaffoldfem.files import atomic_write_bytes, atomic_write_json, atomic_write_text
from scaffoldfem.regions import CELL_TAGS, cell_tag
from scaffoldfem.run import checkpoint as ckpt
from scaffoldfem.run import provenance as prov

#: Regions averaged as "the lesion" (the implant and any gap).
LESION_REGIONS = ("scaffold", "channel", "cavity")
#: Points along the cord axis in centerline.csv.
CENTERLINE_POINTS = 201
#: Seconds between progress lines when not on a terminal (batch logs).
LOG_EVERY_S = 30.0


def _csv(df: pd.DataFrame) -> bytes:
    buf = io.StringIO()
    df.to_csv(buf, index=False, float_format="%.10g")
    return buf.getvalue().encode()


class RunWriter:
    """Writes everything a run leaves behind (collective methods unless noted).

    Args:
        out: Run directory (exists).
        study: The validated study.
        mesh_path: Mesh file (hashed into the provenance).
        comm: Communicator of the run.
        quiet: No progress line.
    """

    def __init__(self, out: Path, study: Study, mesh_path: Path, comm: Any, quiet: bool = False):
        self.out, self.study, self.mesh_path, self.comm = Path(out), study, Path(mesh_path), comm
        self.quiet = quiet
        self.rank0 = comm.rank == 0
        self.started = prov.now()
        self.wall0 = time.perf_counter()
        self._last_log = -math.inf
        self.stop_requested = False
        self._signal = False
        self._crossed = 0  # axons crossed at the last output (refreshed collectively there)
        self.segment = 0
        self.vtx: list[Any] = []
        self.dt = study.time.dt
        for sig in (signal.SIGTERM, signal.SIGINT):
            try:
                signal.signal(sig, self._on_signal)
            except ValueError:  # not in the main thread (tests)
                pass

    def _on_signal(self, signum: int, frame: Any) -> None:
        self._signal = True

    # ------------------------------------------------------------------ set-up
    def attach(self, model: Any, tracer: Any, timing: dict[str, float]) -> None:
        """Bind the model and tracer; compile the forms the tables need."""
        self.model, self.tracer, self.timing = model, tracer, timing
        m = model
        self.gather = MeshGather(m.mesh, m.V, m.Q)
        self.state = ckpt.StateMap(m.mesh, m.V, m.Q)
        self.region_dg = m.dg0("region", m.region.astype(float))
        self.lesion_vol = sum(m.volumes[r] for r in LESION_REGIONS)
        self.grey_vol = m.volumes["grey_matter"]
        dxl = sum(
            (m.dx(cell_tag(r)) for r in LESION_REGIONS[1:]), m.dx(cell_tag(LESION_REGIONS[0]))
        )
        # ∫_region c = w·c with w_i = ∫_region φ_i: two dot products per species and
        # step instead of two volume assemblies (this runs every step, for the AUCs).
        v = ufl.TestFunction(m.V)
        self.w_lesion = m._owned_vector(v * dxl)
        self.w_grey = m._owned_vector(v * m.dx(cell_tag("grey_matter")))
        L = self.study.geometry.cord.length
        z = np.linspace(-L / 2, L / 2, CENTERLINE_POINTS)
        self.centerline = np.column_stack([np.zeros_like(z), np.zeros_like(z), z])
        self.sampler = PointSampler(m.mesh, self.centerline)
        self.acc = {
            sp.name: {
                "auc": 0.0,
                "peak": 0.0,
                "in_window": 0.0,
                "grey_auc": 0.0,
                "last": 0.0,
                "last_grey": 0.0,
            }
            for sp in m.species
        }
        self.rows: list[dict[str, float]] = []
        self.region_rows: list[dict[str, Any]] = []
        self.center_rows: list[pd.DataFrame] = []
        self.out_index = 0
        self.next_output = 0.0
        self.next_ckpt = self.study.output.checkpoint_interval
        self.iters: dict[str, int] = {}
        self.step_count = 0
        self._open_fields()

    def _open_fields(self) -> None:
        m = self.model
        fields = m.fields()
        d = self.out / "fields"
        if self.rank0:
            (d / "sagittal").mkdir(parents=True, exist_ok=True)
        self.comm.barrier()
        p1 = [f for f in fields.values() if f.function_space == m.V]
        dg = [f for f in fields.values() if f.function_space == m.Q] + [self.region_dg]
        vec = [f for n, f in fields.items() if n == "displacement"]
        tag = f"_{self.segment}" if self.segment else ""
        groups = {f"concentrations{tag}": p1, f"material{tag}": dg, f"displacement{tag}": vec}
        if dolfinx.has_adios2:
            for name, funcs in groups.items():
                if funcs:
                    self.vtx.append(
                        dolfinx.io.VTXWriter(self.comm, d / f"{name}.bp", funcs, engine="BP4")
                    )
        else:  # XDMF fallback (P1 / DG0 only)
            for name, funcs in groups.items():
                if funcs:
                    xf = dolfinx.io.XDMFFile(self.comm, d / f"{name}.xdmf", "w")
                    xf.write_mesh(m.mesh)
                    self.vtx.append((xf, funcs))

    # ------------------------------------------------------------------ time events
    def next_event(self, t: float) -> float:
        """Next output or checkpoint time after ``t`` (steps land on it)."""
        eps = 1e-9 * max(1.0, t)
        cands = [x for x in (self.next_output, self.next_ckpt) if x > t + eps]
        return min(cands) if cands else math.inf

    def _lesion_means(self) -> dict[str, tuple[float, float]]:
        out = {}
        for sp in self.model.species:
            les, gry = self.comm.allreduce(
                np.array(
                    [self.model._dot(self.w_lesion, sp.c), self.model._dot(self.w_grey, sp.c)]
                ),
                op=MPI.SUM,
            )
            out[sp.name] = (
                les / self.lesion_vol if self.lesion_vol else 0.0,
                gry / self.grey_vol if self.grey_vol else 0.0,
            )
        return out

    def after_step(self, h: float, iters: dict[str, int]) -> None:
        """Accumulate exposure metrics over the step just taken; progress line."""
        self.iters = iters
        self.step_count += 1
        self.dt = h
        for (name, (les, gry)), cfg in zip(
            self._lesion_means().items(), self.study.species, strict=True
        ):
            a = self.acc[name]
            a["auc"] += 0.5 * h * (a["last"] + les)
            a["grey_auc"] += 0.5 * h * (a["last_grey"] + gry)
            a["peak"] = max(a["peak"], les)
            inside = [cfg.window_low <= v <= cfg.window_high for v in (a["last"], les)]
            a["in_window"] += h * 0.5 * sum(inside)
            a["last"], a["last_grey"] = les, gry
        flag = self.comm.allreduce(int(self._signal), op=MPI.MAX)
        self.stop_requested = bool(flag)
        self._progress()

    def _progress(self, force: bool = False) -> None:
        if self.quiet or not self.rank0:
            return
        now = time.perf_counter()
        tty = sys.stdout.isatty()
        if not force and not tty and now - self._last_log < LOG_EVERY_S:
            return
        self._last_log = now
        m, T = self.model, self.study.time.duration
        wall = now - self.wall0
        eta = wall * (T - m.t) / m.t if m.t > 0 else float("nan")
        its = " ".join(f"{k}:{v}" for k, v in self.iters.items())
        crossed = self._crossed
        line = (
            f"day {m.t:7.2f}/{T:g}  dt {self.dt:.3g}  its [{its}]  crossed {crossed}"
            f"  wall {wall:6.0f}s  eta {eta:6.0f}s"
        )
        print("\r" + line if tty else line, end="" if tty else "\n", flush=True)

    def log(self, msg: str) -> None:
        """A message on rank 0 (warnings from other ranks go through Python logging)."""
        if self.rank0 and not self.quiet:
            print(("\n" if sys.stdout.isatty() else "") + msg, flush=True)

    # ------------------------------------------------------------------ outputs
    def maybe_output_and_checkpoint(self, dt: float) -> None:
        """Write outputs / a checkpoint when their time has come."""
        t = self.model.t
        eps = 1e-9 * max(1.0, t)
        if t >= self.next_output - eps:
            self.output()
        if t >= self.next_ckpt - eps:
            self.checkpoint(dt)
            self.next_ckpt += self.study.output.checkpoint_interval

    def output(self) -> None:
        """Append table rows and field snapshots at the current time."""
        t = self.model.t
        if self.rows and abs(self.rows[-1]["t_day"] - t) < 1e-12:
            return  # already written at this time (e.g. the final output)
        self._crossed = self.tracer.n_crossed() if self.tracer is not None else 0
        self.rows.append(self._timeseries_row())
        self.region_rows.extend(self._region_rows())
        self.center_rows.append(self._centerline())
        for w in self.vtx:
            if isinstance(w, tuple):
                xf, funcs = w
                for f in funcs:
                    xf.write_function(f, t)
            else:
                w.write(t)
        self._sagittal()
        self._write_tables()
        self.out_index += 1
        self.next_output = self.out_index * self.study.output.interval
        while self.next_output <= t + 1e-9 * max(1.0, t):
            self.out_index += 1
            self.next_output = self.out_index * self.study.output.interval

    def _timeseries_row(self) -> dict[str, float]:
        m = self.model
        row: dict[str, float] = {"t_day": m.t}
        means = self._lesion_means()
        for sp in m.species:
            row[f"mass_{sp.name}_ng"] = m.content(sp)
            for k, v in sp.totals.items():
                row[f"{k}_{sp.name}_ng"] = v
            row[f"bound_{sp.name}_ng"] = m.bound(sp)
            row[f"lesion_mean_{sp.name}_ng_per_mL"] = means[sp.name][0]
        row["scaffold_mass_fraction"] = m.mass_fraction_remaining()
        row["porosity_mean"] = self._scaffold_mean(m.phi)
        row["modulus_mean_kPa"] = self._scaffold_mean(m.E)
        row["axons_crossed"] = float(self._crossed)
        return row

    def _scaffold_mean(self, f: fem.Function) -> float:
        m = self.model
        vol = m.volumes["scaffold"]
        return integrate(f * m.dx(cell_tag("scaffold")), self.comm) / vol if vol else float("nan")

    def _cell_values(self, f: fem.Function) -> np.ndarray:
        m = self.model
        if f.function_space == m.Q:
            return m.cells_of(f)
        g = fem.Function(m.Q)
        g.interpolate(f)  # cell midpoint values
        return m.cells_of(g)

    def _scalar_fields(self) -> dict[str, fem.Function]:
        return {k: f for k, f in self.model.fields().items() if k != "displacement"}

    def _region_rows(self) -> list[dict[str, Any]]:
        m = self.model
        vol = m.cell_volume()[: m.n_owned]
        reg = m.region[: m.n_owned]
        rows = []
        for fname, f in self._scalar_fields().items():
            vals = self._cell_values(f)[: m.n_owned]
            for rname, tag in CELL_TAGS.items():
                if not m.has[rname]:
                    continue
                sel = reg == tag
                s = self.comm.allreduce(float(np.sum(vals[sel] * vol[sel])), op=MPI.SUM)
                v = self.comm.allreduce(float(np.sum(vol[sel])), op=MPI.SUM)
                lo = self.comm.allreduce(float(vals[sel].min(initial=np.inf)), op=MPI.MIN)
                hi = self.comm.allreduce(float(vals[sel].max(initial=-np.inf)), op=MPI.MAX)
                rows.append(
                    {
                        "t_day": m.t,
                        "region": rname,
                        "field": fname,
                        "mean": s / v if v else float("nan"),
                        "min": lo,
                        "max": hi,
                    }
                )
        return rows

    def _centerline(self) -> pd.DataFrame:
        cols = {"t_day": np.full(len(self.centerline), self.model.t), "z_mm": self.centerline[:, 2]}
        for fname, f in self._scalar_fields().items():
            cols[fname] = self.sampler(f)[:, 0]
        return pd.DataFrame(cols)

    def _grid_data(self) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        m, g = self.model, self.gather
        point, cell = {}, {}
        for name, f in self._scalar_fields().items():
            if f.function_space == m.V:
                point[name] = g.point_values(f)
            else:
                cell[name] = g.cell_values(f)
        cell["region"] = g.cell_array(m.region)
        return point, cell

    def _sagittal(self) -> None:
        point, cell = self._grid_data()
        if not self.rank0:
            return
        grid = self.gather.grid(point, cell)
        sl = grid.slice(normal="x", origin=(0.0, 0.0, 0.0))
        sl.field_data["t_day"] = np.array([self.model.t])
        path = self.out / "fields" / "sagittal" / f"t_{self.out_index:04d}.vtp"
        tmp = path.with_name(f".{path.name}.tmp.vtp")
        sl.save(tmp)
        tmp.replace(path)

    def _write_tables(self) -> None:
        if not self.rank0:
            return
        atomic_write_bytes(self.out / "timeseries.csv", _csv(pd.DataFrame(self.rows)))
        atomic_write_bytes(self.out / "regions.csv", _csv(pd.DataFrame(self.region_rows)))
        atomic_write_bytes(self.out / "centerline.csv", _csv(pd.concat(self.center_rows)))

    # ------------------------------------------------------------------ checkpoints
    def checkpoint(self, dt: float) -> None:
        """Write the whole state (collective; rank 0 writes)."""
        m, s = self.model, self.state
        arrays: dict[str, Any] = {}

        def put(key: str, value: np.ndarray | None) -> None:
            if value is not None:
                arrays[key] = value

        put("cell:w", s.cells_to_global(m.w))
        put("cell:rho", s.cells_to_global(m.rho))
        put("cell:eps", s.cells_to_global(m.eps_cells))
        put("cell:phi_used", s.cells_to_global(m.phi_used))
        put("cell:alpha_prev", s.cells_to_global(m.cells_of(m.alpha_prev)))
        put("cell:E_mech", s.cells_to_global(m.E_mech))
        put("node:m", s.nodes_to_global(m.m.x.array))
        for sp in m.species:
            put(f"cell:b:{sp.name}", s.cells_to_global(sp.b))
            put(f"node:c:{sp.name}", s.nodes_to_global(sp.c.x.array))
            put(f"node:c_old:{sp.name}", s.nodes_to_global(sp.c_old.x.array))
        if m.mech_solver is not None and self.study.mechanics.degree == 1:
            put("node:u", s.nodes_to_global(m.u.x.array.reshape(-1, 3)))
        if self.tracer is not None:
            st = self.tracer.get_state(root=0)
            if st is not None:
                for k, v in st.items():
                    arrays[f"tracer:{k}"] = np.asarray(v)
        meta = {
            "t": m.t,
            "nstep": m.nstep,
            "dt_last": m.dt_last,
            "dt": dt,
            "t_mech": m.t_mech if math.isfinite(m.t_mech) else None,
            "mech_solves": m.mech_solves,
            "max_strain_jump": m.max_strain_jump,
            "max_von_mises": m.max_von_mises,
            "totals": {sp.name: sp.totals for sp in m.species},
            "content0": {sp.name: sp.content0 for sp in m.species},
            "acc": self.acc,
            "out_index": self.out_index,
            "next_output": self.next_output,
            "next_ckpt": self.next_ckpt,
            "segment": self.segment,
            "timing": self.timing,
            "step_count": self.step_count,
            "alpha_history_steps": m._alpha_history_steps,
        }
        ckpt.save(self.out / "checkpoints", m.nstep, arrays, meta, self.comm)

    def restore(self) -> bool:
        """Resume from the newest valid checkpoint; False if there is none."""
        found = ckpt.load_latest(self.out / "checkpoints", self.comm)
        if found is None:
            self.log("no valid checkpoint: starting from t = 0")
            return False
        arrays, meta = found
        m, s = self.model, self.state
        m.w[:] = s.cells_from_global(arrays["cell:w"])
        m.rho[:] = s.cells_from_global(arrays["cell:rho"])
        m.eps_cells[:] = s.cells_from_global(arrays["cell:eps"])
        m.apply_coefficients(s.cells_from_global(arrays["cell:phi_used"]))
        m.set_cells(m.alpha_prev, s.cells_from_global(arrays["cell:alpha_prev"]))
        m.refresh_weights()
        m.E_mech = s.cells_from_global(arrays["cell:E_mech"])
        s.nodes_from_global(arrays["node:m"], m.m.x.array)
        for sp in m.species:
            sp.b[:] = s.cells_from_global(arrays[f"cell:b:{sp.name}"])
            s.nodes_from_global(arrays[f"node:c:{sp.name}"], sp.c.x.array)
            s.nodes_from_global(arrays[f"node:c_old:{sp.name}"], sp.c_old.x.array)
            sp.totals = dict(meta["totals"][sp.name])
            sp.content0 = meta["content0"][sp.name]
        m.t, m.nstep, m.dt_last = meta["t"], meta["nstep"], meta["dt_last"]
        m.t_mech = -math.inf if meta["t_mech"] is None else meta["t_mech"]
        m.mech_solves = meta["mech_solves"]
        m._alpha_history_steps = meta.get("alpha_history_steps", 0)
        m.max_strain_jump, m.max_von_mises = meta["max_strain_jump"], meta["max_von_mises"]
        if m.mech_solver is not None:
            if "node:u" in arrays:
                u = m.u.x.array.reshape(-1, 3)
                s.nodes_from_global(arrays["node:u"], u)
                m.post_mechanics()
            else:
                m.solve_mechanics(m.t, force=True)
        if self.tracer is not None:
            st = {k.split(":", 1)[1]: v for k, v in arrays.items() if k.startswith("tracer:")}
            self.tracer.set_state(st if self.rank0 else None, root=0)
        self.acc = meta["acc"]
        self.out_index, self.next_output = meta["out_index"], meta["next_output"]
        self.next_ckpt = meta["next_ckpt"]
        self.step_count = meta["step_count"]
        self.dt = meta["dt"]
        self.timing.update({k: v for k, v in meta["timing"].items() if k not in ("mesh", "setup")})
        self._reload_tables(m.t)
        self.close()  # continue the field series in new files (segment k)
        self.segment = meta["segment"] + 1
        self._open_fields()
        m.invalidate_transport()
        self.log(f"resumed from the checkpoint at t = {m.t:g} day")
        return True

    def _reload_tables(self, t: float) -> None:
        eps = 1e-9 * max(1.0, t)
        loaded = None
        if self.rank0:
            loaded = {}
            for name in ("timeseries", "regions", "centerline"):
                p = self.out / f"{name}.csv"
                df = pd.read_csv(p) if p.exists() else pd.DataFrame({"t_day": []})
                loaded[name] = df[df["t_day"] <= t + eps]
        loaded = self.comm.bcast(loaded, root=0)
        self.rows = loaded["timeseries"].to_dict("records")
        self.region_rows = loaded["regions"].to_dict("records")
        self.center_rows = [loaded["centerline"]]

    # ------------------------------------------------------------------ the end
    def metrics(self) -> dict[str, Any]:
        """The final summary (identical on every rank)."""
        m = self.model
        species = {}
        for sp, cfg in zip(m.species, self.study.species, strict=True):
            a = self.acc[sp.name]
            species[sp.name] = {
                "mass_balance_rel_error": m.balance_error(sp),
                "lesion_auc_ng_day_per_mL": a["auc"],
                "peak_lesion_mean_ng_per_mL": a["peak"],
                "time_in_window_day": a["in_window"],
                "grey_matter_auc_ng_day_per_mL": a["grey_auc"],
                "window_ng_per_mL": [cfg.window_low, cfg.window_high],
                "final_mass_ng": m.content(sp),
                "bound_ng": m.bound(sp),
            }
        tdim = m.mesh.topology.dim
        out = {
            "species": species,
            "scaffold": {
                "mass_remaining_fraction": m.mass_fraction_remaining(),
                "porosity_mean_final": self._scaffold_mean(m.phi),
                "modulus_mean_final_kPa": self._scaffold_mean(m.E),
            },
            "mechanics": {
                "max_von_mises_kPa": m.max_von_mises,
                "max_interface_strain_jump": m.max_strain_jump,
                "solves": m.mech_solves,
            },
            "mesh": {
                "cells": m.mesh.topology.index_map(tdim).size_global,
                "vertices": m.mesh.topology.index_map(0).size_global,
                "ranks": self.comm.size,
            },
            "time": {"duration_day": m.t, "steps": self.step_count},
        }
        if self.tracer is not None:
            out["axons"] = self.tracer.metrics()
        return out

    def finish(self, dt: float) -> None:
        """Final outputs, metrics, provenance, figures and DONE (written last)."""
        tic = time.perf_counter()
        self.output()
        self.checkpoint(dt)
        self._write_final_grid()
        self._write_axons()
        metrics = self.metrics()
        for name, sp in metrics["species"].items():
            if sp["mass_balance_rel_error"] > 1e-6:  # an identity of the scheme: a bug
                self.log(f"warning: {name} mass balance error {sp['mass_balance_rel_error']:.2e}")
        self.timing["output"] = self.timing.get("output", 0.0) + time.perf_counter() - tic
        self.timing["total"] = time.perf_counter() - self.wall0
        metrics["timing_s"] = dict(self.timing)
        memory = prov.peak_memory_mb(self.comm)
        versions = prov.versions()
        if self.rank0:
            atomic_write_json(self.out / "metrics.json", metrics)
            atomic_write_json(
                self.out / "provenance.json",
                {
                    "versions": versions,
                    "mpi_size": self.comm.size,
                    "host": prov.host(),
                    "start": self.started,
                    "end": prov.now(),
                    "study_sha256": self.study.digest(),
                    "mesh_file": str(self.mesh_path),
                    "mesh_sha256": prov.file_sha256(self.mesh_path),
                    "timing_s": dict(self.timing),
                    "peak_memory": memory,
                    "resumed_segments": self.segment,
                },
            )
            if self.study.output.figures:
                try:
                    from scaffoldfem.viz.plots import plot_run

                    plot_run(self.out)
                except Exception as err:  # a picture must never lose a finished run
                    print(f"warning: figures not drawn: {type(err).__name__}: {err}", flush=True)
            atomic_write_text(
                self.out / "DONE", f"finished {prov.now()} t = {self.model.t:g} day\n"
            )
        self._progress(force=True)
        if self.rank0 and not self.quiet and sys.stdout.isatty():
            print()
        self.comm.barrier()

    def _write_final_grid(self) -> None:
        point, cell = self._grid_data()
        if self.rank0:
            grid = self.gather.grid(point, cell)
            grid.field_data["t_day"] = np.array([self.model.t])
            path = self.out / "fields" / "final.vtu"
            tmp = path.with_name(".final.tmp.vtu")
            grid.save(tmp)
            tmp.replace(path)

    def _write_axons(self) -> None:
        if self.tracer is None:
            return
        tr = self.tracer.trajectories(root=0)
        if not self.rank0 or tr is None:
            return
        import pyvista as pv

        from scaffoldfem.axons.tracer import STATE_NAMES

        offsets = np.asarray(tr["offsets"])
        lines = []
        for j in range(len(offsets) - 1):
            n = offsets[j + 1] - offsets[j]
            lines.extend([n, *range(offsets[j], offsets[j + 1])])
        poly = pv.PolyData(
            np.asarray(tr["x"], dtype=float), lines=np.asarray(lines, dtype=np.int64)
        )
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
        path = self.out / "axons.vtp"
        tmp = path.with_name(".axons.tmp.vtp")
        poly.save(tmp)
        tmp.replace(path)

    def close(self) -> None:
        """Close field writers (collective)."""
        for w in self.vtx:
            (w[0] if isinstance(w, tuple) else w).close()
        self.vtx = []
