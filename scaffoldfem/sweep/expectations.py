"""What the literature expects of a question study, in a form a run can be held to.

A question sweep (``studies/questions/``) may state, beside its ``question``, the
direction the review it serves expects::

    [[expect]]
    outcome = "axons.crossing_fraction"
    higher = "channels"                      # a case-id fragment ...
    lower = { "geometry.channels.count" = 0 } # ... or the values the cases were given
    source = "Olson 2009; parallel channels guide axons"

``higher`` and ``lower`` each select one or more cases (all cases whose id contains
the fragment, or whose varied values equal the table's); the expectation is that
the first group's ``outcome`` is larger. :func:`check_expectations` refuses, at
``scaffoldfem check``, a selector that matches no case or a case on both sides,
so a typo cannot leave a finding unjudged. The verdict against results is drawn
by :mod:`scaffoldfem.viz.findings`.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from scaffoldfem.config.base import Section

__all__ = ["Expectation", "check_expectations", "select_cases"]

#: A case selector: a fragment of the case id, or dotted key → value as varied.
Selector = str | dict[str, Any]


class Expectation(Section):
    """One expected direction: ``higher`` cases have a larger ``outcome`` than ``lower``."""

    outcome: str = Field(min_length=1)
    higher: Selector
    lower: Selector
    # Where the expectation comes from (the review's claim and its reference).
    source: str = ""


def select_cases(selector: Selector, cases: list[tuple[str, dict[str, Any]]]) -> list[str]:
    """Ids of the ``(id, varied values)`` cases that ``selector`` picks, in order."""
    if isinstance(selector, str):
        return [cid for cid, _ in cases if selector in cid]
    return [cid for cid, values in cases
            if all(key in values and values[key] == want for key, want in selector.items())]


def check_expectations(expect: list[Expectation], outcomes: list[str],
                       cases: list[tuple[str, dict[str, Any]]]) -> list[str]:
    """Problems of the ``expect`` entries against the sweep's outcomes and cases, one
    line each."""
    errors = []
    for i, e in enumerate(expect):
        if e.outcome not in outcomes:
            errors.append(f"expect[{i}].outcome: {e.outcome!r} is not one of the sweep's "
                          f"outcomes ({', '.join(outcomes) or 'none'})")
        high, low = select_cases(e.higher, cases), select_cases(e.lower, cases)
        for side, ids in (("higher", high), ("lower", low)):
            if not ids:
                errors.append(f"expect[{i}].{side}: {getattr(e, side)!r} matches no case")
        if set(high) & set(low):
            errors.append(f"expect[{i}]: case(s) {', '.join(sorted(set(high) & set(low)))} "
                          "are on both sides")
    return errors
