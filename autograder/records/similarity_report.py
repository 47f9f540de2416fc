"""reports/<assignment>/similarity.csv and similarity.html: which submissions share solution code.

- similarity.csv: every pair of students whose solution code shares fingerprints beyond the release and
  common idioms, highest score first, with the cells holding the shared code.
- similarity.html: the top pairs side by side, matching code highlighted, skipped notebooks listed. It
  says first that it is evidence for a person to read, never an automatic penalty.
Student code and names reach the page only through the template's autoescape.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from autograder.course import Course
from autograder.records import fingerprints
from autograder.records.html import render
from autograder.records.similarity import CELL_CAP, COMMON_SHARE, MIN_CELLS, CellCode, Pair, Similarity, similarity

TOP = 20  # pairs shown side by side
COLUMNS = ["rank", "score", "student_a", "student_b", "shared_fingerprints", "a_in_b", "b_in_a", "cells"]
NOT_A_VERDICT = "evidence for a person to read, never an automatic penalty"


@dataclass
class SimilarityReport:
    result: Similarity
    csv_path: Path
    html_path: Path

    def line(self) -> str:
        result = self.result
        skipped = f", {len(result.skipped)} skipped" if result.skipped else ""
        if len(result.compared) < 2:
            return (f"{result.assignment}: not enough submissions to compare ({len(result.compared)} readable"
                    f"{skipped}; at least 2 needed); {self.html_path} says so")  # fmt: skip
        first = result.pairs[0] if result.pairs else None
        top = (f"; top pair {first.a.student} ~ {first.b.student}, score {first.score:.2f}" if first
               else "; no pair shares code beyond the release and common idioms")  # fmt: skip
        return (f"{result.assignment}: {len(result.compared)} submissions compared{skipped}{top}; "
                f"{self.html_path} and {self.csv_path.name} ({NOT_A_VERDICT})")  # fmt: skip


def write_csv(path: Path, result: Similarity) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(COLUMNS)
        for rank, pair in enumerate(result.pairs, start=1):
            a_in_b, b_in_a = f"{pair.share_of(pair.a):.3f}", f"{pair.share_of(pair.b):.3f}"
            writer.writerow([rank, f"{pair.score:.3f}", pair.a.student, pair.b.student, pair.shared_total,
                             a_in_b, b_in_a, pair.cell_summary()])  # fmt: skip


def marked_segments(cell: CellCode, marked: set[int]) -> list[tuple[str, bool]]:
    """The cell's source cut into (text, matched) pieces: matched where a k-gram in `marked` covers it."""
    spans: list[list[int]] = []
    for position, h in enumerate(cell.kgrams):
        if h in marked:
            start, end = cell.tokens[position].start, cell.tokens[position + fingerprints.K - 1].end
            if spans and start <= spans[-1][1]:
                spans[-1][1] = max(spans[-1][1], end)
            else:
                spans.append([start, end])
    segments, done = [], 0
    for start, end in spans:
        if start > done:
            segments.append((cell.code[done:start], False))
        segments.append((cell.code[start:end], True))
        done = end
    if done < len(cell.code):
        segments.append((cell.code[done:], False))
    return segments


def _pair_view(rank: int, pair: Pair, ignored: set[int]) -> dict:
    views = []
    for label in pair.a.cells:
        if label in pair.shared:
            left, right = pair.a.cells[label], pair.b.cells[label]
            marked = (set(left.kgrams) & set(right.kgrams)) - ignored
            views.append({"label": label, "count": pair.shared[label],
                          "left": marked_segments(left, marked), "right": marked_segments(right, marked)})  # fmt: skip
    return {
        "rank": rank, "a": pair.a.student, "b": pair.b.student, "score": f"{pair.score:.2f}",
        "shared": pair.shared_total, "a_in_b": f"{pair.share_of(pair.a):.0%}", "b_in_a": f"{pair.share_of(pair.b):.0%}",
        "cells": pair.cell_summary(), "views": views,
    }  # fmt: skip


def render_similarity(result: Similarity, top: int = TOP) -> str:
    return render(
        "similarity.html.j2",
        title=f"{result.assignment}: similarity of solution code",
        not_a_verdict=NOT_A_VERDICT,
        compared=len(result.compared),
        pair_count=len(result.pairs),
        common_limit=result.common_limit,
        k=fingerprints.K,
        run=fingerprints.K + fingerprints.W - 1,
        cell_cap=CELL_CAP,
        min_cells=MIN_CELLS,
        pairs=[_pair_view(rank, pair, result.ignored) for rank, pair in enumerate(result.pairs[:top], start=1)],
        skipped=[(s.student, s.path, s.reason) for s in result.skipped],
    )


def write_similarity_report(
    course: Course, assignment: str, top: int = TOP, common_share: float = COMMON_SHARE
) -> SimilarityReport:
    """Compare the submissions of `assignment` and write reports/<assignment>/similarity.csv and .html."""
    result = similarity(course, assignment, common_share)
    folder = course.reports_dir / assignment
    folder.mkdir(parents=True, exist_ok=True)
    report = SimilarityReport(result, folder / "similarity.csv", folder / "similarity.html")
    write_csv(report.csv_path, result)
    report.html_path.write_text(render_similarity(result, top), encoding="utf-8")
    return report
