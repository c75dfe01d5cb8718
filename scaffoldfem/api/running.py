"""Running studies and sweeps from Python; the CLI's ``run``, ``sweep`` and ``plot``.

This is the layer that draws (and writes the report page, ``report.html``, once a
run or sweep is done): it hands :func:`draw_run` (:func:`scaffoldfem.viz.plots.plot_run`
shared over the ranks) to the run (``on_done``) and to every case of a sweep, and
:func:`scaffoldfem.viz.sweep_plots.plot_sweep` to the sweep, so that neither
``run`` nor ``sweep`` imports the pictures.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mpi4py import MPI

from scaffoldfem.api.results import Results
from scaffoldfem.config.study import Study, load_study_mpi
from scaffoldfem.errors import InternalError, UsageError
from scaffoldfem.run.loop import run_study
from scaffoldfem.sweep.coordinator import Runner
from scaffoldfem.sweep.runner import SweepSummary, load_sweep_mpi, run_sweep, write_slurm
from scaffoldfem.viz.plots import plot_run
from scaffoldfem.viz.report_page import report_after
from scaffoldfem.viz.sweep_plots import plot_sweep


def _comm(comm: Any) -> Any:
    return MPI.COMM_WORLD if comm is None else comm


def draw_run(out: Path, comm: Any) -> list[Path]:
    """Collective: draw the figures of the finished run ``out``, the ranks of ``comm``
    sharing them out (:func:`scaffoldfem.viz.plots.share_figures`); returns the files
    this rank wrote."""
    return plot_run(out, part=(comm.rank, comm.size))


def run(study: Study | str | Path, out: str | Path, comm: Any = None, *, resume: bool = False,
        overwrite: bool = False, quiet: bool = False, figures: bool = True) -> Results:
    """Run a study into the run directory ``out`` and return its :class:`Results`.

    Collective: under ``mpiexec -n P python script.py`` call it on every rank with
    the same study; the mesh is distributed over ``comm`` and rank 0 writes the files.

    Args:
        study: The study, or the path of a study file (read on rank 0).
        out: Run directory; an existing one is refused unless ``resume`` or ``overwrite``.
        comm: MPI communicator (default ``MPI.COMM_WORLD``).
        resume: Continue the run in ``out`` from its newest valid checkpoint.
        overwrite: Delete ``out`` first.
        quiet: No progress line.
        figures: Draw the pictures into ``out/figures`` at the end (when the study's
            ``output.figures`` is true too).

    Returns:
        The results of the finished run (on every rank).

    Raises:
        StudyError: ``study`` is a path to a bad study file.
        RunDirError: ``out`` cannot be used as asked.
        SimulationFailed: The run could not continue (the last good state is written).
    """
    comm = _comm(comm)
    if not isinstance(study, Study):
        study = load_study_mpi(comm, study)
    out = Path(out)
    code = run_study(study, out, comm, resume=resume, overwrite=overwrite, quiet=quiet,
                     on_done=draw_run if figures else None)
    if code != 0:  # run_study raises on failure; a code is a broken contract
        raise InternalError(f"run of {out} returned exit code {code}")
    if comm.rank == 0:
        report_after(out)  # after DONE: the page reports the finished run (never raises)
    comm.barrier()  # every rank returns once the page is written (a caller may read it)
    return Results(out)


def sweep(sweep_file: str | Path, out: str | Path, comm: Any = None, *, ranks_per_case: int = 1,
          overwrite: bool = False, collect_only: bool = False, quiet: bool = False,
          figures: bool = True, runner: Runner | None = None,
          overrides: list[str] | tuple[str, ...] = ()) -> SweepSummary:
    """Run (or resume) a sweep into the sweep directory ``out``.

    Collective over ``comm``, split into groups of ``ranks_per_case`` ranks that
    take cases from one queue. The table is ``out/results.csv`` (also ``.parquet``);
    each case directory ``out/cases/<id>`` can be read with :class:`Results`.

    Args:
        sweep_file: The sweep TOML file (every case is validated before anything runs).
        out: Sweep directory; rerunning resumes (done cases are skipped).
        comm: MPI communicator (default ``MPI.COMM_WORLD``).
        ranks_per_case: Ranks per case; must divide ``comm.size``.
        overwrite: Delete ``out`` first.
        collect_only: Run nothing; rebuild the tables from the case directories.
        quiet: No progress lines.
        figures: Draw each case's pictures (where its study asks for them) and, after
            running, the sweep's heatmaps into ``out/figures``.
        runner: Stand-in for :func:`scaffoldfem.run.loop.run_study` (tests).
        overrides: ``dotted.key=value`` strings applied to every case after the sweep
            file's ``[set]`` (``scaffoldfem sweep --set``).

    Returns:
        The summary (the same on every rank); ``summary.exit_code`` is 3 when a case
        failed and ``summary.lines()`` says which.

    Raises:
        StudyError: A bad sweep file or invalid cases, or a directory holding another sweep.
        RunDirError: ``out`` exists and is not a sweep directory.
    """
    comm = _comm(comm)
    plan = load_sweep_mpi(comm, Path(sweep_file), overrides)
    summary = run_sweep(plan, Path(out), comm, ranks_per_case=ranks_per_case, runner=runner,
                        overwrite=overwrite, collect_only=collect_only, quiet=quiet,
                        on_case_done=draw_run if figures else None,
                        on_done=plot_sweep if figures else None)
    if comm.rank == 0:
        report_after(Path(out))  # the sweep's page (never raises)
    comm.barrier()  # every rank returns once the page is written (a caller may read it)
    return summary


def slurm_scripts(sweep_file: str | Path, out: str | Path | None = None, comm: Any = None, *,
                  ranks_per_case: int = 1, overwrite: bool = False,
                  overrides: list[str] | tuple[str, ...] = ()) -> list[Path]:
    """Prepare a sweep directory and write its SLURM scripts instead of running.

    Args:
        sweep_file: The sweep TOML file.
        out: Sweep directory (default ``runs/<sweep name>``).
        comm: MPI communicator (default ``MPI.COMM_WORLD``); rank 0 writes.
        ranks_per_case: Ranks per case in the scripts.
        overwrite: Replace an existing sweep directory.
        overrides: ``--set`` strings, applied as in :func:`sweep` and repeated in the
            scripts.

    Returns:
        ``[out/slurm/sweep.sbatch, out/slurm/sweep_array.sbatch]``: one allocation
        running the MPI sweep, and a job array with one case per task.
    """
    comm = _comm(comm)
    plan = load_sweep_mpi(comm, Path(sweep_file), overrides)
    target = Path("runs") / plan.name if out is None else Path(out)
    return write_slurm(plan, target, comm, ranks_per_case=ranks_per_case, overwrite=overwrite)


def plot(directory: str | Path) -> list[Path]:
    """Redraw the figures of a run or sweep directory into ``directory/figures``.

    Call on one rank. A sweep directory is recognised by its ``results.csv``.

    Returns:
        The files written.

    Raises:
        UsageError: ``directory`` is not a directory.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise UsageError(f"{directory} is not a directory")
    if (directory / "results.csv").exists():
        return plot_sweep(directory)
    return plot_run(directory)
