"""Item analysis of one assignment's autograded questions, for the course report (PrairieLearn's question
statistics are the model): how each question scored, whether it separates students who did well overall
from those who did not, and how often it was lost to a timeout, a crash or a submission the grader could
not take in. Questions an instructor should look at are flagged with the reason.

Discrimination is the corrected item-total correlation: Pearson's r between the question's score and the
total of the *other* autograded questions, over the submissions that have both (a GPU test still waiting
counts in neither). Quintiles rank the submissions by their total autograded score (ties in student order)
and split them into five groups as equal as possible, lowest first.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field

from autograder.grading.results import CellResult, SubmissionResult
from autograder.records.feedback import is_waiting_for_gpu

LOW_DISCRIMINATION = 0.1  # below: the question hardly tells strong and weak submissions apart
MANY_BROKEN = 0.2  # above this share of timeouts, crashes and intake problems: look at the limits or the text
QUINTILES = 5
FAILURE_KINDS = ("timeout", "crash", "intake")


def failure_kind(cell: CellResult) -> str | None:
    """"timeout", "crash" or "intake" when the cell lost its points to one of them; None otherwise (a
    wrong answer, or no loss)."""
    if cell.score is None or cell.score >= cell.max_points:
        return None
    message = cell.message.lower()
    if "time limit" in message or "took longer than" in message or "timed out" in message:
        return "timeout"
    if message.startswith("not graded:"):
        crashed = ("memory", "ended", "killed", "crash", "signal", "exited", "died")
        return "crash" if any(word in message for word in crashed) else "intake"
    return None


@dataclass
class ItemStats:
    notebook: str
    grade_id: str
    max_points: float
    scores: list[float] = field(default_factory=list)
    mean: float = 0.0
    median: float = 0.0
    std: float = 0.0  # population standard deviation
    pass_rate: float = 0.0  # full points
    discrimination: float | None = None  # None: fewer than 3 submissions, or a score that never varies
    quintile_means: list[float] = field(default_factory=list)  # mean score per total-score quintile, lowest first
    failure_shares: dict[str, float] = field(default_factory=dict)  # kind -> share of submissions
    flags: list[str] = field(default_factory=list)


def _pearson(xs: list[float], ys: list[float]) -> float | None:
    if len(xs) < 3:
        return None
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    sxy = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True))
    sxx, syy = sum((x - mx) ** 2 for x in xs), sum((y - my) ** 2 for y in ys)
    if sxx == 0 or syy == 0:
        return None
    return sxy / math.sqrt(sxx * syy)


def _quintiles(order: list[str], score_of: dict[str, float]) -> list[float]:
    """Mean of score_of over the students of each total-score quintile (`order` is lowest total first)."""
    present = [student for student in order if student in score_of]
    if len(present) < QUINTILES:
        return []
    size, extra = divmod(len(present), QUINTILES)
    means, start = [], 0
    for group in range(QUINTILES):
        end = start + size + (1 if group < extra else 0)
        means.append(statistics.fmean(score_of[s] for s in present[start:end]))
        start = end
    return means


def _flags(item: ItemStats, submissions: int) -> list[str]:
    flags = []
    if submissions < 2:
        return ["not enough submissions"]
    if item.pass_rate == 1.0:
        flags.append("everyone gets full points")
    elif item.pass_rate == 0.0:
        flags.append("nobody gets full points")
    if item.discrimination is not None and item.discrimination < 0:
        flags.append(f"negative discrimination ({item.discrimination:.2f}): strong submissions lose it more often")
    elif item.discrimination is not None and item.discrimination < LOW_DISCRIMINATION:
        flags.append(f"near-zero discrimination ({item.discrimination:.2f})")
    broken = sum(item.failure_shares.values())
    if broken > MANY_BROKEN:
        flags.append(f"{broken:.0%} of submissions lost it to a timeout, a crash or an intake problem")
    return flags


def item_analysis(results: list[SubmissionResult]) -> list[ItemStats]:
    """One ItemStats per autograded question, in notebook order."""
    by_student = {r.student: r for r in results}
    scored: dict[tuple[str, str], dict[str, CellResult]] = {}
    for result in sorted(results, key=lambda r: r.student):
        for cell in result.cells:
            if cell.manual or is_waiting_for_gpu(cell):
                continue
            scored.setdefault((cell.notebook, cell.grade_id), {})[result.student] = cell
    totals = {s: sum(c[s].score for c in scored.values() if s in c) for s in by_student}
    order = sorted(by_student, key=lambda s: (totals[s], s))
    items = []
    for (notebook, grade_id), cells in scored.items():
        scores = {student: cell.score for student, cell in cells.items()}
        values = [scores[s] for s in sorted(scores)]
        max_points = next(iter(cells.values())).max_points
        item = ItemStats(notebook, grade_id, max_points, values)
        item.mean = statistics.fmean(values)
        item.median = statistics.median(values)
        item.std = statistics.pstdev(values)
        item.pass_rate = sum(v >= max_points for v in values) / len(values)
        students = sorted(scores)
        item.discrimination = _pearson([scores[s] for s in students], [totals[s] - scores[s] for s in students])
        item.quintile_means = _quintiles(order, scores)
        kinds = [failure_kind(cell) for cell in cells.values()]
        item.failure_shares = {kind: kinds.count(kind) / len(kinds) for kind in FAILURE_KINDS}
        item.flags = _flags(item, len(values))
        items.append(item)
    return items
