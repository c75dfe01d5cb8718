"""Command line: ``scaffoldfem {check,init,mesh,run,sweep,bench,plot,report,findings}``.

A thin layer over :mod:`scaffoldfem.api` (``run``, ``sweep``, ``plot``) and the
stage commands (``mesh``, ``bench``). Those are imported inside their command
functions on purpose, so that ``check``, ``init`` and ``--help`` start without
loading DOLFINx, PETSc or PyVista; everything else is imported here.

Exit codes: 0 success; 2 bad input or environment (study file, options, run
directory, a path that cannot be written), 3 a solve failed (the last good state
is written) or some cases of a sweep did not complete, 143 interrupted; each is
the ``exit_code`` of the :class:`~scaffoldfem.errors.ScaffoldfemError` raised, or
of a file-system error / interruption caught in :func:`main`. Bad input never
shows a traceback, and each message is printed once (rank 0). Exit 1 is a bug.
"""

from __future__ import annotations

import argparse
import sys
import traceback
from pathlib import Path

from mpi4py import MPI

import scaffoldfem
from scaffoldfem.config.study import load_study_mpi
from scaffoldfem.config.template import template_text
from scaffoldfem.errors import (
    EXIT_BAD_INPUT,
    EXIT_INTERRUPTED,
    EXIT_OK,
    RunDirError,
    ScaffoldfemError,
    StudyError,
    UsageError,
    os_error_line,
)
from scaffoldfem.files import atomic_write_text
from scaffoldfem.mpi import on_rank0, say
from scaffoldfem.run.rundir import check_creatable, inspect_run_dir_mpi
from scaffoldfem.sweep.args import DESCRIPTION as SWEEP_DESCRIPTION
from scaffoldfem.sweep.args import add_sweep_arguments, load_runner

#: A directory ``plot`` can draw: a run (its resolved study) or a sweep (its manifest).
PLOTTABLE = ("study.resolved.toml", "sweep.json", "results.csv")


def _study_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("study", type=Path, help="study TOML file")
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a study value, e.g. --set scaffold.porosity=0.85 (repeatable)",
    )


def cmd_check(args: argparse.Namespace) -> int:
    from scaffoldfem.sweep.plan import is_sweep_file  # no DOLFINx

    if on_rank0(MPI.COMM_WORLD, lambda: is_sweep_file(args.study)):
        return _check_sweep(args)
    study = load_study_mpi(MPI.COMM_WORLD, args.study, args.overrides)
    say(
        MPI.COMM_WORLD,
        f"{args.study}: OK — study '{study.name}', {len(study.species)} growth factor(s) "
        f"({', '.join(s.name for s in study.species)}), {study.time.duration:g} days, "
        f"lesion '{study.geometry.lesion.kind}'",
    )
    return EXIT_OK


def _check_sweep(args: argparse.Namespace) -> int:
    """``check`` of a sweep file: every case validated (all problems at once)."""
    from scaffoldfem.sweep.plan import load_sweep

    def summary() -> list[str]:
        plan = load_sweep(args.study, args.overrides)
        lines = [f"{args.study}: OK — sweep '{plan.name}', {len(plan.cases)} case(s) valid, "
                 f"varying {', '.join(plan.parameters) or 'nothing'}"]
        if plan.question:
            lines.append(f"  question: {plan.question}")
        if plan.outcomes:
            lines.append(f"  outcomes: {', '.join(plan.outcomes)}")
        return lines

    say(MPI.COMM_WORLD, *on_rank0(MPI.COMM_WORLD, summary))
    return EXIT_OK


def _write_template(path: Path, force: bool) -> None:
    """Rank 0 of ``init``: refuse a directory, a missing folder or an existing file."""
    if path.is_dir():
        raise UsageError(f"{path} is a directory; give a file name, e.g. {path / 'study.toml'}")
    if path.exists() and not force:
        raise UsageError(f"{path} exists; use --force to replace it")
    if not path.absolute().parent.is_dir():
        raise UsageError(f"{path}: folder {path.parent} does not exist")
    try:
        atomic_write_text(path, template_text())
    except OSError as err:
        raise UsageError(f"cannot write {os_error_line(err, path)}") from None


def cmd_init(args: argparse.Namespace) -> int:
    path: Path = args.path
    on_rank0(MPI.COMM_WORLD, lambda: _write_template(path, args.force), wrap=UsageError)
    say(
        MPI.COMM_WORLD,
        f"wrote {path} (annotated template with the defaults; "
        f"check it with 'scaffoldfem check {path}')",
    )
    return EXIT_OK


