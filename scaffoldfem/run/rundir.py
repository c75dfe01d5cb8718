"""The run directory: creation rules (rank 0 only; atomic writes in
:mod:`scaffoldfem.files`)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from scaffoldfem.errors import RunDirError


def prepare_run_dir(out: Path, *, resume: bool, overwrite: bool) -> None:
    """Create or reuse ``out`` (call on rank 0 only).

    Args:
        out: The run directory.
        resume: Continue a run in ``out`` (it must exist).
        overwrite: Delete ``out`` first.

    Raises:
        RunDirError: ``out`` exists and neither flag is given, or ``resume`` is asked
            for a directory that does not hold a run.
    """
    out = Path(out)
    if resume and overwrite:
        raise RunDirError("--resume and --overwrite exclude each other")
    if out.exists():
        if overwrite:
            shutil.rmtree(out) if out.is_dir() else out.unlink()
        elif resume:
            if not (out / "study.resolved.toml").exists():
                raise RunDirError(f"{out} holds no run to resume (no study.resolved.toml)")
            return
        elif not out.is_dir() or any(out.iterdir()):
            raise RunDirError(
                f"{out} already exists; results are never overwritten silently: "
                "pass --resume to continue that run or --overwrite to replace it"
            )
    elif resume:
        raise RunDirError(f"{out} does not exist: nothing to resume")
    out.mkdir(parents=True, exist_ok=True)


def prepare_run_dir_mpi(out: Path, comm: Any, *, resume: bool, overwrite: bool) -> None:
    """:func:`prepare_run_dir` on rank 0; every rank raises the same RunDirError."""
    err = None
    if comm.rank == 0:
        try:
            prepare_run_dir(out, resume=resume, overwrite=overwrite)
        except RunDirError as e:
            err = str(e)
    err = comm.bcast(err, root=0)
    if err is not None:
        raise RunDirError(err)
