"""Late penalties, computed when grades are exported (lms.csv, the report, feedback pages), never stored in
place of the raw score: changing a due date or an extension and exporting again recomputes them, with no
regrading (nbgrader's late-submission plugin writes the penalty at autograde time and keeps it stale).

Settings, in nbgrader_config.py:

    c.Deadlines.due = {"a1_backprop": "2026-12-10 23:59 UTC"}     # no entry: no due date, no penalty
    c.Deadlines.extensions = "extensions.csv"                       # student,assignment,due (in the course)
    c.LatePolicy.kind = "per_day"       # "none", "zero" (any lateness), "per_day" or "per_hour"
    c.LatePolicy.rate = 0.1             # the share of the score lost per started day (hour)
    c.LatePolicy.floor = 0.5            # the score never drops below this share of itself
    c.LatePolicy.grace_minutes = 15     # lateness up to this is not late

A submission's time is its timestamp.txt (nbgrader's exchange writes it; `course collect` keeps it). One
that is missing or unreadable gets no penalty and is listed as a problem, never a silent zero.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from autograder.course import Course, CourseError
from autograder.i18n import N_

KINDS = ("none", "zero", "per_day", "per_hour")
UNIT = {"per_day": timedelta(days=1), "per_hour": timedelta(hours=1)}


@dataclass(frozen=True)
class LatePolicy:
    kind: str = "none"
    rate: float = 0.0
    floor: float = 0.0
    grace: timedelta = timedelta(0)

    def multiplier(self, late_by: timedelta) -> float:
        """The share of the score kept for a submission `late_by` after its due date (after the grace)."""
        if late_by <= self.grace or self.kind == "none":
            return 1.0
        if self.kind == "zero":
            return 0.0
        started_units = math.ceil((late_by - self.grace) / UNIT[self.kind])  # a started day counts as a day
        return max(self.floor, 1.0 - self.rate * started_units)

    def describe(self, _: Callable[[str], str] = str) -> str:
        """The policy in words; `_` translates them (the feedback page speaks the course's language)."""
        minutes = self.grace.total_seconds() / 60
        grace = _(", {minutes:g} minutes' grace").format(minutes=minutes) if self.grace else ""
        if self.kind == "zero":
            return _("late work scores 0{grace}").format(grace=grace)
        if self.kind == "per_day":
            return _("{rate:.0%} off per started day late, down to {floor:.0%} at most{grace}").format(
                rate=self.rate, floor=self.floor, grace=grace)
        if self.kind == "per_hour":
            return _("{rate:.0%} off per started hour late, down to {floor:.0%} at most{grace}").format(
                rate=self.rate, floor=self.floor, grace=grace)
        return _("no late penalty")


@dataclass(frozen=True)
class Lateness:
    student: str
    submitted: datetime | None
    due: datetime | None
    multiplier: float = 1.0
    problem: str = ""  # why no penalty could be computed

    @property
    def late_by(self) -> timedelta:
        if self.submitted is None or self.due is None:
            return timedelta(0)
        return max(timedelta(0), self.submitted - self.due)

    def penalty(self, score: float) -> float:
        return score * (1.0 - self.multiplier)

    def describe(self, _: Callable[[str], str] = str) -> str:
        hours = self.late_by.total_seconds() / 3600
        if not hours:
            return ""
        return _("submitted {hours:.1f} h after the due date ({due} UTC)").format(
            hours=hours, due=f"{self.due:%Y-%m-%d %H:%M}")


def _parse(text: str) -> datetime:
    from nbgrader.utils import parse_utc

    return parse_utc(text.strip())


def policy(course: Course) -> LatePolicy:
    settings = course.config.get("LatePolicy", {})
    kind = settings.get("kind", "none")
    if kind not in KINDS:
        raise CourseError(f"nbgrader_config.py: c.LatePolicy.kind must be one of {', '.join(KINDS)}, not {kind!r}")
    rate, floor = float(settings.get("rate", 0.0)), float(settings.get("floor", 0.0))
    if not (0 <= rate <= 1 and 0 <= floor <= 1):
        raise CourseError("nbgrader_config.py: c.LatePolicy.rate and floor are shares between 0 and 1")
    return LatePolicy(kind, rate, floor, timedelta(minutes=float(settings.get("grace_minutes", 0))))


def due_dates(course: Course, assignment: str, students: list[str]) -> tuple[dict[str, datetime], list[str]]:
    """({student: due date} for those who have one, problems). The assignment's due date from
    c.Deadlines.due, replaced per student by an extension row; an extension for a student with no
    submission or an unreadable date is a problem."""
    settings = course.config.get("Deadlines", {})
    problems = []
    due_text = dict(settings.get("due", {})).get(assignment)
    try:
        due = _parse(due_text) if due_text else None
    except (ValueError, OverflowError) as error:
        raise CourseError(f"nbgrader_config.py: c.Deadlines.due[{assignment!r}] = {due_text!r}: {error}") from None
    dues = dict.fromkeys(students, due) if due else {}
    path = course.root / settings.get("extensions", "extensions.csv")
    if path.is_file():
        with path.open(newline="", encoding="utf-8") as f:
            for line, row in enumerate(csv.DictReader(f), start=2):
                if (row.get("assignment") or "").strip() != assignment:
                    continue
                student = (row.get("student") or "").strip()
                if student not in students:
                    problems.append(f"{path.name}, line {line}: extension for {student!r}, who has no submission")
                    continue
                try:
                    dues[student] = _parse(row.get("due") or "")
                except (ValueError, OverflowError):
                    problems.append(f"{path.name}, line {line}: {row.get('due')!r} is not a date; extension ignored")
    return dues, problems


def lateness(course: Course, assignment: str, students: list[str]) -> tuple[dict[str, Lateness], list[str]]:
    """Each student's Lateness under the course's policy and due dates, and the problems found."""
    rule = policy(course)
    dues, problems = due_dates(course, assignment, students)
    found = {}
    for student in students:
        due = dues.get(student)
        if due is None:
            found[student] = Lateness(student, None, None)
            continue
        stamp = course.submitted_dir / student / assignment / "timestamp.txt"
        try:
            submitted = _parse(stamp.read_text())
        except FileNotFoundError:
            problem = N_("no timestamp.txt: late penalty not applied")
            found[student] = Lateness(student, None, due, problem=problem)
        except (OSError, ValueError, OverflowError):
            problem = N_("unreadable timestamp.txt: late penalty not applied")
            found[student] = Lateness(student, None, due, problem=problem)
        else:
            found[student] = Lateness(student, submitted, due, rule.multiplier(max(timedelta(0), submitted - due)))
    problems += [f"{late.student}: {late.problem}" for late in found.values() if late.problem]
    return found, problems