def cmd_mesh(args: argparse.Namespace) -> int:
    from scaffoldfem.geometry.report import mesh_command  # lazy: DOLFINx

    comm = MPI.COMM_WORLD
    study = load_study_mpi(comm, args.study, args.overrides)
    if args.output is not None:
        on_rank0(comm, lambda: _check_mesh_output(args.output), wrap=UsageError)
    say(comm, mesh_command(study, args.output, comm))
    return EXIT_OK


def _check_mesh_output(path: Path) -> None:
    """``mesh -o``: replace only a mesh scaffoldfem wrote; the folder must be writable."""
    from scaffoldfem.geometry.loading import is_scaffoldfem_mesh  # lazy: gmsh

    if path.is_dir():
        raise UsageError(f"-o {path} is a directory; give a file name, e.g. {path / 'mesh.msh'}")
    if path.exists() and not is_scaffoldfem_mesh(path):
        raise UsageError(f"-o {path} exists and is not a mesh scaffoldfem wrote; it is not "
                         "replaced: remove it yourself or choose another file")
    if not path.exists():
        try:
            check_creatable(path, "the mesh file")
        except RunDirError as err:
            raise UsageError(str(err)) from None


def cmd_run(args: argparse.Namespace) -> int:
    comm = MPI.COMM_WORLD
    study = load_study_mpi(comm, args.study, args.overrides)
    # The run directory is checked before DOLFINx loads: a refusal (or a finished
    # run) answers in a second; run_study checks again and acts.
    state = inspect_run_dir_mpi(args.out, comm, resume=args.resume, overwrite=args.overwrite,
                                study=study)
    if state.done:
        say(comm, *state.notes)
        return EXIT_OK
    from scaffoldfem import api  # lazy: DOLFINx

    api.run(study, args.out, comm, resume=args.resume, overwrite=args.overwrite,
            quiet=args.quiet)
    return EXIT_OK


def cmd_bench(args: argparse.Namespace) -> int:
    from scaffoldfem.bench.command import run_bench  # lazy: DOLFINx

    return run_bench(args.what, MPI.COMM_WORLD, out=args.out)


def cmd_plot(args: argparse.Namespace) -> int:
    if not args.dir.is_dir():
        raise UsageError(f"{args.dir} is not a directory")
    if not any((args.dir / name).is_file() for name in PLOTTABLE):
        raise UsageError(f"{args.dir} is not a run or sweep directory (no "
                         f"{' or '.join(PLOTTABLE)}); nothing to plot")
    from scaffoldfem import api  # lazy: DOLFINx, PyVista

    if MPI.COMM_WORLD.rank == 0:
        for path in api.plot(args.dir):
            print(f"wrote {path}", flush=True)
    return EXIT_OK


def cmd_report(args: argparse.Namespace) -> int:
    from scaffoldfem.viz.report_page import report_kind, write_report  # lazy: matplotlib

    comm = MPI.COMM_WORLD
    # Rank 0 checks and writes; every rank raises the same error if it cannot (a
    # directory that is neither a run nor a sweep: RunDirError, exit 2).
    kind, path = on_rank0(comm, lambda: (report_kind(args.dir), write_report(args.dir)))
    say(comm, f"wrote {path} (report of the {kind}; one self-contained file)")
    return EXIT_OK


def cmd_findings(args: argparse.Namespace) -> int:
    from scaffoldfem.viz.findings import write_findings  # lazy: matplotlib

    if not args.runs.is_dir() or not any((d / "results.csv").exists()
                                         for d in args.runs.iterdir()):
        raise UsageError(f"{args.runs} holds no finished sweep (no */results.csv): run the "
                         "question studies first (make findings)")
    path = on_rank0(MPI.COMM_WORLD, lambda: write_findings(args.runs, args.out))
    say(MPI.COMM_WORLD, f"wrote {path}")
    return EXIT_OK


