"""studies/questions/: one sweep per question of the review (issue 15), each valid,
each naming its question and the results.csv outcomes it compares."""

from __future__ import annotations

from pathlib import Path

import pytest

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
