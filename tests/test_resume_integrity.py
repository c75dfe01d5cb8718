"""``--resume`` continues only the same run (issue 13), through the CLI as a user
sees it: a changed study or mesh is refused naming what differs, a finished run is
left untouched, a restart from t = 0 is announced under ``--quiet`` too; the run's
files honour the umask.

The one run is a subprocess (its own umask); the refusals and the no-op on the
finished run are answered by ``cli.main`` in this process
(:func:`conftest.cli_in_process`: the same exit code and output, no interpreter
start-up)."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT, clean_env, cli_in_process, serial_only

from scaffoldfem.config.study import load_study
from scaffoldfem.run.identity import study_differences

pytestmark = serial_only

BASELINE = ROOT / "studies" / "baseline.toml"
#: One day on the coarse mesh of tests/test_run.py (the mesh cache is shared).
TINY = [
    'geometry.resolution="0.35 mm"',
    'geometry.cord.length="6 mm"',
    'time.duration="1 day"',
    'time.dt="0.5 day"',
    'output.interval="0.5 day"',
    'output.checkpoint_interval="0.5 day"',
    "axons.count=8",
    "output.figures=false",
    'axons.cue_smoothing="0.2 mm"',
]


def resume_args(out: Path, *more: str) -> list[str]:
    """``run BASELINE --out OUT --resume --quiet`` with TINY and ``more``."""
    sets = [x for o in (*TINY, *more) for x in ("--set", o)]
    return ["run", str(BASELINE), "--out", str(out), "--resume", "--quiet", *sets]


def run(out: Path, *more: str, umask: int) -> subprocess.CompletedProcess:
    """``scaffoldfem`` with :func:`resume_args` in a subprocess under ``umask``."""
    return subprocess.run([sys.executable, "-m", "scaffoldfem", *resume_args(out, *more)],
                          capture_output=True, text=True, env=clean_env(), timeout=600,
                          preexec_fn=lambda: os.umask(umask))


def resume(out: Path, *more: str) -> subprocess.CompletedProcess:
    """:func:`resume_args` in this process (for what refuses or has nothing to do)."""
    return cli_in_process(*resume_args(out, *more))


def snapshot(d: Path) -> dict[str, tuple[int, bytes]]:
    """Every file under ``d``: modification time and bytes."""
    return {str(p.relative_to(d)): (p.stat().st_mtime_ns, p.read_bytes())
            for p in sorted(d.rglob("*")) if p.is_file()}


def one_line(r: subprocess.CompletedProcess) -> str:
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    return lines[0]


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    """A run of an older version stopped before its first valid checkpoint (only
    study.resolved.toml and a checkpoint whose data does not match its hash),
    resumed under --quiet and umask 027."""
    out = tmp_path_factory.mktemp("resume") / "run"
    (out / "checkpoints").mkdir(parents=True)
    (out / "study.resolved.toml").write_text(load_study(BASELINE, TINY).to_toml())
    (out / "checkpoints" / "ckpt_00000001.json").write_text('{"sha256": "0", "meta": {}}')
    (out / "checkpoints" / "ckpt_00000001.npz").write_bytes(b"torn")
    r = run(out, umask=0o027)
    assert r.returncode == 0, r.stderr
    return out, r


def test_restart_from_zero_is_announced_under_quiet(finished):
    out, r = finished
    assert "no valid checkpoint: starting from t = 0" in r.stdout
    assert (out / "DONE").is_file()
    record = json.loads((out / "run.json").read_text())  # the older run is adopted
    assert record["written_by"] == "scaffoldfem" and len(record["mesh_sha256"]) == 64
    assert record["study_sha256"] == load_study(BASELINE, TINY).digest()


def test_run_files_honour_the_umask(finished):
    out, _ = finished
    for name in ("run.json", "metrics.json", "timeseries.csv", "provenance.json", "DONE"):
        assert stat.S_IMODE((out / name).stat().st_mode) == 0o640, name
    for path in (out / "checkpoints").glob("ckpt_*"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o640, path
    assert stat.S_IMODE((out / "fields").stat().st_mode) == 0o750


def test_changed_study_is_refused_naming_the_keys(finished):
    out, _ = finished
    before = snapshot(out)
    r = resume(out, 'species.BDNF.half_life="2 h"', 'geometry.resolution="0.3 mm"')
    assert r.returncode == 2
    assert one_line(r).startswith("scaffoldfem run: --resume: study differs from the run's in: "
                                  "geometry.resolution, species.BDNF.half_life (")
    assert snapshot(out) == before


def test_finished_run_is_left_untouched(finished):
    out, _ = finished
    before = snapshot(out)
    r = resume(out, 'output.interval="0.25 day"')  # a safe key: still nothing to do
    assert r.returncode == 0, r.stderr
    assert "already finished (DONE); nothing to resume, nothing changed" in r.stdout
    r = resume(out, 'time.duration="2 day"')  # extending a finished run is refused
    assert r.returncode == 2 and "is finished (DONE)" in one_line(r)
    assert snapshot(out) == before


def test_other_mesh_is_refused(finished, tmp_path):
    out = tmp_path / "other_mesh"
    shutil.copytree(finished[0], out)
    (out / "DONE").unlink()
    record = json.loads((out / "run.json").read_text())
    record["mesh_sha256"] = "0" * 64  # as if the run had been meshed otherwise
    (out / "run.json").write_text(json.dumps(record))
    before = snapshot(out)
    r = resume(out)
    assert r.returncode == 2
    assert "--resume: the mesh differs from the run's" in one_line(r)
    assert snapshot(out) == before


def test_safe_keys_and_only_a_longer_duration():
    base = load_study(BASELINE, TINY).to_dict()
    changed = load_study(BASELINE, [*TINY, 'time.duration="2 day"', 'output.interval="1 day"',
                                    "scaffold.porosity=0.8"]).to_dict()
    assert study_differences(base, changed) == (
        ["scaffold.porosity"], ["output.interval", "time.duration"])
    shorter = load_study(BASELINE, [*TINY, 'time.duration="0.5 day"']).to_dict()
    assert study_differences(base, shorter) == (["time.duration"], [])
    # Keys as --set writes them: list elements by name, or by index without one.
    old = {"species": [{"name": "BDNF", "doses": [{"rate": "1 ng/day"}]}]}
    new = {"species": [{"name": "BDNF", "doses": [{"rate": "2 ng/day"}]}, {"name": "NT3"}]}
    assert study_differences(old, new) == (
        ["species.BDNF.doses.0.rate", "species.NT3.name"], [])
