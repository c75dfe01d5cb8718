"""Study files and the CLI's handling of bad input: its exit code and lines as a user sees them
(in this process where only validation runs; in a subprocess where the process matters)."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from conftest import ROOT, cli_in_process, run_cli, serial_only

from scaffoldfem.config.study import Study, load_study
from scaffoldfem.errors import StudyError

BASELINE = ROOT / "studies" / "baseline.toml"


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "study.toml"
    p.write_text(text)
    return p


def test_baseline_is_the_default():
    """studies/baseline.toml documents the defaults: it is the generated template and
    resolves to exactly Study()."""
    from scaffoldfem.config.template import template_text

    assert BASELINE.read_text() == template_text(), (
        "regenerate: scaffoldfem init --force studies/baseline.toml"
    )
    assert load_study(BASELINE).to_dict() == Study().to_dict()


def test_units_converted_once_to_internal():
    s = load_study(
        None,
        [
            "species.BDNF.diffusivity_free='2.75e-7 cm^2/s'",
            "species.BDNF.half_life='6 h'",
            "geometry.lesion.length='2000 um'",
        ],
    )
    bdnf = next(sp for sp in s.species if sp.name == "BDNF")
    assert bdnf.diffusivity_free == pytest.approx(2.75e-7 * 100 * 86400)  # mm²/day
    assert bdnf.half_life == pytest.approx(0.25)
    assert s.geometry.lesion.length == pytest.approx(2.0)


def test_resolved_study_round_trips():
    s = load_study(None, ["scaffold.porosity=0.85", "time.dt='6 h'"])
    again = Study.model_validate(tomllib.loads(s.to_toml()))
    assert again.to_dict() == s.to_dict()
    assert again.scaffold.porosity == 0.85 and again.time.dt == pytest.approx(0.25)


def test_preset_fills_only_missing_values():
    from scaffoldfem.physics.materials import POLYMERS

    s = load_study(None, ["scaffold.preset='gelatin'", "scaffold.solid_modulus='3 kPa'"])
    assert s.scaffold.solid_modulus == pytest.approx(3.0)
    assert s.scaffold.enzymatic_rate == pytest.approx(POLYMERS["gelatin"].k_e)
    assert s.scaffold.porosity == pytest.approx(POLYMERS["gelatin"].phi0)


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("[scaffold]\nporosityy = 0.8\n", "scaffold.porosityy: unknown key"),
        ('[scaffold]\nporosity = "high"\n', "scaffold.porosity: input should be a valid number"),
        ("[scaffold]\nporosity = 1.5\n", "scaffold.porosity: input should be less than 1"),
        ('[[species]]\nhalf_life = "1 h"\n', "species[0].name: missing required value"),
        ("[geometry.lesion]\nlength = 2\n", "geometry.lesion.length: needs a unit"),
        (
            '[geometry.lesion]\nlength = "2 kPa"\n',
            "geometry.lesion.length: wrong dimension: expected [length]",
        ),
        (
            '[geometry.lesion]\nlength = "-2 mm"\n',
            "geometry.lesion.length: must be > 0 (got -2 mm)",
        ),
    ],
)
def test_each_bad_input_class_is_one_line(tmp_path, text, line):
    with pytest.raises(StudyError) as err:
        load_study(write(tmp_path, text))
    assert len(err.value.lines) == 1
    assert err.value.lines[0].startswith(line), err.value.lines


@serial_only
def test_cli_reports_every_problem_once_and_exits_2(tmp_path):
    p = write(
        tmp_path, '[scaffold]\nporosity = 1.5\nbogus = 1\n[geometry.lesion]\nlength = "-2 mm"\n'
    )
    r = cli_in_process("check", str(p))
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert "Traceback" not in r.stderr
    assert "geometry.lesion.length: must be > 0 (got -2 mm)" in lines
    assert any(x.startswith("scaffold.porosity:") for x in lines)
    assert any(x.startswith("scaffold.bogus: unknown key") for x in lines)
    assert len(lines) == 3


@serial_only
@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--set", "scaffold.porosity=1.5"], "scaffold.porosity:"),
        (["--set", "geometry.lesion.length=2"], "geometry.lesion.length: needs a unit"),
        (["--set", "nonsense"], "--set nonsense: expected dotted.key=value"),
    ],
)
def test_cli_set_is_validated_like_the_file(args, needle):
    r = cli_in_process("check", str(BASELINE), *args)
    assert r.returncode == 2 and needle in r.stderr and "Traceback" not in r.stderr


@serial_only
def test_cli_bad_toml_and_missing_file(tmp_path):
    r = cli_in_process("check", str(write(tmp_path, "[scaffold\nporosity=")))
    assert r.returncode == 2 and "not valid TOML" in r.stderr and "Traceback" not in r.stderr
    r = cli_in_process("check", str(tmp_path / "nope.toml"))
    assert r.returncode == 2 and "no such study or sweep file" in r.stderr


@serial_only
def test_cli_check_of_a_sweep_validates_every_case(tmp_path):
    sweep = ROOT / "studies" / "questions" / "degradation_cavitation.toml"
    r = cli_in_process("check", str(sweep))
    assert r.returncode == 0, r.stderr
    assert "OK — sweep 'degradation_cavitation', 6 case(s) valid" in r.stdout
    assert "question: How fast may a scaffold degrade" in r.stdout
    r = cli_in_process("check", str(sweep), "--set", "scaffold.hydrolysis_rate=0.5 1/day")
    assert r.returncode == 2 and "is varied by the sweep" in r.stderr
    r = cli_in_process("check", str(sweep), "--set", "scaffold.porosity=1.5")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.count("every case: scaffold.porosity") == 1


@serial_only
def test_cli_message_printed_once_under_mpi(tmp_path):
    p = write(tmp_path, '[geometry.lesion]\nlength = "-2 mm"\n')
    r = run_cli("check", str(p), nproc=2)
    assert r.returncode == 2
    assert r.stderr.count("geometry.lesion.length: must be > 0") == 1
    assert "Traceback" not in r.stderr


@serial_only
def test_cli_check_and_init(tmp_path):
    r = cli_in_process("check", str(BASELINE), "--set", "scaffold.porosity=0.85")
    assert r.returncode == 0, r.stderr
    tpl = tmp_path / "mine.toml"
    r = cli_in_process("init", str(tpl))
    assert r.returncode == 0, r.stderr
    assert load_study(tpl).to_dict() == Study().to_dict()
    assert tpl.read_text().count("#") > 20  # annotated, not a bare dump
    r = cli_in_process("init", str(tpl))
    assert r.returncode == 2 and "exists" in r.stderr


@serial_only
def test_cli_usage_errors_exit_2_in_one_line(tmp_path):
    r = cli_in_process("sweep", str(ROOT / "studies" / "porosity_modulus.toml"))
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.strip() == (
        "scaffoldfem sweep: --out DIR is required (or --slurm to write a batch script)"
    )
    r = cli_in_process("plot", str(tmp_path / "nowhere"))
    assert r.returncode == 2 and r.stderr.strip().endswith("is not a directory")
    r = cli_in_process("run", str(BASELINE), "--out", str(tmp_path / "r"),
                       "--set", "axons.countt=3")
    assert r.returncode == 2 and r.stderr.strip() == "axons.countt: unknown key (got 3)"
    assert not (tmp_path / "r").exists()  # bad input: nothing was created


@serial_only
def test_a_corrupt_unit_cache_is_parsed_around(tmp_path):
    """pint's definitions cache (written on first use, not atomically) may be cut short
    by two ranks starting at once: the next command parses the definitions instead."""
    env = {"XDG_CACHE_HOME": str(tmp_path / "cache")}
    first = run_cli("check", str(BASELINE), env=env)
    pickles = list((tmp_path / "cache" / "pint").glob("*.pickle"))
    assert first.returncode == 0 and pickles, first.stderr
    for p in pickles:
        p.write_bytes(p.read_bytes()[:100])  # a half-written pickle, newer than its source
    again = run_cli("check", str(BASELINE), env=env)
    assert again.returncode == 0, again.stderr
    assert again.stdout == first.stdout and "Traceback" not in again.stderr
