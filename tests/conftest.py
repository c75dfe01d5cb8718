"""Shared fixtures: MPI teardown discipline, a leak guard and a clean CLI runner."""

from __future__ import annotations

import contextlib
import gc
import io
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from mpi4py import MPI

import scaffoldfem  # noqa: F401  (orders MPI before dolfinx)
from scaffoldfem.fem.compat import uncache_singledispatchmethods
from scaffoldfem.geometry.cache import CACHE_ENV

ROOT = Path(__file__).resolve().parents[1]

uncache_singledispatchmethods()


class _OtherRankFailures:
    """On ranks > 0 (whose report is silenced), a failure is still written to stderr:
    a test failing on one rank only fails the job with no word on rank 0's report."""

    def __init__(self, rank: int):
        self.rank = rank

    def pytest_runtest_logreport(self, report):
        if report.failed:
            print(
                f"\n[rank {self.rank}] FAILED {report.nodeid} ({report.when})\n"
                f"{report.longreprtext}\n",
                file=sys.__stderr__,
                flush=True,
            )

    def pytest_collectreport(self, report):
        if report.failed:
            print(f"\n[rank {self.rank}] COLLECTION ERROR {report.nodeid}\n"
                  f"{report.longreprtext}\n", file=sys.__stderr__, flush=True)


def pytest_configure(config):
    # Under mpiexec only rank 0 reports; the other ranks still run every test.
    rank = MPI.COMM_WORLD.rank
    if rank > 0 and not os.environ.get("SCAFFOLDFEM_TEST_ALL_RANKS"):
        config.option.verbose = -2
        config.option.reportchars = ""
        sys.stdout = open(os.devnull, "w")
        config.pluginmanager.register(_OtherRankFailures(rank), "other-rank-failures")


def free_context_ids(comm: MPI.Comm = MPI.COMM_WORLD, cap: int = 4096) -> int:
    """Collective: how many more communicators ``comm`` can be duplicated into (the
    fewest over the ranks); MPICH has ~2048 context ids per process."""
    dups = []
    try:
        while len(dups) < cap:
            dups.append(comm.Dup())
    except MPI.Exception:
        pass
    n = len(dups)
    for d in dups:
        d.Free()
    return comm.allreduce(n, op=MPI.MIN)


def pytest_collection_finish(session):
    # What exists once every test module is imported (DOLFINx, UFL, numba, pandas, ...:
    # ~190k objects) lives to the end: frozen out of the cyclic collector, the
    # gc.collect() after every test scans only what the tests made (measured: 0.20 ->
    # 0.075 s per test). Objects made later are collected as before.
    gc.collect()
    gc.freeze()


@pytest.fixture(autouse=True)
def _mpi_teardown(request):
    t0 = time.perf_counter()
    yield
    uncache_singledispatchmethods()  # modules a test imported late (ffcx formatters)
    gc.collect()  # PETSc objects must be destroyed collectively
    MPI.COMM_WORLD.barrier()
    # Opt-in leak log: SCAFFOLDFEM_TEST_CONTEXTS=FILE appends "free ids, seconds, test"
    # per test (the seconds from the test's start to the end of its teardown).
    log = os.environ.get("SCAFFOLDFEM_TEST_CONTEXTS")
    if log:
        n = free_context_ids()
        if MPI.COMM_WORLD.rank == 0:
            with open(log, "a") as f:
                print(n, f"{time.perf_counter() - t0:.1f}", request.node.nodeid, file=f)


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
    env.setdefault(CACHE_ENV, str(ROOT / "meshes" / "cache"))
    return env


def run_cli(*args: str, cwd: Path | None = None, nproc: int = 1, timeout: float = 600,
            env: dict[str, str] | None = None):
    """Run ``scaffoldfem ARGS`` in a subprocess (optionally under mpiexec), with
    ``env`` set over :func:`clean_env`."""
    cmd = [sys.executable, "-m", "scaffoldfem", *args]
    if nproc > 1:
        mpiexec = Path(sys.executable).with_name("mpiexec")
        cmd = [str(mpiexec), "-n", str(nproc), *cmd]
    return subprocess.run(
        cmd, capture_output=True, text=True, cwd=cwd, env={**clean_env(), **(env or {})},
        timeout=timeout)


def cli_in_process(*args: str) -> subprocess.CompletedProcess:
    """``scaffoldfem ARGS`` through :func:`scaffoldfem.cli.main` in this process, for
    commands that validate or refuse, and for reference runs a subprocess run is
    compared with (nothing that needs its own process, signals or environment): the
    same exit code and output as :func:`run_cli` without ~3 s of interpreter start-up
    and imports. An unexpected exception propagates (a subprocess would print its
    traceback and exit 1: the test fails either way)."""
    from scaffoldfem.cli import main

    out, err = io.StringIO(), io.StringIO()
    with (pytest.MonkeyPatch.context() as env, contextlib.redirect_stdout(out),
          contextlib.redirect_stderr(err)):
        # The mesh cache a subprocess gets (clean_env), not one relative to this directory.
        env.setenv(CACHE_ENV, clean_env()[CACHE_ENV])
        try:
            code = main(list(args))
        except SystemExit as stop:  # argparse's usage errors; as the interpreter maps it
            code = stop.code if isinstance(stop.code, int) else int(stop.code is not None)
            if isinstance(stop.code, str):
                print(stop.code, file=err)
    return subprocess.CompletedProcess(["scaffoldfem", *args], code, out.getvalue(),
                                       err.getvalue())


serial_only = pytest.mark.skipif(
    MPI.COMM_WORLD.size > 1, reason="runs subprocesses; done in the serial pass"
)
