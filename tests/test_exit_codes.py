"""One exit-code contract (issue 13), through the CLI as a user sees it: 2 and one
line naming the path for file-system errors (on 1 and 2 ranks), for ``plot`` on a
directory that is not a run; 3 for a solve that PETSc cannot do; output files
honour the umask. (Root ignores permissions, so unwritable paths are ``/proc``.)

A refusal on one rank and a run that fails are answered by ``cli.main`` in this
process (:func:`conftest.cli_in_process`: the same exit code and output without ~3 s
of interpreter start-up each); a subprocess only where the process matters: its
umask, and the 2-rank job."""

from __future__ import annotations

import os
import stat
import subprocess
import sys

import pytest
from conftest import ROOT, clean_env, cli_in_process, run_cli, serial_only

pytestmark = serial_only

BASELINE = ROOT / "studies" / "baseline.toml"


def one_line(r: subprocess.CompletedProcess) -> str:
    """The single stderr line of a refused command (no traceback)."""
    lines = [ln for ln in r.stderr.strip().splitlines() if not ln.startswith("Abort(")]
    assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    return lines[0]


@pytest.mark.parametrize(
    ("target", "words"),
    [
        (".", "is a directory"),
        ("missing/study.toml", "folder missing does not exist"),
        ("/proc/study.toml", "cannot write /proc/study.toml"),
    ],
)
def test_init_refuses_unwritable_targets(tmp_path, monkeypatch, target, words):
    (tmp_path / "existing.toml").write_text("mine\n")
    monkeypatch.chdir(tmp_path)  # the relative targets, as from a shell in tmp_path
    r = cli_in_process("init", target)
    assert r.returncode == 2
    assert words in one_line(r)
    assert (tmp_path / "existing.toml").read_text() == "mine\n"


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o077, 0o600)])
def test_written_files_honour_the_umask(tmp_path, umask, mode):
    # init writes through the temporary-file-and-rename path every run output uses.
    r = subprocess.run([sys.executable, "-m", "scaffoldfem", "init", "s.toml"], cwd=tmp_path,
                       capture_output=True, text=True, env=clean_env(), timeout=120,
                       preexec_fn=lambda: os.umask(umask))
    assert r.returncode == 0, r.stderr
    assert stat.S_IMODE((tmp_path / "s.toml").stat().st_mode) == mode


@pytest.mark.parametrize(("out", "nproc"), [("/proc/scaffoldfem_run", 1), ("file/run", 2)])
def test_run_into_an_impossible_directory(tmp_path, monkeypatch, out, nproc):
    (tmp_path / "file").write_text("a file, not a folder\n")
    if nproc == 1:
        monkeypatch.chdir(tmp_path)
        r = cli_in_process("run", str(BASELINE), "--out", out)
    else:  # a 2-rank job: its own processes under mpiexec
        r = run_cli("run", str(BASELINE), "--out", out, cwd=tmp_path, nproc=nproc)
    assert r.returncode == 2
    line = one_line(r)  # printed once on 2 ranks as well
    assert line.startswith(f"scaffoldfem run: {out}: cannot create the run directory")


def test_plot_refuses_a_directory_that_is_not_a_run(tmp_path):
    (tmp_path / "notes.txt").write_text("hello\n")
    r = cli_in_process("plot", str(tmp_path))
    assert r.returncode == 2
    assert "is not a run or sweep directory" in one_line(r)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]  # nothing drawn


def test_petsc_failure_is_a_numerical_failure(tmp_path):
    """An error raised inside PETSc's set-up of a solve (GAMG's coarse solver asks
    MUMPS for an incomplete Cholesky, which it does not do; the coarse options are read
    at the first solve): exit 3 with the field named, not exit 1 with a traceback. (It
    used to be a 1e308 kPa stiffness, which overflowed in DOLFINx's assembly; the
    closed-form matrix, fem/cell_operator.py, stays finite.)"""
    sets = ['geometry.resolution="0.35 mm"', 'geometry.cord.length="6 mm"',
            'time.duration="1 day"', "axons.count=0", "output.figures=false",
            "solver.mechanics.mg_coarse_pc_type='icc'",
            "solver.mechanics.mg_coarse_pc_factor_mat_solver_type='mumps'"]
    # In this process: main maps the PETSc error to the exit code (uniquely prefixed
    # solver options: nothing is left in PETSc's options for later tests).
    r = cli_in_process("run", str(BASELINE), "--out", str(tmp_path / "run"), "--quiet",
                       *[x for o in sets for x in ("--set", o)])
    assert r.returncode == 3, r.stderr
    last = r.stderr.strip().splitlines()[-1]
    assert "field 'mechanics' failed at t = 0 day: PETSc error code" in last
    assert "Traceback" not in r.stderr
    assert (tmp_path / "run" / "run.json").is_file() and not (tmp_path / "run" / "DONE").exists()
