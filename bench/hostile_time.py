"""How long one hostile submission holds a worker, against the solution's own grading time.

The hostile submission is the a1 solution with a busy loop at the top of every solution cell (each
cell then uses its whole limit, until the notebook's limit is used up). Both are graded the way one
worker grades a submission (grade_submission, cold sandbox), under the limits derived from the posted
solution's measured run time (autograder/grading/time_limits.py). The old fixed limits (120 s a cell, 900 s a
notebook) are given for comparison as the bound they imply, not run.

    .venv/bin/python bench/hostile_time.py [--assignment a1_backprop] [--repeat 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import nbformat

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from autograder.course import REPO_ROOT, Course  # noqa: E402
from autograder.grading.grade import AssignmentSource, Timeouts, grade_submission  # noqa: E402
from autograder.notebook import cells  # noqa: E402

SLOW = "import time\nwhile True:\n    sum(range(10_000))\n"


def _submission(course: Course, assignment: str, folder: Path, slow: bool) -> Path:
    folder.mkdir(parents=True)
    for path in (course.solutions_dir / assignment).glob("*.ipynb"):
        nb = nbformat.read(path, as_version=4)
        if slow:
            for cell in nb.cells:
                if cell.cell_type == "code" and cells.role(cell) == "solution":
                    cell.source = SLOW + cell.source
        nbformat.write(nb, folder / path.name)
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--assignment", default="a1_backprop")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    course = Course.load(REPO_ROOT)
    source = AssignmentSource.load(course, args.assignment)
    timeouts = Timeouts.for_assignment(course, source)
    with tempfile.TemporaryDirectory() as tmp:
        honest = _submission(course, args.assignment, Path(tmp) / "solution", slow=False)
        hostile = _submission(course, args.assignment, Path(tmp) / "hostile", slow=True)
        solution_s = []
        for _ in range(args.repeat):
            started = time.monotonic()
            result = grade_submission(source, honest, "solution", timeouts)
            solution_s.append(time.monotonic() - started)
        assert result.score == result.auto_max, result.score
        started = time.monotonic()
        slow_result = grade_submission(source, hostile, "hostile", timeouts)
        hostile_s = time.monotonic() - started
    solution_cells = sum(cells.role(c) == "solution" and c.cell_type == "code" for nb in source.notebooks.values()
                         for c in nb.cells)  # fmt: skip
    fixed_bound = min(900.0, 120.0 * solution_cells)
    median = statistics.median(solution_s)
    print(f"{args.assignment}: limits {timeouts.cell_s:g} s a cell, {timeouts.notebook_s:g} s a notebook "
          f"({timeouts.basis})")  # fmt: skip
    print(f"solution graded in {median:.1f} s (median of {args.repeat}; cold sandbox)")
    print(f"hostile submission held the worker {hostile_s:.1f} s = {hostile_s / median:.1f}x the solution "
          f"(score {slow_result.score:g})")  # fmt: skip
    print(f"with the old fixed limits: up to {fixed_bound:.0f} s = {fixed_bound / median:.0f}x")


if __name__ == "__main__":
    main()
