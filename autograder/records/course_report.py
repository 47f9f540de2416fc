"""The instructor's course report for one assignment: reports/<assignment>/.

- report.html: the item analysis (item_analysis.py: per question mean, median, standard deviation, pass
  rate, discrimination, mean by total-score quintile, losses to timeouts, crashes and intake problems, and
  the questions to look at, with the reason); then per question the histogram, how many lost points and
  the most common failure messages (numbers collapsed, so "relative error 3.1e-02" and "relative error
  4.0e-02" count as one), then the submissions with problems. Full messages: this page is for instructors.
- hist_<grade_id>.png per autograded question and score_histogram.png for the total (matplotlib, Agg).
- lms.csv (after late penalties, late.py, with the raw score beside): one row per student for the LMS
  gradebook (grades.csv, written by `course grade`, has the
  per-question breakdown; this file has what an LMS import needs: the score, the maximum, the percent
  and whether points are still pending, i.e. manually graded or waiting for a GPU runner).
"""

from __future__ import annotations

import csv
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from autograder.course import Course
from autograder.grading.results import WAITING_FOR_GPU, CellResult, SubmissionResult
from autograder.records.feedback import is_waiting_for_gpu
from autograder.records.html import render
from autograder.records.item_analysis import ItemStats, item_analysis
from autograder.records.late import lateness, policy

# A number standing alone: "3.1e-02", "-1", "[2, 3]"; not the digits inside "float64" or "7f3a".
NUMBER = re.compile(r"(?<![\w.])[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?(?!\w)")
TOP_MESSAGES = 3


def normalise_message(message: str) -> str:
    """The first line of a failure message with every number replaced by '#', at most 100 characters."""
    lines = message.strip().splitlines()
    line = NUMBER.sub("#", lines[0]) if lines else ""
    return line if len(line) <= 100 else line[:97] + "..."


@dataclass
class QuestionStats:
    notebook: str
    grade_id: str
    max_points: float
    scores: list[float] = field(default_factory=list)
    waiting: int = 0  # GPU tests not run yet
    failures: Counter = field(default_factory=Counter)  # normalised message -> count
    examples: dict[str, str] = field(default_factory=dict)  # normalised message -> first full message

    @property
    def mean(self) -> float:
        return sum(self.scores) / len(self.scores) if self.scores else 0.0

    @property
    def passed(self) -> int:
        return sum(score >= self.max_points for score in self.scores)

    @property
    def lost(self) -> int:
        return len(self.scores) - self.passed

    @property
    def pass_rate(self) -> float:
        return self.passed / len(self.scores) if self.scores else 0.0

    def add(self, cell: CellResult) -> None:
        if is_waiting_for_gpu(cell):
            self.waiting += 1
            return
        self.scores.append(cell.score)
        if cell.score < cell.max_points:
            key = normalise_message(cell.message) or "(no message)"
            self.failures[key] += 1
            self.examples.setdefault(key, cell.message.strip().splitlines()[0] if cell.message.strip() else "")

    def common_failures(self) -> list[tuple[str, int]]:
        return sorted(self.failures.items(), key=lambda item: (-item[1], item[0]))[:TOP_MESSAGES]


def question_stats(results: list[SubmissionResult]) -> list[QuestionStats]:
    """Autograded questions in notebook order, gathered over every submission."""
    stats: dict[tuple[str, str], QuestionStats] = {}
    for result in sorted(results, key=lambda r: r.student):
        for cell in result.cells:
            if cell.manual and not is_waiting_for_gpu(cell):
                continue
            key = (cell.notebook, cell.grade_id)
            if key not in stats:
                stats[key] = QuestionStats(cell.notebook, cell.grade_id, cell.max_points)
            stats[key].add(cell)
    return list(stats.values())


def _file_name(grade_id: str) -> str:
    return "hist_" + re.sub(r"[^A-Za-z0-9_.-]", "_", grade_id) + ".png"


