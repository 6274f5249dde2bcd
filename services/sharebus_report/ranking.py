"""The ranking of departments: one score out of 100 from the shares a provider controls.

    score = 100 x sum(weight x share) / sum(weight), over the shares that are defined

| share | weight | what |
| --- | --- | --- |
| delivery | 30 | classes published / classes promised in the catalogue |
| timeliness | 15 | periodic windows on time / (on time + overdue) |
| completeness | 15 | declared fields filled / declared fields, over its records |
| validity | 15 | records passing every quality rule / records checked |
| disputes | 15 | disputes answered on time / (on time + overdue) |
| grants | 10 | applications answered in time / (in time + overdue) |

A share with nothing to judge (no periodic class, no dispute, no checked record) is left out and
the weights of the others count in its place, so a department is neither rewarded nor punished for
what did not happen. A department that promises no class provides nothing to assess: it has no
score and no rank. Ties share a rank (1, 2, 2, 4); equal scores are listed by department code.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

from sharebus_report.model import DepartmentRow

WEIGHTS: tuple[tuple[str, int, str], ...] = (
    ("delivery", 30, "classes published / classes promised"),
    ("timeliness", 15, "periodic windows on time / windows judged"),
    ("completeness", 15, "declared fields filled / declared fields"),
    ("validity", 15, "records passing every quality rule / records checked"),
    ("dispute_answers", 15, "disputes answered on time / disputes judged"),
    ("grant_answers", 10, "grant applications answered in time / applications judged"),
)


def score(row: DepartmentRow) -> float | None:
    if row.classes_promised == 0:
        return None
    total = weights = 0.0
    for name, weight, _what in WEIGHTS:
        share = getattr(row, name)
        if share is not None:
            total += weight * share
            weights += weight
    # Rounded so that shares computed in another order never split a tie.
    return round(100 * total / weights, 4)


def rank(rows: Iterable[DepartmentRow]) -> tuple[DepartmentRow, ...]:
    """Rows with their score and rank, best first; departments without a score last, by code."""
    scored = [dataclasses.replace(row, score=score(row)) for row in rows]
    ranked = sorted((r for r in scored if r.score is not None), key=lambda r: (-(r.score or 0.0), r.code))
    unranked = sorted((r for r in scored if r.score is None), key=lambda r: r.code)
    out: list[DepartmentRow] = []
    for position, row in enumerate(ranked, start=1):
        same = out and out[-1].score == row.score
        out.append(dataclasses.replace(row, rank=out[-1].rank if same else position))
    return (*out, *unranked)
