"""`course validate`: is an assignment gradable? Solution = every autograded point, blank release = none."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from autograder.course import Course, CourseError


@dataclass
class Check:
    name: str
    expected: str
    got: str
    ok: bool


@dataclass
class ValidationReport:
    assignment: str
    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(check.ok for check in self.checks)

    def table(self) -> str:
        width = max(len(check.name) for check in self.checks)
        lines = [f"{self.assignment}: {'OK' if self.ok else 'FAILED'}"]
        for check in self.checks:
            mark = "ok  " if check.ok else "MISS"
            lines.append(f"  {mark} {check.name:<{width}}  expected {check.expected:<14} got {check.got}")
        return "\n".join(lines)


def _anchor_checks(course: Course, assignment: str) -> list[Check]:
    from autograder.nbgrader_anchor import autograde, make_anchor_course

    release_dir = course.release_dir / assignment
    solutions_dir = course.solutions_dir / assignment
    for folder in (release_dir, solutions_dir):
        if not folder.is_dir():
            raise CourseError(f"{folder}: missing; run `course release {assignment}` first")
    with tempfile.TemporaryDirectory(prefix="anchor-") as tmp:
        root = make_anchor_course(course, assignment, Path(tmp))
        scores = autograde(root, assignment, {"solution": solutions_dir, "blank": release_dir})
    solution, blank = scores["solution"], scores["blank"]
    return [
        Check(
            "nbgrader: solution",
            f"{solution.auto_max:g}/{solution.auto_max:g}",
            f"{solution.auto_score:g}/{solution.auto_max:g}",
            solution.auto_score == solution.auto_max > 0,
        ),
        Check(
            "nbgrader: blank release",
            f"0/{blank.auto_max:g}",
            f"{blank.auto_score:g}/{blank.auto_max:g}",
            blank.auto_score == 0,
        ),
    ]


def validate(course: Course, assignment: str) -> ValidationReport:
    report = ValidationReport(assignment)
    report.checks.extend(_anchor_checks(course, assignment))
    return report
