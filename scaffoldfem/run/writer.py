"""The run directory writer: fields, tables, metrics, checkpoints, progress, DONE.

Public contract (issue 5): ``study.resolved.toml``, ``provenance.json``, ``fields/``
(:mod:`scaffoldfem.run.fieldio`), ``axons.vtp``, ``timeseries.csv``,
``regions.csv``, ``centerline.csv`` (:mod:`scaffoldfem.run.tables`),
``metrics.json`` (:mod:`scaffoldfem.run.metrics`), ``figures/`` (drawn by the
``on_done`` hook of :func:`scaffoldfem.run.loop.run_study`), ``checkpoints/``
(:mod:`scaffoldfem.run.checkpoint`), ``DONE``. Tables and JSON are written by
rank 0 through a temporary file and a rename.

The writer reads the model through its public methods only (``fields()``,
``state()``/``restore()``, ``balance()``, ``masses()``, ``lesion_means()``,
``scaffold_summary()``, ``metrics()``).
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

import scaffoldfem  # noqa: F401  (MPI before dolfinx)
from scaffoldfem.axons.outcomes import Layout, Outcomes
from scaffoldfem.config.study import Study
from scaffoldfem.fem.solver_base import solver_timings
from scaffoldfem.files import (
    BackgroundWrites,
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_text,
)
from scaffoldfem.model.coupled import CoupledModel
from scaffoldfem.run import checkpoint as ckpt
from scaffoldfem.run import provenance as prov
from scaffoldfem.run.fieldio import FieldOutput, write_axons
from scaffoldfem.run.metrics import Exposure, WindowExposure, balance_warnings, run_metrics
from scaffoldfem.run.progress import Progress
from scaffoldfem.run.tables import Tables, csv_bytes


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
        self.rank0 = comm.rank == 0
        self.started = prov.now()
        self.progress = Progress(comm, study.time.duration, quiet)
        self.stop_requested = False
        self._crossed = 0  # axons crossed at the last output (refreshed collectively there)
        self.segment = 0
        self.dt = study.time.dt
        self.fields: FieldOutput | None = None
        #: Rank 0's checkpoint files, written while the run goes on.
        self.writes = BackgroundWrites()

    def log(self, msg: str) -> None:
        """A message on rank 0."""
        self.progress.log(msg)

    # ------------------------------------------------------------------ set-up
    def attach(self, model: CoupledModel, tracer: Any, timing: dict[str, float]) -> None:
        """Bind the model and tracer; prepare tables and field series."""
        self.model, self.tracer, self.timing = model, tracer, timing
        d = model.disc
        self.statemap = ckpt.StateMap(d.mesh, d.V, d.Q)
        self.tables = Tables(self.out, model, self.study.geometry.cord.length)
        self.exposure = Exposure(self.study.species)
        ex = self.study.exposure
        self.window = WindowExposure(self.exposure.windows, ex.window_start, ex.window_end,
                                     dorsal=ex.dorsal_horn)
        self.out_index = 0
        self.next_output = 0.0
        self.next_ckpt = self.study.output.checkpoint_interval
        self.iters: dict[str, int] = {}
        self.step_count = 0
        self.fields = FieldOutput(self.out, model)
        self.fields.open(self.segment)

    # ------------------------------------------------------------------ time events
    def next_event(self, t: float) -> float:
        """Next output or checkpoint time after ``t`` (steps land on it)."""
        eps = 1e-9 * max(1.0, t)
        cands = [x for x in (self.next_output, self.next_ckpt) if x > t + eps]
        return min(cands) if cands else math.inf

    def after_step(self, h: float, iters: dict[str, int]) -> None:
        """Accumulate exposure metrics over the step just taken; progress line."""
        self.iters = iters
        self.step_count += 1
        self.dt = h
        self.exposure.add(h, self.model.lesion_means())
        self.window.add(self.model.t, h, self.model.exposure_means())
        self.stop_requested = self.progress.stop_requested()
        self._progress()

    def _progress(self, force: bool = False) -> None:
        self.progress.line(self.model.t, self.dt, self.iters, self._crossed, force=force)

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
        last = self.tables.last_time()
        if last is not None and abs(last - t) < 1e-12:
            return  # already written at this time (e.g. the final output)
        self._crossed = self.tracer.n_crossed() if self.tracer is not None else 0
        self.tables.append(self._crossed)
        self.fields.write(t)
        self.fields.sagittal(self.out_index)
        self.tables.write()
        self.out_index += 1
        self.next_output = self.out_index * self.study.output.interval
        while self.next_output <= t + 1e-9 * max(1.0, t):
            self.out_index += 1
            self.next_output = self.out_index * self.study.output.interval

    # ------------------------------------------------------------------ checkpoints
    def checkpoint(self, dt: float) -> None:
        """Write the whole state (collective; rank 0 writes)."""
        state = self.model.state()
        arrays = self.statemap.state_to_global(state)
        if self.tracer is not None:
            st = self.tracer.get_state(root=0)
            if st is not None:
                arrays.update({f"tracer:{k}": np.asarray(v) for k, v in st.items()})
        meta = {
            "model": state.scalars,
            "run": {
                "dt": dt,
                "acc": self.exposure.state(),
                "window": self.window.state(),
                "out_index": self.out_index,
                "next_output": self.next_output,
                "next_ckpt": self.next_ckpt,
                "segment": self.segment,
                "timing": self.timing,
                "step_count": self.step_count,
            },
        }
        ckpt.save(self.out / "checkpoints", state.scalars["nstep"], arrays, meta, self.comm,
                  self.writes)

    def restore(self) -> bool:
        """Resume from the newest valid checkpoint; False if there is none."""
        found = ckpt.load_latest(self.out / "checkpoints", self.comm)
        if found is None or "model" not in found[1]:  # none, or of an older layout
            # Always said: a restart from t = 0 can cost the whole run again.
            self.progress.announce(f"{self.out}: no valid checkpoint: starting from t = 0")
            return False
        arrays, meta = found
        self.model.restore(self.statemap.state_from_global(arrays, meta["model"]))
        if self.tracer is not None:
            st = {k.split(":", 1)[1]: v for k, v in arrays.items() if k.startswith("tracer:")}
            self.tracer.set_state(st if self.rank0 else None, root=0)
        run = meta["run"]
        self.exposure.restore(run["acc"])
        self.window.restore(run["window"])
        self.out_index, self.next_output = run["out_index"], run["next_output"]
        self.next_ckpt = run["next_ckpt"]
        self.step_count = run["step_count"]
        self.dt = run["dt"]
        self.timing.update({k: v for k, v in run["timing"].items() if k not in ("mesh", "setup")})
        t = self.model.t
        self.tables.reload(t)
        self.fields.close()  # continue the field series in new files (segment k)
        self.segment = run["segment"] + 1
        self.fields.open(self.segment)
        self.log(f"resumed from the checkpoint at t = {t:g} day")
        return True

    # ------------------------------------------------------------------ the end
    def metrics(self) -> dict[str, Any]:
        """The final summary (identical on every rank)."""
        return run_metrics(
            self.model,
            self.exposure,
            ranks=self.comm.size,
            steps=self.step_count,
            tracer=self.tracer,
            window=self.window,
        )

    def finish(self, dt: float, on_done: Callable[[Path, Any], None] | None = None) -> None:
        """Final outputs, metrics, provenance, ``on_done`` (figures) and DONE (last).

        Args:
            dt: Step to resume with (stored in the last checkpoint).
            on_done: Called on every rank with the run directory and the communicator
                when ``output.figures`` is on, before DONE (the ranks share the
                figures out); a failure is a warning.
        """
        tic = time.perf_counter()
        self.output()
        self.checkpoint(dt)
        self.fields.final()
        traj = self.tracer.trajectories(root=0) if self.tracer is not None else None
        write_axons(self.out / "axons.vtp", traj)
        metrics = self.metrics()
        if traj is not None:
            self._axon_outcomes(traj, metrics)
        for line in balance_warnings(metrics):
            self.log(line)
        self.timing["output"] = self.timing.get("output", 0.0) + time.perf_counter() - tic
        self.timing["total"] = self.progress.wall()
        metrics["timing_s"] = dict(self.timing)
        memory = prov.peak_memory_mb(self.comm)
        solvers = solver_timings(self.comm)
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
                    "solvers": solvers,
                    "peak_memory": memory,
                    "resumed_segments": self.segment,
                },
            )
        if self.study.output.figures and on_done is not None:
            self.comm.barrier()  # the files the figures read are written
            err = None
            try:
                on_done(self.out, self.comm)
            except Exception as e:  # a picture must never lose a finished run
                err = f"{type(e).__name__}: {e}"
            errs = self.comm.gather(err, root=0)
            for e in errs or []:
                if e is not None:
                    print(f"warning: figures not drawn: {e}", flush=True)
        if self.rank0:
            self.writes.wait()  # the last checkpoint is on disk before DONE
            atomic_write_text(
                self.out / "DONE", f"finished {prov.now()} t = {self.model.t:g} day\n"
            )
        self._progress(force=True)
        self.progress.end()
        self.comm.barrier()

    def _axon_outcomes(self, traj: dict, metrics: dict[str, Any]) -> None:
        """Rank 0: crossing curves, intervals and channel occupancy from the gathered
        trajectories into metrics.json, timeseries.csv and axons_crossing.csv."""
        oc = Outcomes(traj, Layout.from_study(self.study))
        times = [row["t_day"] for row in self.tables.rows]
        metrics["axons"].update(oc.metrics())
        extra = oc.timeseries(times).drop(columns="t_day").to_dict("records")
        for row, more in zip(self.tables.rows, extra, strict=True):
            row.update(more)
        self.tables.write(changed=True)  # rows changed in place: format them all again
        atomic_write_bytes(self.out / "axons_crossing.csv", csv_bytes(oc.crossing_table(times)))
        for line in oc.warnings():
            self.log(line)

    def close(self) -> None:
        """Close field writers (collective); finish the checkpoint being written (a
        run stopped by a signal exits once its checkpoint is whole); put back the
        signal handlers."""
        with contextlib.ExitStack() as done:  # each step, whatever the ones before raise
            done.callback(self.progress.restore_signals)
            done.callback(self.writes.close)
            if self.fields is not None:
                self.fields.close()
