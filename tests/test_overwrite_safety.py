"""Only our own directories and files are deleted or replaced (issue 13): ``run
--overwrite`` needs a directory scaffoldfem made, ``mesh -o`` replaces only a mesh
scaffoldfem wrote. Refusals through the CLI (exit 2, one line naming the path,
nothing touched); what counts as ours, directly on the rank-0 functions."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import ROOT, run_cli, serial_only

from scaffoldfem.cli import _check_mesh_output
from scaffoldfem.errors import RunDirError, UsageError
from scaffoldfem.run.rundir import is_ours, prepare_run_dir

BASELINE = ROOT / "studies" / "baseline.toml"


def snapshot(d: Path) -> dict[str, bytes]:
    return {str(p.relative_to(d)): p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file()}


def one_line(r: subprocess.CompletedProcess) -> str:
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    return lines[0]


@pytest.fixture
def user_dir(tmp_path: Path) -> Path:
    """A directory of someone's work that happens to look a little like a run."""
    d = tmp_path / "thesis"
    (d / "fields").mkdir(parents=True)
    (d / "chapter1.tex").write_text("precious\n")
    (d / "study.resolved.toml").write_text("name = 'mine'\n")
    (d / "fields" / "data.h5").write_bytes(b"\x00" * 64)
    return d


@serial_only
@pytest.mark.parametrize("how", ["directory", "file"])
def test_overwrite_refuses_what_scaffoldfem_did_not_make(user_dir, how):
    target = user_dir if how == "directory" else user_dir / "chapter1.tex"
    before = snapshot(user_dir)
    r = run_cli("run", str(BASELINE), "--out", str(target), "--overwrite")
    assert r.returncode == 2
    line = one_line(r)
    assert str(target) in line
    assert "nothing was deleted" in line or "not a directory" in line
    assert snapshot(user_dir) == before


@serial_only
def test_mesh_output_does_not_replace_a_foreign_file(user_dir):
    target = user_dir / "chapter1.tex"
    before = snapshot(user_dir)
    r = run_cli("mesh", str(BASELINE), "-o", str(target))
    assert r.returncode == 2
    assert f"-o {target} exists and is not a mesh scaffoldfem wrote" in one_line(r)
    assert snapshot(user_dir) == before


def _legacy_run(d: Path, *, provenance: bool) -> Path:
    (d / "checkpoints").mkdir(parents=True)
    (d / "study.resolved.toml").write_text("name = 'old'\n")
    (d / "checkpoints" / "ckpt_00000002.npz").write_bytes(b"x")
    if provenance:
        (d / "provenance.json").write_text(json.dumps({"versions": {"scaffoldfem": "0.0.9"}}))
    return d


def test_what_counts_as_ours(tmp_path, user_dir):
    empty = tmp_path / "empty"
    empty.mkdir()
    marked = tmp_path / "marked"
    prepare_run_dir(marked, resume=False, overwrite=False)  # writes the marker first
    (marked / "notes.txt").write_text("added later\n")  # inside a dir of ours: ours
    sweep = tmp_path / "sweep"
    sweep.mkdir()
    (sweep / "sweep.json").write_text(json.dumps({"scaffoldfem": "0.1.0", "cases": []}))
    (sweep / "cases").mkdir()
    ours = [empty, marked, sweep, _legacy_run(tmp_path / "old_done", provenance=True),
            _legacy_run(tmp_path / "old_stopped", provenance=False)]
    assert all(is_ours(d) for d in ours)
    stranger = _legacy_run(tmp_path / "stranger", provenance=False)
    (stranger / "chapter1.tex").write_text("mine\n")  # not a run-directory name
    foreign = tmp_path / "foreign.json"
    foreign.write_text(json.dumps({"written_by": "someone else"}))
    link = tmp_path / "link"  # even to a directory of ours: rmtree never follows a link
    link.symlink_to(empty)
    not_ours = [user_dir, stranger, foreign, link]
    assert not any(is_ours(p) for p in not_ours)
    for d in ours:
        prepare_run_dir(d, resume=False, overwrite=True)
        assert [p.name for p in d.iterdir()] == ["run.json"], d  # replaced by a new run
    for p in not_ours:
        before = p.read_bytes() if p.is_file() else snapshot(p)
        why = f"{re.escape(str(p))}.*(nothing was deleted|not a directory)"
        with pytest.raises(RunDirError, match=why):
            prepare_run_dir(p, resume=False, overwrite=True)
        assert (p.read_bytes() if p.is_file() else snapshot(p)) == before
    assert link.is_symlink() and empty.is_dir()


def test_mesh_output_replaces_only_our_meshes(tmp_path):
    cached = next(iter(sorted((ROOT / "meshes").rglob("*.msh"))), None)
    if cached is None:
        pytest.skip("no cached mesh")
    ours = tmp_path / "mine.msh"
    shutil.copyfile(cached, ours)
    _check_mesh_output(ours)  # a mesh scaffoldfem wrote: may be replaced
    _check_mesh_output(tmp_path / "new" / "mesh.msh")  # absent: may be written
    fake = tmp_path / "fake.msh"
    fake.write_text('$MeshFormat\n4.1 0 8\n$EndMeshFormat\n$PhysicalNames\n1\n3 1 "rock"\n'
                    "$EndPhysicalNames\n")
    with pytest.raises(UsageError, match="not a mesh scaffoldfem wrote"):
        _check_mesh_output(fake)
    with pytest.raises(UsageError, match="is a directory"):
        _check_mesh_output(tmp_path)
