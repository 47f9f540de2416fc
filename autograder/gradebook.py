"""Write grades into nbgrader's gradebook (its own API and schema), so formgrader, `nbgrader export` and
`nbgrader generate_feedback` see them. The grading coordinator is the only writer."""

from __future__ import annotations

import json
import warnings

from nbformat import NotebookNode

from autograder import cells
from autograder.course import Course, put_python_scripts_on_path
from autograder.results import SubmissionResult


def _record_assignment(gradebook, assignment: str, notebooks: dict[str, NotebookNode]) -> None:
    gradebook.update_or_create_assignment(assignment)
    existing = {nb.name for nb in gradebook.find_assignment(assignment).notebooks}
    for name in notebooks:
        notebook_id = name.removesuffix(".ipynb")
        if notebook_id not in existing:
            gradebook.add_notebook(
                notebook_id, assignment, kernelspec=json.dumps(notebooks[name].metadata.get("kernelspec", {}))
            )
        for cell in notebooks[name].cells:
            gid, role = cells.grade_id(cell), cells.role(cell)
            if gid is None or role == "free":
                continue
            if cells.is_graded(cell):
                gradebook.update_or_create_grade_cell(
                    gid, notebook_id, assignment, max_score=cells.points(cell), cell_type=cell.cell_type
                )
            if role == "solution":
                gradebook.update_or_create_solution_cell(gid, notebook_id, assignment)
            gradebook.update_or_create_source_cell(
                gid,
                notebook_id,
                assignment,
                cell_type=cell.cell_type,
                locked=role in ("readonly", "test"),
                source=cell.source,
            )


def write_grades(course: Course, notebooks: dict[str, NotebookNode], results: list[SubmissionResult]) -> None:
    from nbgrader.api import Gradebook, MissingEntry
    from sqlalchemy.exc import SAWarning

    put_python_scripts_on_path()
    with warnings.catch_warnings(), Gradebook(course.db_url, course.course_id) as gradebook:
        warnings.simplefilter("ignore", category=SAWarning)  # raised inside nbgrader's own update_or_create_*
        for assignment in {result.assignment for result in results}:
            _record_assignment(gradebook, assignment, notebooks)
        for result in results:
            gradebook.update_or_create_student(result.student)
            gradebook.update_or_create_submission(result.assignment, result.student)
            for cell in result.cells:
                notebook_id = cell.notebook.removesuffix(".ipynb")
                grade = gradebook.find_grade(cell.grade_id, notebook_id, result.assignment, result.student)
                grade.auto_score = cell.score
                grade.needs_manual_grade = cell.manual or grade.manual_score is not None
                comment_text = cell.public_message if cell.message and not cell.manual else None
                try:
                    comment = gradebook.find_comment(cell.grade_id, notebook_id, result.assignment, result.student)
                    comment.auto_comment = comment_text
                except MissingEntry:  # nbgrader keeps comments for solution cells only
                    pass
            gradebook.db.commit()
