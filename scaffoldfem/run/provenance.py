"""What produced a run: versions, host, hashes, timings and peak memory."""

from __future__ import annotations

import datetime as _dt
import hashlib
import platform
import resource
import socket
import subprocess
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import scaffoldfem


def _version(dist: str) -> str | None:
    try:
        return version(dist)
    except PackageNotFoundError:
        return None


def git_commit() -> str | None:
    """Commit of the scaffoldfem source tree, if it is a git checkout."""
    root = Path(scaffoldfem.__file__).resolve().parents[1]
    try:
        out = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def file_sha256(path: Path) -> str:
    """SHA-256 of a file (the mesh)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def now() -> str:
    """UTC time stamp (ISO 8601)."""
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")


def peak_memory_mb(comm: Any) -> dict[str, float]:
    """Peak resident memory: largest rank and sum over ranks (MB)."""
    from mpi4py import MPI

    mine = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB
    return {
        "max_rank_mb": comm.allreduce(mine, op=MPI.MAX),
        "total_mb": comm.allreduce(mine, op=MPI.SUM),
    }


def versions() -> dict[str, Any]:
    """Versions of the stack."""
    import dolfinx
    import gmsh
    from petsc4py import PETSc

    return {
        "scaffoldfem": scaffoldfem.__version__,
        "git_commit": git_commit(),
        "dolfinx": dolfinx.__version__,
        "petsc": ".".join(map(str, PETSc.Sys.getVersion())),
        "gmsh": gmsh.__version__,
        "python": sys.version.split()[0],
        "numpy": _version("numpy"),
        "pyvista": _version("pyvista"),
        "mpi": _mpi_version(),
        "platform": platform.platform(),
    }


def _mpi_version() -> str:
    from mpi4py import MPI

    return MPI.Get_library_version().splitlines()[0].strip()


def host() -> str:
    """Host name."""
    return socket.gethostname()
