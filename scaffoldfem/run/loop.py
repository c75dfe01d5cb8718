"""``scaffoldfem run``: study → mesh → coupled solve → axons → run directory."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from petsc4py import PETSc

import scaffoldfem  # noqa: F401  (MPI before dolfinx)
from scaffoldfem.axons.tracer import GrowthFields, Tracer
from scaffoldfem.config.study import Study
from scaffoldfem.errors import SimulationFailed, SolverError
from scaffoldfem.geometry.meshing import ensure_mesh, load_mesh
from scaffoldfem.model.coupled import CoupledModel
from scaffoldfem.mpi import say
from scaffoldfem.run.rundir import prepare_run_dir_mpi, record_mesh_mpi
from scaffoldfem.run.writer import RunWriter


def lesion_z(study: Study) -> tuple[float, float]:
    """Rostral and caudal z of the lesion (mm)."""
    les = study.geometry.lesion
    return les.center - les.length / 2, les.center + les.length / 2


def run_study(
    study: Study,
    out: Path,
    comm: Any,
    *,
    resume: bool = False,
    overwrite: bool = False,
    quiet: bool = False,
    on_done: Callable[[Path, Any], None] | None = None,
) -> int:
    """Run ``study`` into ``out``; return the process exit code.

    Args:
        study: The validated study.
        out: Run directory.
        comm: Communicator of the run.
        resume: Continue from the newest valid checkpoint in ``out``.
        overwrite: Replace an existing ``out``.
        quiet: No progress line.
        on_done: Called on every rank with ``out`` and ``comm`` once the results
            are written and before DONE, when ``output.figures`` is on (e.g.
            :func:`scaffoldfem.api.running.draw_run`, the ranks sharing the figures
            out); its failure is a warning.

    Resuming a finished run returns 0 at once and changes nothing.

    Raises:
        RunDirError: ``out`` cannot be used as asked: it holds something scaffoldfem
            did not make (``overwrite``), or another study or mesh (``resume``).
        SimulationFailed: the run could not continue (exit code 3 in the CLI),
            after the last good state was written.
    """
    out = Path(out)
    state = prepare_run_dir_mpi(out, comm, resume=resume, overwrite=overwrite, study=study)
    if state.notes:  # even under --quiet: a finished run, a restart, a code change
        say(comm, *state.notes)
    if state.done:  # nothing to do, and nothing is touched
        return 0
    timing: dict[str, float] = {}
    t0 = time.perf_counter()
    mesh_path = ensure_mesh(study.geometry, comm)
    record_mesh_mpi(out, state, study, mesh_path, comm)
    mesh, cell_tags, facet_tags = load_mesh(mesh_path, comm, ghost_mode="shared_facet")
    timing["mesh"] = time.perf_counter() - t0
    writer = RunWriter(out, study, mesh_path, comm, quiet=quiet)
    try:
        tic = time.perf_counter()
        # The model frees its PETSc objects on every way out: success, a failed
        # run, SystemExit(143) after a signal.
        with CoupledModel(study, mesh, cell_tags, facet_tags) as model:
            tracer = _tracer(study, mesh, cell_tags)
            try:
                timing["setup"] = time.perf_counter() - tic
                writer.attach(model, tracer, timing)
                dt = _time_loop(study, model, tracer, writer, timing, state.resume)
                writer.finish(dt, on_done)
            finally:
                if tracer is not None:
                    tracer.destroy()  # its cue filters, collectively, on every way out
        return 0
    finally:
        writer.close()


def _solver_error(err: Exception, t: float) -> SolverError | SimulationFailed:
    """``err``, or a PETSc exception as a :class:`SolverError` (exit 3, not a traceback).

    PETSc raises from inside a solve when a coefficient makes the system meaningless
    (e.g. an overflowing diffusivity breaks GAMG's set-up); the solver whose method
    raised names the field (the innermost frame whose ``self`` has a ``field``).
    """
    if not isinstance(err, PETSc.Error):
        return err  # type: ignore[return-value]
    field, tb = "PETSc", err.__traceback__
    while tb is not None:
        name = getattr(tb.tb_frame.f_locals.get("self"), "field", None)
        field = name if isinstance(name, str) else field
        tb = tb.tb_next
    return SolverError(field, t, f"PETSc error code {getattr(err, 'ierr', '?')} inside the "
                       "solve (PETSc's message is above; is a coefficient out of range?)")


def _tracer(study: Study, mesh: Any, cell_tags: Any) -> Tracer | None:
    if not (study.axons.enabled and (study.axons.count > 0 or study.axons.sensory)):
        return None
    tracer = Tracer(mesh, cell_tags, study.axons, lesion_z(study), [s.name for s in study.species])
    tracer.seed(0.0)
    return tracer


def _time_loop(
    study: Study,
    model: CoupledModel,
    tracer: Tracer | None,
    writer: RunWriter,
    timing: dict[str, float],
    resume: bool,
) -> float:
    """Step to ``time.duration``: cut a failed step in half (below ``dt_min`` the run
    fails), grow it back after three good steps; outputs and checkpoints on time.

    Returns:
        The step the run would continue with (stored in the final checkpoint).
    """
    tm = study.time
    dt_target = tm.dt
    dt = dt_target
    if resume and writer.restore():
        dt = writer.dt
    tic = time.perf_counter()
    try:
        if model.ensure_mechanics():
            timing["mechanics"] = timing.get("mechanics", 0.0) + time.perf_counter() - tic
    except (SolverError, PETSc.Error) as err:
        # No step to cut: the state before it (t = 0 or the checkpoint) is the last good one.
        err = _solver_error(err, model.t)
        raise SimulationFailed(err.field, model.t, err.reason) from None
    if model.t == 0.0:
        writer.output()
    eps = 1e-9 * tm.duration
    ok_steps = 0
    while model.t < tm.duration - eps:
        h = min(dt, tm.duration - model.t, max(writer.next_event(model.t) - model.t, tm.dt_min))
        snap = model.state()
        tic = time.perf_counter()
        try:
            iters = model.step(h)
        except (SolverError, SimulationFailed, PETSc.Error) as err:
            err = _solver_error(err, model.t + h)
            model.restore(snap)
            dt = h / 2
            ok_steps = 0
            writer.log(
                f"step at t = {model.t:.4g} day failed ({err}); cutting the step to {dt:.3g} day"
            )
            if dt < tm.dt_min:
                writer.output()
                writer.checkpoint(dt)
                reason = f"{err.reason}; step cut below dt_min = {tm.dt_min:g} day"
                raise SimulationFailed(err.field, model.t + h, reason) from None
            continue
        timing["solve"] = timing.get("solve", 0.0) + time.perf_counter() - tic
        if tracer is not None:
            tic = time.perf_counter()
            fields = model.fields()
            conc = {name: fields[name] for name in model.species_names}
            # The CSPG cue ([cspg]: the level as of its last move beyond a tolerance,
            # part of the state) when on, else the tracer's static scar tag.
            tracer.advance(model.t - h, model.t, GrowthFields(
                concentrations=conc, stiffness=fields["modulus"],
                cspg=model.cspg.cue if model.cspg.enabled else None))
            timing["tracing"] = timing.get("tracing", 0.0) + time.perf_counter() - tic
        writer.after_step(h, iters)
        ok_steps += 1
        if ok_steps >= 3 and dt < dt_target:
            dt = min(2 * dt, dt_target)
        if writer.stop_requested:
            writer.checkpoint(dt)
            writer.log(f"stopped by signal at t = {model.t:.4g} day; resume with --resume")
            # SystemExit, not a return code: a sweep driving this run must stop too
            # (the scheduler is ending the job), not record a failure and go on.
            raise SystemExit(143)
        writer.maybe_output_and_checkpoint(dt)
    return dt
