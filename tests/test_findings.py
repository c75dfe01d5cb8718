"""docs/findings.md from question sweeps: intervals, verdicts (including "against the
review's expectation") and figures, on a sweep whose results are known exactly."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT, run_cli, serial_only
from PIL import Image

from scaffoldfem.axons.crossing import wilson_interval
from scaffoldfem.files import atomic_write_json, atomic_write_text
from scaffoldfem.run.rundir import prepare_run_dir_mpi
from scaffoldfem.sweep.plan import load_sweep
from scaffoldfem.sweep.runner import run_sweep
from scaffoldfem.viz.findings import write_findings
from scaffoldfem.viz.findings_data import Value, read_question

SEEDED = 400

QUESTION = f"""
name = "known"
description = "Two porosities with known outcomes"
question = "Does the denser scaffold do better?"
outcomes = ["axons.crossing_fraction", "species.BDNF.lesion_auc_ng_day_per_mL",
            "scaffold.mass_remaining_fraction", "mechanics.interface_strain_jump.p95"]
depends_on = ["Nothing: the results are written by the test."]
base = "{ROOT / "studies" / "baseline.toml"}"

[[cases]]
id = "dense"
"scaffold.porosity" = 0.6

[[cases]]
id = "open"
"scaffold.porosity" = 0.9

[[expect]]
outcome = "axons.crossing_fraction"
higher = "dense"
lower = "open"
source = "made up, to come out against"

[[expect]]
outcome = "species.BDNF.lesion_auc_ng_day_per_mL"
higher = {{ "scaffold.porosity" = 0.9 }}
lower = "dense"
source = "made up, to come out as expected"

[[expect]]
outcome = "scaffold.mass_remaining_fraction"
higher = "open"
lower = "dense"
source = "made up, a 0.6 % difference"

[[expect]]
outcome = "mechanics.interface_strain_jump.p95"
higher = "open"
lower = "dense"
source = "made up, nothing links porosity to it here"
"""


def known_runner(study, out, comm, *, resume, overwrite, quiet, on_done=None):
    """Metrics that are simple functions of the porosity phi: crossed = 400 (phi - 0.3)
    of 400 axons, BDNF AUC 1000 phi, mass remaining 0.5 + 0.01 phi."""
    out = Path(out)
    prepare_run_dir_mpi(out, comm, resume=resume, overwrite=overwrite)
    phi = study.scaffold.porosity
    crossed = round(SEEDED * (phi - 0.3))
    if comm.rank == 0:
        atomic_write_text(out / "study.resolved.toml", study.to_toml())
        atomic_write_json(out / "metrics.json", {
            "axons": {"crossing_fraction": crossed / SEEDED, "crossed": crossed,
                      "seeded": SEEDED},
            "species": {"BDNF": {"lesion_auc_ng_day_per_mL": 1000 * phi}},
            "scaffold": {"mass_remaining_fraction": 0.5 + 0.01 * phi},
            "mechanics": {"interface_strain_jump": {"p95": 0.02}},
            "mesh": {"ranks": comm.size}})
        atomic_write_text(out / "DONE", "ok\n")
    comm.barrier()
    return 0


@pytest.fixture
def sweep_dir(comm, tmp_path):
    root = Path(comm.bcast(str(tmp_path), root=0))
    path = root / "known.toml"
    if comm.rank == 0:
        path.write_text(QUESTION)
    comm.barrier()
    out = root / "runs" / "known"
    summary = run_sweep(load_sweep(path), out, comm, runner=known_runner, quiet=True)
    assert summary.exit_code == 0
    return out


def test_outcomes_and_verdicts_of_a_known_sweep(comm, sweep_dir):
    q = read_question(sweep_dir)
    dense = q.outcome(["c000-dense"], "axons.crossing_fraction")
    lo, hi = wilson_interval(120, SEEDED)
    assert (dense.value, dense.lo, dense.hi) == pytest.approx((0.3, lo, hi))
    pooled = q.outcome(["c000-dense", "c001-open"], "axons.crossing_fraction")
    assert pooled.value == pytest.approx(360 / 800)  # counts pooled, not fractions averaged
    assert pooled.hi - pooled.lo < dense.hi - dense.lo
    verdicts = [j.verdict for j in q.judged()]
    assert verdicts == ["against the expectation", "as expected", "not resolved", "no effect"]


def test_findings_page_says_what_came_out_against(comm, sweep_dir):
    if comm.rank == 0:
        page = write_findings(sweep_dir.parent, sweep_dir.parent.parent / "docs" / "findings.md")
        text = page.read_text()
        assert "## Does the denser scaffold do better?" in text
        assert "30.0 % [25.7, 34.7]" in text  # Wilson interval of 120 / 400
        assert "**against the review's expectation**" in text
        assert "as the review expects" in text and "not resolved" in text
        assert "**no effect at all in the model**" in text
        assert "Nothing: the results are written by the test." in text
        png = page.parent / "findings" / "known.png"
        img = np.asarray(Image.open(png).convert("L"), dtype=float)
        assert img.std() > 10  # bars and text, not a blank canvas
    comm.barrier()


def test_deterministic_values_use_the_stated_tolerance():
    assert not Value(1.0).separated_from(Value(1.04))
    assert Value(1.0).separated_from(Value(1.06))
    assert not Value(0.5, 0.4, 0.6).separated_from(Value(0.55, 0.45, 0.65))
    assert Value(0.3, 0.25, 0.35).separated_from(Value(0.6, 0.55, 0.65))
    assert not math.isnan(Value(0.0).value) and not Value(0.0).separated_from(Value(0.0))


@serial_only
def test_findings_command_refuses_a_directory_without_sweeps(tmp_path):
    r = run_cli("findings", str(tmp_path))
    assert r.returncode == 2 and "holds no finished sweep" in r.stderr
    assert "Traceback" not in r.stderr


def test_wall_time_is_the_union_of_the_case_runs(tmp_path):
    """Two cases side by side from t=0 (100 s and 60 s), a third after a pause (t=500
    to 530): 130 s of running, not 530."""
    import json
    import os
    from datetime import UTC, datetime

    from scaffoldfem.viz.findings_data import _wall_time

    t0 = 1_800_000_000.0
    dirs = []
    for i, (start, end) in enumerate([(0, 100), (0, 60), (500, 530)]):
        d = tmp_path / f"c{i}"
        d.mkdir()
        created = datetime.fromtimestamp(t0 + start, UTC).isoformat()
        (d / "run.json").write_text(json.dumps({"created": created}))
        (d / "DONE").write_text("ok\n")
        os.utime(d / "DONE", (t0 + end, t0 + end))
        dirs.append(d)
    assert _wall_time(dirs) == pytest.approx(130.0)


def test_sobol_verdicts_need_variation_and_enough_base_points():
    import pandas as pd

    from scaffoldfem.viz.findings import _index_verdict

    table = pd.DataFrame({"m": [0.0] * 13 + [0.3], "k": np.linspace(0, 1, 14)})
    row = pd.Series({"metric": "m", "ST": 0.5, "ST_conf": 0.1})
    assert _index_verdict(row, 64, table) == "no index: the metric varies in 1 of 14 cases"
    row["metric"] = "k"
    assert _index_verdict(row, 2, table).startswith("not resolved (N = 2 < 8")
    assert _index_verdict(row, 64, table) == "matters (ST interval above 0.1)"
    row["ST"], row["ST_conf"] = 0.03, 0.02
    assert _index_verdict(row, 64, table) == "does not matter here (ST interval below 0.1)"
    row["ST_conf"] = 0.2
    assert _index_verdict(row, 64, table) == "not resolved at this N"
