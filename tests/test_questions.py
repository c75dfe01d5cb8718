"""studies/questions/: one sweep per question of the review (issue 15), each valid,
each naming its question and the results.csv outcomes it compares."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from scaffoldfem.errors import StudyError
from scaffoldfem.sweep.plan import load_sweep
from scaffoldfem.sweep.results import METRIC_SECTIONS

QUESTIONS = sorted((Path(__file__).resolve().parents[1] / "studies" / "questions").glob("*.toml"))


def test_every_question_of_the_review_has_a_study():
    names = {p.stem for p in QUESTIONS}
    assert {"on_demand_vs_constant", "staged_vs_simultaneous", "cell_dose_timing",
            "carrier_comparison", "degradation_cavitation", "guidance_architecture",
            "bdnf_pain_tradeoff"} <= names


@pytest.mark.parametrize("path", QUESTIONS, ids=lambda p: p.stem)
def test_question_sweep_is_valid_and_names_its_outcomes(path):
    plan = load_sweep(path)  # every case validated
    assert len(plan.cases) >= 2
    assert plan.question.endswith("?")
    assert plan.outcomes
    for column in plan.outcomes:
        assert column.split(".")[0] in METRIC_SECTIONS, column
    assert plan.expect or "saltelli" in plan.source  # a direction to hold the answer to


def test_expectations_that_cannot_be_judged_are_refused(tmp_path):
    text = (QUESTIONS[0].parent / "guidance_architecture.toml").read_text()
    base = str((QUESTIONS[0].parent.parent / "baseline.toml").resolve())
    text = text.replace('base = "../baseline.toml"', f'base = "{base}"')
    for old, new, message in [
            ('higher = "channels"', 'higher = "chanels"',
             "expect[0].higher: 'chanels' matches no case"),
            ('lower = "plain_matrix"\nsource = "parallel', 'lower = "channels"\nsource = "parallel',
             "expect[0]: case(s) c000-channels are on both sides"),
            ('outcome = "axons.crossing_fraction"\nhigher = "aligned',
             'outcome = "axons.crossed"\nhigher = "aligned',
             "expect[1].outcome: 'axons.crossed' is not one of the sweep's outcomes")]:
        path = tmp_path / "g.toml"
        path.write_text(text.replace(old, new, 1))
        assert path.read_text() != text, old
        with pytest.raises(StudyError) as info:
            load_sweep(path)
        assert any(message in line for line in info.value.lines), info.value.lines
    by_values = load_sweep(QUESTIONS[0].parent / "cell_dose_timing.toml").expect[0]
    assert by_values.higher == {"cells.cohorts.graft.density": "1e5 cell/mm^3"}


# --- Each question end to end, reduced ------------------------------------------------
#
# The same sweep file with test_api's TINY mesh and a short run set over its [set],
# fewer cases (the first and last explicit case, the first and last value of the first
# grid axis, the smallest Saltelli design), run through api.sweep as a user would.
# What it proves: every case of every question builds its geometry, runs every
# mechanism it switches on, traces axons and writes the outcome columns it names,
# with finite values, plus the sweep's report page (and, for a Saltelli design, its
# sensitivity.csv).

from tests.test_api import TINY  # noqa: E402

REDUCED = {**TINY, "time.duration": "2 day", "time.dt": "0.5 day", "output.interval": "1 day",
           "output.figures": False,
           # >= 2 border cells of TINY's mesh without channels (0.15 mm at the studies'
           # interface_factor 0.3), as a run requires
           "axons.cue_smoothing": "0.35 mm"}


def reduced_sweep(path: Path, out_dir: Path) -> Path:
    """Write the reduced version of the question sweep ``path`` into ``out_dir``."""
    import tomllib

    import tomli_w

    data = tomllib.loads(path.read_text())
    data["base"] = str((path.parent / data["base"]).resolve())
    data["set"] = {**data.get("set", {}), **REDUCED}
    data.pop("expect", None)  # its selectors may name cases the reduction drops
    if "grid" in data:
        grid = data["grid"]
        first, *rest = grid
        grid[first] = [grid[first][0], grid[first][-1]]
        for key in rest:
            grid[key] = grid[key][:1]
    if "cases" in data:
        data["cases"] = [data["cases"][0], data["cases"][-1]]
    if "sample" in data:  # two ranges, the smallest design (Saltelli: N >= 2 base points)
        ranges = data["sample"]["ranges"]
        data["sample"]["ranges"] = dict(list(ranges.items())[:2])
        data["sample"]["n"] = 2 * (2 + 2) if data["sample"]["method"] == "saltelli" else 2
        data["set"]["time.duration"] = "1 day"
    target = out_dir / path.name
    target.write_text(tomli_w.dumps(data))
    return target


@pytest.mark.parametrize("path", QUESTIONS, ids=lambda p: p.stem)
def test_question_runs_end_to_end_reduced(comm, tmp_path, path):
    import pandas as pd

    from scaffoldfem.api import sweep

    root = Path(comm.bcast(str(tmp_path), root=0))
    reduced = reduced_sweep(path, root) if comm.rank == 0 else root / path.name
    comm.barrier()
    summary = sweep(reduced, root / "out", comm, quiet=True, figures=False)
    assert summary.exit_code == 0, summary.lines()
    plan = load_sweep(reduced)
    table = pd.read_csv(root / "out" / "results.csv")
    assert len(table) == len(plan.cases) and set(table["status"]) == {"done"}
    # Every outcome is a metric of every case (in two days, before any axon has
    # grown or the evaluation window has begun, it may be undefined: null); the
    # headline outcome is a number in every row.
    for case in plan.cases:
        metrics = json.loads((root / "out" / "cases" / case.id / "metrics.json").read_text())
        for column in plan.outcomes:
            node = metrics
            for part in column.split("."):
                assert isinstance(node, dict) and part in node, (case.id, column)
                node = node[part]
            assert node is None or isinstance(node, int | float), (case.id, column, node)
    assert pd.to_numeric(table[plan.outcomes[0]], errors="coerce").notna().all()
    assert (root / "out" / "report.html").exists()
    if plan.source and "saltelli" in plan.source:
        assert (root / "out" / "sensitivity.csv").exists()
