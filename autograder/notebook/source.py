"""Reading an instructor's source notebook: readable, nbgrader's metadata valid, grade ids unique, and
the course's own metadata (rules, the self-check marker) well formed. Any problem is one line naming
the file and the cell."""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbformat import NotebookNode

from autograder.course import CourseError
from autograder.notebook import cells
from course_utils import rules


def read_source_notebook(path: Path, check_metadata: bool = True) -> NotebookNode:
    """Read and check one source notebook; any problem is one line naming the file and the cell.

    check_metadata: validate nbgrader's and the course's metadata (release does; grading reads a released
    course and skips it, and with it importing nbgrader, which a cold `course grade-one` would wait for).
    """
    try:
        nb = nbformat.read(path, as_version=4)
    except Exception as error:  # nbformat raises several unrelated types for bad files
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise CourseError(f"{path}: not a readable notebook: {first_line}") from None
    if check_metadata:
        from nbgrader.nbgraderformat import MetadataValidator, ValidationError

        validator = MetadataValidator()
    first_use: dict[str, int] = {}
    for index, cell in enumerate(nb.cells):
        where = f"{path}: cell {index}"
        try:
            if check_metadata:
                validator.validate_cell(cell)
        except (ValidationError, KeyError, TypeError, ValueError) as error:
            raise CourseError(f"{where}: invalid nbgrader metadata: {error}") from None
        if check_metadata and "course" in cell.metadata:
            try:
                rules.check_course_metadata(cell.metadata["course"])
            except rules.RuleError as error:
                raise CourseError(f"{where}: {error}") from None
        if cells.role(cell) == "free":
            continue
        gid = cells.grade_id(cell)
        if gid in first_use:
            raise CourseError(f"{where}: duplicate grade_id {gid!r} (already used by cell {first_use[gid]})")
        first_use[gid] = index
    return nb
