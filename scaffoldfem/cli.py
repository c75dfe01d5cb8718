"""Command line: ``scaffoldfem {check,init,mesh,run,sweep,bench,plot}``.

A thin layer over :mod:`scaffoldfem.api` (``run``, ``sweep``, ``plot``) and the
stage commands (``mesh``, ``bench``). Those are imported inside their command
functions on purpose, so that ``check``, ``init`` and ``--help`` start without
loading DOLFINx, PETSc or PyVista; everything else is imported here.

Exit codes: 0 success, 2 bad input (study file, options, run directory),
3 a solve failed or some cases of a sweep did not complete; each is the
``exit_code`` of the :class:`~scaffoldfem.errors.ScaffoldfemError` raised.
Bad input never shows a traceback, and each message is printed once (rank 0).
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
from scaffoldfem.errors import EXIT_OK, ScaffoldfemError, StudyError, UsageError
from scaffoldfem.mpi import say
from scaffoldfem.sweep.args import DESCRIPTION as SWEEP_DESCRIPTION
from scaffoldfem.sweep.args import add_sweep_arguments, load_runner


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
    study = load_study_mpi(MPI.COMM_WORLD, args.study, args.overrides)
    say(
        MPI.COMM_WORLD,
        f"{args.study}: OK — study '{study.name}', {len(study.species)} growth factor(s) "
        f"({', '.join(s.name for s in study.species)}), {study.time.duration:g} days, "
        f"lesion '{study.geometry.lesion.kind}'",
    )
    return EXIT_OK


def cmd_init(args: argparse.Namespace) -> int:
    path: Path = args.path
    if path.exists() and not args.force:
        raise UsageError(f"{path} exists; use --force to replace it")
    if MPI.COMM_WORLD.rank == 0:
        path.write_text(template_text())
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
    say(comm, mesh_command(study, args.output, comm))
    return EXIT_OK


def cmd_run(args: argparse.Namespace) -> int:
    from scaffoldfem import api  # lazy: DOLFINx

    comm = MPI.COMM_WORLD
    study = load_study_mpi(comm, args.study, args.overrides)
    api.run(study, args.out, comm, resume=args.resume, overwrite=args.overwrite,
            quiet=args.quiet)
    return EXIT_OK


def cmd_bench(args: argparse.Namespace) -> int:
    from scaffoldfem.bench.command import run_bench  # lazy: DOLFINx

    return run_bench(args.what, MPI.COMM_WORLD, out=args.out)


def cmd_plot(args: argparse.Namespace) -> int:
    if not args.dir.is_dir():
        raise UsageError(f"{args.dir} is not a directory")
    from scaffoldfem import api  # lazy: DOLFINx, PyVista

    if MPI.COMM_WORLD.rank == 0:
        for path in api.plot(args.dir):
            print(f"wrote {path}", flush=True)
    return EXIT_OK


def cmd_sweep(args: argparse.Namespace) -> int:
    if args.out is None and not args.slurm:
        raise UsageError("--out DIR is required (or --slurm to write a batch script)")
    from scaffoldfem import api  # lazy: DOLFINx

    comm = MPI.COMM_WORLD
    if args.slurm:
        paths = api.slurm_scripts(args.sweep, args.out, comm,
                                  ranks_per_case=args.ranks_per_case, overwrite=args.overwrite)
        say(comm, *(f"wrote {p}" for p in paths),
            f"submit: sbatch {paths[0]}   (one allocation, MPI sweep)",
            f"    or: sbatch {paths[1]}   (job array, one case per task)")
        return EXIT_OK
    summary = api.sweep(args.sweep, args.out, comm, ranks_per_case=args.ranks_per_case,
                        overwrite=args.overwrite, collect_only=args.collect_only,
                        quiet=args.quiet, runner=load_runner(args.runner))
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

    p = sub.add_parser("check", help="validate a study file and report every problem")
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
        help="also write the mesh here (default: the cache under meshes/cache)",
    )
    p.set_defaults(func=cmd_mesh)

    p = sub.add_parser("run", help="run a study into a run directory")
    _study_args(p)
    p.add_argument("--out", type=Path, required=True, help="run directory")
    p.add_argument(
        "--resume", action="store_true", help="continue from the newest valid checkpoint"
    )
    p.add_argument("--overwrite", action="store_true", help="replace an existing run directory")
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
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``scaffoldfem`` command."""
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
    except Exception:
        comm = MPI.COMM_WORLD
        if comm.size > 1:  # an unexpected error on one rank must not hang the others
            traceback.print_exc()
            sys.stderr.flush()
            comm.Abort(1)
        raise


if __name__ == "__main__":
    sys.exit(main())
