"""The command-line options of ``scaffoldfem sweep`` (the one place they are defined).

``scaffoldfem sweep`` is the only entry point of a sweep (the SLURM scripts call
it too). Besides the documented options it takes a hidden ``--runner
MODULE:FUNCTION`` (or ``FILE.py:FUNCTION``): a stand-in for ``run_study`` with the
same signature, used by the tests to drive the MPI case queue without solving.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from scaffoldfem.errors import UsageError

if TYPE_CHECKING:  # the CLI imports this module before (and without) the sweep machinery
    from scaffoldfem.sweep.coordinator import Runner

#: ``scaffoldfem sweep --help``: what the command does.
DESCRIPTION = (
    "Run every case of a sweep file on groups of K MPI ranks (mpiexec -n P, P = G*K); "
    "rerunning the same command resumes: done cases are skipped, interrupted ones resume. "
    "Writes OUT/results.csv (.parquet), each case's figures where its study has "
    "output.figures = true, and the sweep's heatmaps into OUT/figures."
)


def add_sweep_arguments(p: argparse.ArgumentParser) -> None:
    """Add the options of ``scaffoldfem sweep`` to ``p``."""
    p.add_argument("sweep", type=Path, help="sweep TOML file")
    p.add_argument("--out", type=Path, default=None,
                   help="sweep directory (required unless --slurm: then runs/<sweep name>)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a value of every case after the sweep's [set], e.g. "
                        "--set geometry.resolution=medium (repeatable; not a varied key)")
    p.add_argument("--ranks-per-case", type=int, default=1, metavar="K",
                   help="MPI ranks per case; must divide the number of ranks (default 1)")
    p.add_argument("--slurm", action="store_true",
                   help="write SLURM scripts into OUT/slurm instead of running")
    p.add_argument("--overwrite", action="store_true", help="replace an existing sweep directory")
    p.add_argument("--collect-only", action="store_true",
                   help="run nothing; rebuild results.csv/.parquet from the case directories "
                        "(after a SLURM job array)")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.add_argument("--runner", default=None, metavar="MODULE:FUNC", help=argparse.SUPPRESS)


def load_runner(spec: str | None) -> Runner | None:
    """``module:function`` or ``path/to/file.py:function`` → the callable (None: run_study).

    Raises:
        UsageError: A malformed spec or a file that cannot be loaded.
    """
    if spec is None:
        return None
    target, _, name = spec.rpartition(":")
    if not target or not name:
        raise UsageError(f"--runner {spec}: expected MODULE:FUNCTION or FILE.py:FUNCTION")
    if target.endswith(".py"):
        path = Path(target).resolve()
        sys.path.insert(0, str(path.parent))
        mod_spec = importlib.util.spec_from_file_location(path.stem, path)
        if mod_spec is None or mod_spec.loader is None:
            raise UsageError(f"--runner {spec}: cannot load {path}")
        module = importlib.util.module_from_spec(mod_spec)
        sys.modules[path.stem] = module
        mod_spec.loader.exec_module(module)
    else:
        module = importlib.import_module(target)
    try:
        return getattr(module, name)
    except AttributeError:
        raise UsageError(f"--runner {spec}: {target} has no {name}") from None
