"""Generated SLURM scripts are safe: hostile sweep names, case ids and paths are refused
or quoted, and nothing escapes ``--out`` (issue 13).

Names and explicit ids must be plain words (``^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$``);
paths go into shell lines through ``shlex.quote`` and must be plain on ``#SBATCH``
lines (sbatch knows no quoting). Scripts are written in-process (no MPI, no
DOLFINx) and parsed with ``bash -n``; the CLI is run where the exit code and the
one-line message are the point.
"""

from __future__ import annotations

import shlex
import subprocess
from pathlib import Path

import pytest
from conftest import ROOT, cli_in_process, serial_only

from scaffoldfem.errors import RunDirError, StudyError
from scaffoldfem.sweep.plan import load_sweep
from scaffoldfem.sweep.slurm import array_script, write_slurm_scripts

BASELINE = ROOT / "studies" / "baseline.toml"
HOSTILE = ["x\ntouch /tmp/pwned", "../x", "$(rm -rf ~)", "it's", 'say "hi"', "a b", "`id`",
           "x;reboot", "", ".hidden", "a/b", "x" * 65]
GRID = '[grid]\n"scaffold.porosity" = [0.7, 0.8]\n'


def sweep_file(path: Path, body: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(body)
    return path


def toml_string(s: str) -> str:
    """``s`` as a TOML basic string (escapes newlines and quotes)."""
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def test_hostile_sweep_names_and_case_ids_are_refused(tmp_path):
    for name in HOSTILE:
        path = sweep_file(tmp_path / "s.toml", f"name = {toml_string(name)}\n{GRID}")
        with pytest.raises(StudyError) as err:
            load_sweep(path)
        line, = err.value.lines
        assert line.startswith(f"{path}: name: a sweep name must be"), line
        assert repr(name) in line and "\n" not in line
        path.write_text(f'[[cases]]\nid = {toml_string(name)}\n"scaffold.porosity" = 0.7\n')
        with pytest.raises(StudyError) as err:
            load_sweep(path)
        line, = err.value.lines
        assert "cases[0].id must be" in line and repr(name) in line, line


def test_sweep_named_after_a_hostile_file_is_refused(tmp_path):
    path = sweep_file(tmp_path / "$(touch x).toml", GRID)
    with pytest.raises(StudyError, match=r"name: the sweep is named after its file"):
        load_sweep(path)


def test_hostile_keys_never_reach_the_case_ids(tmp_path):
    # A quoted key may hold anything; the id is built from safe characters only.
    path = sweep_file(tmp_path / "s.toml",
                      '[grid]\n"scaffold.porosity" = [0.7]\n"x.$(id)\\n`y`" = [1]\n')
    with pytest.raises(StudyError) as err:
        load_sweep(path)
    cid = err.value.lines[1].split(":", 1)[0]
    assert cid == "c000-porosity0.7-idy1", err.value.lines
    assert "\n" not in err.value.lines[1]


def test_paths_are_quoted_and_scripts_parse(tmp_path, monkeypatch):
    # Spaces, quotes and $(...) in the sweep file's directory and in the image path:
    # quoted in shell lines, never on #SBATCH lines.
    odd = tmp_path / "we'ird $(touch pwned) \"dir\""
    path = sweep_file(odd / "s.toml", f'name = "odd"\nbase = {toml_string(str(BASELINE))}\n'
                      f"{GRID}")
    plan = load_sweep(path)
    image = str(tmp_path / "my image's $(x).sif")
    monkeypatch.setenv("SCAFFOLDFEM_SIF", image)
    out = tmp_path / "out"
    paths = write_slurm_scripts(plan, out, ranks_per_case=2)
    for p in paths:
        text = p.read_text()
        subprocess.run(["bash", "-n", str(p)], check=True)
        for line in text.splitlines():  # no injected command starts a line
            assert not line.startswith(("touch", "$(")), line
            if line.startswith("#SBATCH"):
                assert "'" not in line and "$(" not in line, line
        # The sweep path is one shell word that reads back as the exact path.
        sweep_line = next(x for x in text.splitlines() if " sweep " in x and "--out" in x)
        words = shlex.split(sweep_line.rstrip("\\"))
        assert str(plan.path) in words
        # The default image assignment evaluates to exactly the path.
        assign = next(x for x in text.splitlines() if x.startswith("DEFAULT_SIF="))
        got = subprocess.run(["bash", "-c", f'{assign}\nprintf %s "$DEFAULT_SIF"'],
                             capture_output=True, text=True, check=True).stdout
        assert got == image
    assert not (tmp_path / "pwned").exists() and not (odd / "pwned").exists()


def test_unplain_out_paths_and_ranks_below_one_are_refused(tmp_path):
    plan = load_sweep(sweep_file(tmp_path / "s.toml", GRID))
    for out in ("o ut", "o'ut", "o\nut", "o$(x)ut"):
        with pytest.raises(RunDirError, match=r"^--out .*#SBATCH"):
            write_slurm_scripts(plan, tmp_path / out, ranks_per_case=1)
        assert not (tmp_path / out).exists()
    for k in (0, -1):  # never "#SBATCH --ntasks=0"
        with pytest.raises(StudyError) as err:
            write_slurm_scripts(plan, tmp_path / "out", ranks_per_case=k)
        assert err.value.lines == [f"--ranks-per-case: must be >= 1 (got {k})"]
        with pytest.raises(StudyError):
            array_script(plan, tmp_path / "out", ranks_per_case=k)
    assert not (tmp_path / "out").exists()


@serial_only
def test_cli_refuses_a_hostile_name_in_one_line_and_writes_nothing(tmp_path):
    path = sweep_file(tmp_path / "s.toml", f'name = "x\\ntouch {tmp_path}/pwned"\n{GRID}')
    r = cli_in_process("sweep", str(path), "--slurm", "--out", str(tmp_path / "out"))
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and ": name: " in r.stderr
    assert not (tmp_path / "out").exists() and not (tmp_path / "pwned").exists()


@serial_only
def test_cli_ranks_per_case_zero_is_one_line_and_writes_nothing(tmp_path):
    path = sweep_file(tmp_path / "s.toml", f"base = {toml_string(str(BASELINE))}\n{GRID}")
    out = tmp_path / "out"
    r = cli_in_process("sweep", str(path), "--slurm", "--out", str(out), "--ranks-per-case", "0")
    assert r.returncode == 2, r.stderr
    assert r.stderr.strip() == "--ranks-per-case: must be >= 1 (got 0)" and not out.exists()


def test_a_case_path_leading_out_of_the_sweep_directory_is_refused(tmp_path):
    from scaffoldfem.sweep.runner import prepare_sweep_dir  # DOLFINx: only this test

    plan = load_sweep(sweep_file(tmp_path / "s.toml", GRID))
    out = tmp_path / "out"
    prepare_sweep_dir(plan, out, overwrite=False)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (out / "cases").mkdir(exist_ok=True)
    (out / "cases" / plan.cases[0].id).symlink_to(elsewhere)
    with pytest.raises(RunDirError, match="outside the sweep directory") as err:
        prepare_sweep_dir(plan, out, overwrite=False)
    assert len(err.value.lines) == 1
    assert not any(elsewhere.iterdir())
