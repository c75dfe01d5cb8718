"""Command line: ``scaffoldfem {check,init,mesh,run,sweep,bench,plot}``.

Exit codes: 0 success, 2 bad input (study file, options), 3 a solve failed.
Bad input never shows a traceback, and each message is printed once (rank 0).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import scaffoldfem
from scaffoldfem.config.study import load_study_mpi
from scaffoldfem.errors import ScaffoldfemError, StudyError, UsageError


def _comm():
    from mpi4py import MPI

    return MPI.COMM_WORLD


def _say(*lines: str, err: bool = False) -> None:
    if _comm().rank == 0:
        print(*lines, sep="\n", file=sys.stderr if err else sys.stdout, flush=True)


def _study_args(p: argparse.ArgumentParser, required: bool = True) -> None:
    p.add_argument("study", type=Path, nargs=None if required else "?", help="study TOML file")
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a study value, e.g. --set scaffold.porosity=0.85 (repeatable)",
    )


def cmd_check(args: argparse.Namespace) -> int:
    study = load_study_mpi(_comm(), args.study, args.overrides)
    _say(
        f"{args.study}: OK — study '{study.name}', {len(study.species)} growth factor(s) "
        f"({', '.join(s.name for s in study.species)}), {study.time.duration:g} days, "
        f"lesion '{study.geometry.lesion.kind}'"
    )
    return 0


def cmd_init(args: argparse.Namespace) -> int:
    from scaffoldfem.config.template import template_text

    path: Path = args.path
    if path.exists() and not args.force:
        raise UsageError(f"{path} exists; use --force to replace it")
    if _comm().rank == 0:
        path.write_text(template_text())
    _say(
        f"wrote {path} (annotated template with the defaults; "
        f"check it with 'scaffoldfem check {path}')"
    )
    return 0


def cmd_mesh(args: argparse.Namespace) -> int:
    from scaffoldfem.geometry.report import mesh_command

    study = load_study_mpi(_comm(), args.study, args.overrides)
    _say(mesh_command(study, args.output, _comm()))
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from scaffoldfem.run.loop import run_study

    comm = _comm()
    study = load_study_mpi(comm, args.study, args.overrides)
    return run_study(
        study, args.out, comm, resume=args.resume, overwrite=args.overwrite, quiet=args.quiet
    )


def cmd_bench(args: argparse.Namespace) -> int:
    from scaffoldfem.bench.command import run_bench

    return run_bench(args.what, _comm(), out=args.out)


def cmd_plot(args: argparse.Namespace) -> int:
    if not args.dir.is_dir():
        raise UsageError(f"{args.dir} is not a directory")
    if _comm().rank == 0:
        if (args.dir / "results.csv").exists():
            from scaffoldfem.viz.sweep_plots import plot_sweep

            plot_sweep(args.dir)
        else:
            from scaffoldfem.viz.plots import plot_run

            for path in plot_run(args.dir):
                print(f"wrote {path}")
    return 0


def cmd_sweep(args: argparse.Namespace) -> int:
    from scaffoldfem.sweep.runner import sweep_command

    if args.out is None and not args.slurm:
        raise UsageError("--out DIR is required (or --slurm to write a batch script)")
    return sweep_command(
        args.sweep,
        args.out,
        _comm(),
        args.ranks_per_case,
        args.slurm,
        args.overwrite,
        collect_only=args.collect_only,
    )


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

    p = sub.add_parser("sweep", help="run a parametric sweep as an MPI batch job")
    p.add_argument("sweep", type=Path, help="sweep TOML file")
    p.add_argument("--out", type=Path, default=None, help="sweep directory")
    p.add_argument("--ranks-per-case", type=int, default=1, help="MPI ranks per case (default 1)")
    p.add_argument("--slurm", action="store_true", help="write a SLURM script instead of running")
    p.add_argument("--overwrite", action="store_true", help="replace an existing sweep directory")
    p.add_argument(
        "--collect-only",
        action="store_true",
        help="run nothing; rebuild results.csv/.parquet from the case directories",
    )
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
        if isinstance(err, StudyError):
            _say(*err.lines, err=True)
        else:
            _say(f"scaffoldfem {args.command}: {err}", err=True)
        return err.exit_code
    except Exception:
        comm = _comm()
        if comm.size > 1:  # an unexpected error on one rank must not hang the others
            import traceback

            traceback.print_exc()
            sys.stderr.flush()
            comm.Abort(1)
        raise


if __name__ == "__main__":
    sys.exit(main())
