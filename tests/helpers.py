"""Building submissions for tests: take a released notebook and put chosen code in its solution cells."""

from __future__ import annotations

from pathlib import Path

import nbformat

from autograder.course import Course
from autograder.notebook import cells


def submit(
    course: Course,
    assignment: str,
    student: str,
    code_by_cell: dict[str, str] | None = None,
    notebook: str | None = None,
    extra_cells: list[str] | None = None,
) -> Path:
    """Write submitted/<student>/<assignment>/ from the release (or the solution when code_by_cell is None)."""
    folder = course.submitted_dir / student / assignment
    folder.mkdir(parents=True, exist_ok=True)
    base = course.solutions_dir if code_by_cell is None else course.release_dir
    for path in sorted((base / assignment).glob("*.ipynb")):
        if notebook and path.name != notebook:
            continue
        nb = nbformat.read(path, as_version=4)
        for cell in nb.cells:
            gid = cells.grade_id(cell)
            if code_by_cell and gid in code_by_cell:
                cell.source = code_by_cell[gid]
        for code in extra_cells or []:
            nb.cells.append(nbformat.v4.new_code_cell(code))
        nbformat.write(nb, folder / path.name)
    return folder


SQUARES_OK = "def squares(n):\n    return [i * i for i in range(1, n + 1)]"
MEAN_OK = "def mean(xs):\n    return sum(xs) / len(xs)"
NORMALISE_OK = "def normalise(v):\n    return v / np.linalg.norm(v)"


def prepend_to_test_squares(course, code: str) -> None:
    """Put `code` at the start of ps1's (trusted) test_squares cell in the source: it runs in the judge."""
    path = course.source_dir / "ps1" / "ps1.ipynb"
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.metadata.get("nbgrader", {}).get("grade_id") == "test_squares":
            cell.source = code + cell.source
    nbformat.write(nb, path)


def make_test_squares_crash_the_worker(course) -> None:
    """A (trusted) test cell that kills the grading worker when it meets the answer [42]: for the tests that
    check a dying worker costs one recorded submission (local pool and Celery alike)."""
    prepend_to_test_squares(course, "import os\nif squares(1) == [42]:\n    os._exit(3)\n")


def report_modules(names: list[str], connection) -> None:
    """Run in a process forked from the pool's forkserver: which of `names` it has imported, and whether
    the forkserver's preload variable reached it."""
    import os
    import sys

    from autograder.batch import judge_server

    connection.send({"imported": [n for n in names if n in sys.modules], "env": judge_server.PRELOAD_ENV in os.environ})
