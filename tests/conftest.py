"""Shared fixtures: MPI teardown discipline and a clean CLI runner."""

from __future__ import annotations

import gc
import os
import subprocess
import sys
from pathlib import Path

import pytest
from mpi4py import MPI

import scaffoldfem  # noqa: F401  (orders MPI before dolfinx)

ROOT = Path(__file__).resolve().parents[1]


def pytest_configure(config):
    # Under mpiexec only rank 0 reports; the other ranks still run every test.
    if MPI.COMM_WORLD.rank > 0 and not os.environ.get("SCAFFOLDFEM_TEST_ALL_RANKS"):
        config.option.verbose = -2
        config.option.reportchars = ""
        sys.stdout = open(os.devnull, "w")


@pytest.fixture(autouse=True)
def _mpi_teardown():
    yield
    gc.collect()  # PETSc objects must be destroyed collectively
    MPI.COMM_WORLD.barrier()


@pytest.fixture
def comm():
    return MPI.COMM_WORLD


def clean_env() -> dict[str, str]:
    """Environment for a child process that must not join this MPI job."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PMI_", "PMIX_", "MPI_", "HYDRA_", "OMPI_", "MPIR_"))
    }
    env["PYTHONPATH"] = str(ROOT)
    # Children share the repository's mesh cache (meshing once per geometry).
    env.setdefault("SCAFFOLDFEM_MESH_CACHE", str(ROOT / "meshes" / "cache"))
    return env


def run_cli(*args: str, cwd: Path | None = None, nproc: int = 1, timeout: float = 600):
    """Run ``scaffoldfem ARGS`` in a subprocess (optionally under mpiexec)."""
    cmd = [sys.executable, "-m", "scaffoldfem", *args]
    if nproc > 1:
        mpiexec = Path(sys.executable).with_name("mpiexec")
        cmd = [str(mpiexec), "-n", str(nproc), *cmd]
    return subprocess.run(
        cmd, capture_output=True, text=True, cwd=cwd, env=clean_env(), timeout=timeout
    )


serial_only = pytest.mark.skipif(
    MPI.COMM_WORLD.size > 1, reason="runs subprocesses; done in the serial pass"
)