def _histogram(path: Path, scores: list[float], max_points: float, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    whole = max_points == int(max_points) and all(score == int(score) for score in scores)
    if whole and max_points <= 30:
        bins = np.arange(-0.5, max_points + 1)
    else:
        bins = np.linspace(0, max(max_points, 1e-9), 11)
    figure, axes = plt.subplots(figsize=(4, 2.4), dpi=80)
    axes.hist(scores, bins=bins, color="#4c72b0", edgecolor="white")
    axes.set_xlim(bins[0], bins[-1])
    axes.set_title(title, fontsize=9)
    axes.set_xlabel("points", fontsize=8)
    axes.set_ylabel("submissions", fontsize=8)
    axes.tick_params(labelsize=7)
    axes.yaxis.get_major_locator().set_params(integer=True)
    if whole:
        axes.xaxis.get_major_locator().set_params(integer=True)
    figure.tight_layout()
    figure.savefig(path, format="png", metadata={"Software": None})
    plt.close(figure)


def _question(question: QuestionStats) -> dict:
    failures = [
        {"example": question.examples[key], "count": count, "pattern": key if key != question.examples[key] else ""}
        for key, count in question.common_failures()
    ]
    return {
        "notebook": question.notebook, "grade_id": question.grade_id, "max_points": f"{question.max_points:g}",
        "image": _file_name(question.grade_id), "mean": f"{question.mean:.2f} / {question.max_points:g}",
        "pass_rate": f"{question.pass_rate:.0%} ({question.passed} of {len(question.scores)})",
        "lost": question.lost, "waiting": question.waiting, "failures": failures,
    }  # fmt: skip


def _item(item: ItemStats) -> dict:
    discrimination = "n/a" if item.discrimination is None else f"{item.discrimination:.2f}"
    return {
        "grade_id": item.grade_id, "n": len(item.scores), "max_points": f"{item.max_points:g}",
        "mean": f"{item.mean:.2f}", "median": f"{item.median:g}", "std": f"{item.std:.2f}",
        "pass_rate": f"{item.pass_rate:.0%}", "discrimination": discrimination,
        "quintiles": " / ".join(f"{m:.1f}" for m in item.quintile_means) or "n/a (fewer than 5)",
        "broken": ", ".join(f"{kind} {share:.0%}" for kind, share in item.failure_shares.items() if share) or "none",
        "flags": item.flags,
    }  # fmt: skip


def render_report(
    assignment: str,
    results: list[SubmissionResult],
    questions: list[QuestionStats],
    late_rows: list[tuple[str, str, str]] = (),
    late_problems: list[str] = (),
    late_policy: str = "no late penalty",
) -> str:
    ordered = sorted(results, key=lambda r: r.student)
    totals = [r.score for r in ordered]
    auto_max = max((r.auto_max for r in ordered), default=0.0)
    mean = sum(totals) / len(totals) if totals else 0.0
    return render(
        "course_report.html.j2",
        title=f"{assignment}: course report",
        submissions=len(ordered),
        mean=f"{mean:.2f} / {auto_max:g}",
        manual=sum(any(c.manual and not is_waiting_for_gpu(c) for c in r.cells) for r in ordered),
        questions=[_question(q) for q in questions],
        items=[_item(item) for item in item_analysis(ordered)],
        problems=[(r.student, "; ".join(r.problems)) for r in ordered if r.problems],
        waiting_for_gpu=WAITING_FOR_GPU,
        late_rows=list(late_rows),
        late_problems=list(late_problems),
        late_policy=late_policy,
    )


def write_lms_csv(course: Course, assignment: str, results: list[SubmissionResult]) -> tuple[Path, list[str]]:
    """One row per student: the score after any late penalty, the maximum (all points), the percent of it
    so far and how many points are still missing (manually graded, or GPU tests waiting for a runner): the
    percent is final once pending is "no". Beside them the raw score, the penalty and the hours late
    (late.py: computed now from the due dates and extensions, so a changed date needs no regrading).
    Returns the path and the late-penalty problems (missing timestamps, unknown students)."""
    folder = course.reports_dir / assignment
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "lms.csv"
    late, problems = lateness(course, assignment, [r.student for r in results])
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["student_id", "score", "max_score", "percent", "pending", "pending_points",
                         "raw_score", "late_penalty", "late_hours"])  # fmt: skip
        for result in sorted(results, key=lambda r: r.student):
            pending = sum(c.max_points for c in result.cells if c.manual or is_waiting_for_gpu(c))
            penalty = late[result.student].penalty(result.score)
            score = result.score - penalty
            percent = 100 * score / result.max_score if result.max_score else 0.0
            writer.writerow(
                [
                    result.student,
                    f"{score:g}",
                    f"{result.max_score:g}",
                    f"{percent:.1f}",
                    "yes" if pending else "no",
                    f"{pending:g}",
                    f"{result.score:g}",
                    f"{penalty:g}",
                    f"{late[result.student].late_by.total_seconds() / 3600:.2f}",
                ]
            )
    return path, problems


def write_course_report(course: Course, assignment: str, results: list[SubmissionResult]) -> Path:
    """Write reports/<assignment>/report.html, its histograms and lms.csv; return report.html's path."""
    folder = course.reports_dir / assignment
    folder.mkdir(parents=True, exist_ok=True)
    questions = question_stats(results)
    for question in questions:
        _histogram(folder / _file_name(question.grade_id), question.scores, question.max_points, question.grade_id)
    auto_max = max((r.auto_max for r in results), default=0.0)
    _histogram(folder / "score_histogram.png", [r.score for r in results], auto_max, "autograded score")
    _, late_problems = write_lms_csv(course, assignment, results)
    late, _ = lateness(course, assignment, [r.student for r in results])
    late_rows = [(student, found.describe(), f"{1 - found.multiplier:.0%}") for student, found in sorted(late.items())
                 if found.late_by > timedelta(0)]  # fmt: skip
    path = folder / "report.html"
    page = render_report(assignment, results, questions, late_rows, late_problems, policy(course).describe())
    path.write_text(page, encoding="utf-8")
    return path