def cmd_sweep(args: argparse.Namespace) -> int:
    if args.out is None and not args.slurm:
        raise UsageError("--out DIR is required (or --slurm to write a batch script)")
    from scaffoldfem import api  # lazy: DOLFINx

    comm = MPI.COMM_WORLD
    if args.slurm:
        paths = api.slurm_scripts(args.sweep, args.out, comm, ranks_per_case=args.ranks_per_case,
                                  overwrite=args.overwrite, overrides=args.overrides)
        say(comm, *(f"wrote {p}" for p in paths),
            f"submit: sbatch {paths[0]}   (one allocation, MPI sweep)",
            f"    or: sbatch {paths[1]}   (job array, one case per task)")
        return EXIT_OK
    summary = api.sweep(args.sweep, args.out, comm, ranks_per_case=args.ranks_per_case,
                        overwrite=args.overwrite, collect_only=args.collect_only,
                        quiet=args.quiet, runner=load_runner(args.runner),
                        overrides=args.overrides)
    say(comm, *summary.lines())
    return summary.exit_code


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (also used to document the CLI)."""
    parser = argparse.ArgumentParser(
        prog="scaffoldfem",
        description="Finite-element design of biomaterial scaffolds for spinal cord injury.",
    )
    parser.add_argument(
        "--version", action="version", version=f"scaffoldfem {scaffoldfem.__version__}"
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("check", help="validate a study or sweep file and report every problem")
    _study_args(p)
    p.set_defaults(func=cmd_check)

    p = sub.add_parser("init", help="write an annotated template study with the defaults")
    p.add_argument("path", type=Path, nargs="?", default=Path("study.toml"))
    p.add_argument("--force", action="store_true", help="replace an existing file")
    p.set_defaults(func=cmd_init)

    p = sub.add_parser("mesh", help="mesh the study geometry and print the region table")
    _study_args(p)
    p.add_argument(
        "-o",
        "--output",
        type=Path,
        default=None,
        help="also write the mesh here (default: the cache under meshes/cache); an "
        "existing file is replaced only if it is a mesh scaffoldfem wrote",
    )
    p.set_defaults(func=cmd_mesh)

    p = sub.add_parser("run", help="run a study into a run directory")
    _study_args(p)
    p.add_argument("--out", type=Path, required=True, help="run directory")
    p.add_argument(
        "--resume", action="store_true",
        help="continue from the newest valid checkpoint (the same study and mesh only)",
    )
    p.add_argument("--overwrite", action="store_true",
                   help="replace an existing run directory (only one scaffoldfem made)")
    p.add_argument("--quiet", action="store_true", help="no progress line")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("bench", help="benchmarks: meshing, transport solve, tracing")
    p.add_argument(
        "what", nargs="*", default=["all"], help="meshing | transport | tracing | all (default)"
    )
    p.add_argument("--out", type=Path, default=None, help="write the results as JSON here")
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser(
        "sweep", help="run a parametric sweep as an MPI batch job", description=SWEEP_DESCRIPTION
    )
    add_sweep_arguments(p)
    p.set_defaults(func=cmd_sweep)

    p = sub.add_parser("plot", help="redraw the figures of a run or sweep directory")
    p.add_argument("dir", type=Path)
    p.set_defaults(func=cmd_plot)

    p = sub.add_parser("report", help="write DIR/report.html: one self-contained page of a "
                       "run or sweep directory")
    p.add_argument("dir", type=Path, help="run or sweep directory")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("findings", help="write docs/findings.md from the finished sweeps of "
                       "studies/questions/ (make findings runs them)")
    p.add_argument("runs", type=Path, help="directory holding one sweep directory per question")
    p.add_argument("--out", type=Path, default=Path("docs/findings.md"),
                   help="page to write (figures go beside it, into findings/)")
    p.set_defaults(func=cmd_findings)
    return parser


def _local_failure(command: str, line: str, code: int) -> int:
    """An error raised on this rank only (a file system full, a write refused, ^C):
    one line, then the exit code. Under MPI the other ranks may be waiting in a
    collective for this one, so the job is aborted with that code."""
    comm = MPI.COMM_WORLD
    if code != EXIT_INTERRUPTED or comm.rank == 0:  # ^C reaches every rank: say it once
        print(f"scaffoldfem {command}: {line}", file=sys.stderr, flush=True)
    if comm.size > 1:
        comm.Abort(code)
    return code


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``scaffoldfem`` command.

    Exit codes: 0 done; 2 bad input or environment (one line naming the key or the
    path); 3 a numerical failure (the last good state is written); 143 interrupted;
    1 only for a bug (with its traceback).
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except ScaffoldfemError as err:  # the same on every rank: printed once
        comm = MPI.COMM_WORLD
        if isinstance(err, StudyError):
            say(comm, *err.lines, err=True)
        else:
            say(comm, f"scaffoldfem {args.command}: {err}", err=True)
        return err.exit_code
    except OSError as err:  # the environment, not a bug: disk full, permissions, ...
        return _local_failure(args.command, os_error_line(err), EXIT_BAD_INPUT)
    except MemoryError:
        return _local_failure(args.command, "out of memory (try a coarser "
                              "geometry.resolution or more ranks)", EXIT_BAD_INPUT)
    except KeyboardInterrupt:
        return _local_failure(args.command, "interrupted", EXIT_INTERRUPTED)
    except Exception:
        comm = MPI.COMM_WORLD
        if comm.size > 1:  # an unexpected error on one rank must not hang the others
            traceback.print_exc()
            sys.stderr.flush()
            comm.Abort(1)
        raise


if __name__ == "__main__":
    sys.exit(main())
