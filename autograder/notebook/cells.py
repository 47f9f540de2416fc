"""What each cell of an nbgrader notebook is for, and the text markers inside cells.

Roles (decided from nbgrader metadata, the same way nbgrader decides them):
- "solution": the student writes here (code or a written answer); runs in the student process.
- "test":     an autograded test cell; runs only in the trusted judge, taken from the SOURCE notebook.
- "readonly": a locked setup cell (imports, data, helpers for tests); runs in the student process and,
              from the source, in the judge, so that what it defines resolves judge-side.
- "free":     a cell without nbgrader role; a student may edit or add these; runs in the student process.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from nbformat import NotebookNode

BEGIN_SOLUTION = "### BEGIN SOLUTION"
END_SOLUTION = "### END SOLUTION"
BEGIN_HIDDEN = "### BEGIN HIDDEN TESTS"
END_HIDDEN = "### END HIDDEN TESTS"

GPU_TAG = "gpu"


def grade_id(cell: NotebookNode) -> str | None:
    return cell.metadata.get("nbgrader", {}).get("grade_id")


# nbgrader.utils' is_solution / is_grade / is_locked, read the same way (tests/test_release.py checks that
# both agree on every course cell): importing nbgrader costs half a second of a cold `course grade-one`.
def _is_solution(cell: NotebookNode) -> bool:
    return bool(cell.metadata.get("nbgrader", {}).get("solution", False))


def _is_grade(cell: NotebookNode) -> bool:
    return bool(cell.metadata.get("nbgrader", {}).get("grade", False))


def _is_locked(cell: NotebookNode) -> bool:
    if "nbgrader" not in cell.metadata or _is_solution(cell):
        return False
    return _is_grade(cell) or bool(cell.metadata["nbgrader"].get("locked", False))


def role(cell: NotebookNode) -> str:
    if _is_solution(cell):
        return "solution"
    if _is_grade(cell) and cell.cell_type == "code":
        return "test"
    if _is_locked(cell):
        return "readonly"
    return "free"


def points(cell: NotebookNode) -> float:
    return float(cell.metadata.get("nbgrader", {}).get("points", 0) or 0)


def is_graded(cell: NotebookNode) -> bool:
    return _is_grade(cell)


def is_gpu(cell: NotebookNode) -> bool:
    return GPU_TAG in cell.metadata.get("tags", [])


def is_selfcheck(cell: NotebookNode) -> bool:
    """A self-check cell that `course release` added (metadata {"course": {"selfcheck": true}})."""
    course = cell.metadata.get("course")
    return isinstance(course, dict) and course.get("selfcheck") is True


def _drop_lines(source: str, markers: tuple[str, ...]) -> str:
    return "\n".join(line for line in source.split("\n") if line.strip() not in markers)


def _drop_region(source: str, begin: str, end: str) -> str:
    kept, inside = [], False
    for line in source.split("\n"):
        if line.strip() == begin:
            inside = True
        elif line.strip() == end:
            inside = False
        elif not inside:
            kept.append(line)
    return "\n".join(kept)


def solution_text(source: str) -> str:
    """A solution cell as instructors post it: the solution kept, the markers removed."""
    return _drop_lines(source, (BEGIN_SOLUTION, END_SOLUTION))


def public_test_text(source: str) -> str:
    """A test cell without its hidden block (what students see)."""
    return _drop_region(source, BEGIN_HIDDEN, END_HIDDEN)


def split_hidden(source: str) -> list[tuple[bool, str]]:
    """Split a test cell into consecutive (is_hidden, code) segments, in order.

    Line numbers are preserved (other segments' lines are blanked) so tracebacks point at the source.
    """
    lines = source.split("\n")
    segments: list[tuple[bool, list[int]]] = []
    hidden = False
    for number, line in enumerate(lines):
        if line.strip() == BEGIN_HIDDEN:
            hidden = True
            continue
        if line.strip() == END_HIDDEN:
            hidden = False
            continue
        if not segments or segments[-1][0] != hidden:
            segments.append((hidden, []))
        segments[-1][1].append(number)
    result = []
    for is_hidden, numbers in segments:
        chosen = set(numbers)
        code = "\n".join(line if i in chosen else "" for i, line in enumerate(lines))
        if code.strip():
            result.append((is_hidden, code))
    return result


