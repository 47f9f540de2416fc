"""The gradebook the grader creates is the one nbgrader creates: same tables, same alembic revision."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, inspect, text

from autograder.course import put_python_scripts_on_path
from autograder.records.gradebook import alembic_head, create_new_gradebook


def _schema(db_url: str) -> tuple[dict, list]:
    engine = create_engine(db_url)
    try:
        inspector = inspect(engine)
        tables = {name: sorted(c["name"] for c in inspector.get_columns(name)) for name in inspector.get_table_names()}
        with engine.connect() as connection:
            version = [row[0] for row in connection.execute(text("SELECT version_num FROM alembic_version"))]
        return tables, version
    finally:
        engine.dispose()


def test_new_gradebook_matches_nbgrader(tmp_path):
    from nbgrader.api import Gradebook, get_alembic_version

    put_python_scripts_on_path()
    theirs, ours = f"sqlite:///{tmp_path / 'theirs.db'}", f"sqlite:///{tmp_path / 'ours.db'}"
    Gradebook(theirs).close()  # nbgrader's own path: `alembic heads` in a subprocess
    assert create_new_gradebook(ours)
    Gradebook(ours).close()  # finds the database made, adds nothing
    assert _schema(ours) == _schema(theirs)
    assert _schema(ours)[1] == [get_alembic_version()] == [alembic_head()]


def test_existing_gradebook_is_left_alone(tmp_path):
    from nbgrader.api import Gradebook

    db_url = f"sqlite:///{tmp_path / 'gradebook.db'}"
    assert create_new_gradebook(db_url)
    with Gradebook(db_url) as gradebook:
        gradebook.add_student("ada")
    assert not create_new_gradebook(db_url)
    with Gradebook(db_url) as gradebook:
        assert [s.id for s in gradebook.students] == ["ada"]


def _result(student: str, score: float, unknown_cell: bool = False):
    from autograder.grading.results import CellResult, SubmissionResult

    cells = [CellResult("ps1.ipynb", "test_squares", 2, score, "" if score else "AssertionError")]
    if unknown_cell:  # a cell this gradebook never heard of: nbgrader's find_grade raises MissingEntry
        cells.append(CellResult("ps1.ipynb", "test_from_another_version", 1, 1))
    return SubmissionResult(student, "ps1", cells=cells)


def test_a_submission_is_written_in_one_commit_or_not_at_all(fixture_course):
    """nbgrader's update_or_create_* commit after each row (a new submission: four commits, each an fsync);
    the writer makes them one transaction: one commit per submission, and a write that fails leaves none
    of that submission behind."""
    from nbgrader.api import Gradebook, MissingEntry
    from sqlalchemy import event

    from autograder.grading.grade import AssignmentSource
    from autograder.records.gradebook import GradebookWriter

    notebooks = AssignmentSource.load(fixture_course, "ps1").notebooks
    commits = []
    with GradebookWriter(fixture_course, "ps1", notebooks) as writer:
        event.listen(writer.gradebook.engine, "commit", lambda connection: commits.append(1))
        writer.write(_result("ada", 2))
        assert len(commits) == 1
        writer.write(_result("ada", 0))  # a re-grade: an update
        assert len(commits) == 2
        with pytest.raises(MissingEntry):
            writer.write(_result("bob", 2, unknown_cell=True))
        assert len(commits) == 2
        writer.write(_result("cy", 2))  # the writer goes on after a failed write
    with Gradebook(fixture_course.db_url) as gradebook:
        assert [s.id for s in gradebook.students] == ["ada", "cy"]
        assert gradebook.find_grade("test_squares", "ps1", "ps1", "ada").score == 0
        assert gradebook.find_grade("test_squares", "ps1", "ps1", "cy").score == 2


def _write_with_nbgraders_api(gradebook, result, gpu_solutions: dict[str, list[str]]) -> None:
    """The reference: the same grades and comments written through nbgrader's own ORM API, as
    GradebookWriter did before it wrote nbgrader's rows with SQLAlchemy Core (10 ms of CPU per submission)."""
    from nbgrader.api import MissingEntry

    from autograder.grading.results import WAITING_FOR_GPU

    gradebook.update_or_create_student(result.student)
    gradebook.update_or_create_submission(result.assignment, result.student)
    for cell in result.cells:
        notebook = cell.notebook.removesuffix(".ipynb")
        grade = gradebook.find_grade(cell.grade_id, notebook, result.assignment, result.student)
        grade.auto_score = cell.score
        grade.needs_manual_grade = cell.manual or cell.pending or grade.manual_score is not None
        try:
            comment = gradebook.find_comment(cell.grade_id, notebook, result.assignment, result.student)
        except MissingEntry:
            continue
        scored = cell.message and not cell.manual and not cell.pending
        comment.auto_comment = cell.public_message if scored else None
    for notebook, solution_ids in gpu_solutions.items():
        waiting = [c.grade_id for c in result.cells if c.pending and c.notebook.removesuffix(".ipynb") == notebook]
        for grade_id in solution_ids:
            comment = gradebook.find_comment(grade_id, notebook, result.assignment, result.student)
            comment.auto_comment = f"{WAITING_FOR_GPU}: {', '.join(waiting)}" if waiting else None
    gradebook.db.commit()


def _rows(db_url: str) -> dict[str, list]:
    """Every submission row of the gradebook, named by student, notebook and cell instead of by uuid."""
    from nbgrader.api import Gradebook

    with Gradebook(db_url) as gradebook:
        rows = {"student": sorted((s.id, s.first_name, s.email, s.lms_user_id) for s in gradebook.students)}
        rows["submission"], rows["notebook"], rows["grade"], rows["comment"] = [], [], [], []
        for assignment in gradebook.assignments:
            for submission in assignment.submissions:
                who = (assignment.name, submission.student.id)
                rows["submission"].append((*who, submission.timestamp, submission.extension))
                for notebook in submission.notebooks:
                    at = (*who, notebook.name)
                    rows["notebook"].append((*at, notebook.flagged, notebook.late_submission_penalty))
                    rows["grade"] += [(*at, g.cell.name, g.auto_score, g.manual_score, g.extra_credit,
                                       g.needs_manual_grade) for g in notebook.grades]  # fmt: skip
                    rows["comment"] += [(*at, c.cell.name, c.auto_comment, c.manual_comment) for c in notebook.comments]
        return {table: sorted(found, key=repr) for table, found in rows.items()}


def test_the_writer_leaves_the_rows_nbgraders_own_api_leaves(fixture_course, tmp_path):
    """New submissions, re-grades, a manual score an instructor gave in between, GPU tests pending then
    graded, failure messages (hidden ones kept from students), a manually graded cell: the gradebook the
    writer fills is, row for row, the one nbgrader's ORM API fills with the same results."""
    from nbgrader.api import Gradebook

    from autograder.grading.grade import AssignmentSource
    from autograder.grading.results import WAITING_FOR_GPU, CellResult, SubmissionResult
    from autograder.records.gradebook import GradebookWriter

    def ps1(student, squares, mean, hidden_failed=False):
        return SubmissionResult(student, "ps1", cells=[
            CellResult("ps1.ipynb", "test_squares", 2, squares, "" if squares else "AssertionError: squares"),
            CellResult("ps1.ipynb", "test_mean_partial", 4, mean, "" if mean == 4 else "mean is off",
                       has_hidden=True, hidden_failed=hidden_failed),
            CellResult("ps1.ipynb", "test_normalise", 3, 3),
            CellResult("ps1.ipynb", "why_zero", 1, None, "needs manual grading"),
        ])  # fmt: skip

    def ps2(student, double, train):
        return SubmissionResult(student, "ps2", cells=[
            CellResult("ps2.ipynb", "test_double", 2, double, "" if double else "AssertionError: double"),
            CellResult("ps2.ipynb", "test_train", 3, train, WAITING_FOR_GPU if train is None else "", gpu=True,
                       pending=train is None),
        ])  # fmt: skip

    first = [ps1("ada", 2, 4), ps1("bob", 0, 1, hidden_failed=True), ps1("cy", 2, 0), ps2("ada", 2, None),
             ps2("bob", 0, None)]  # fmt: skip
    second = [ps1("bob", 2, 4), ps2("ada", 2, 3), ps2("bob", 0, 0), ps2("cy", 2, None)]  # re-grades, GPU parts

    def fill(db_url: str, write_with_api: bool) -> None:
        course = fixture_course
        course.config.CourseDirectory["db_url"] = db_url
        create_new_gradebook(db_url)
        with Gradebook(db_url, course.course_id) as gradebook:
            gradebook.add_student("dee", first_name="Dee", email="dee@example.org")  # known, never submitted
        writers = {a: GradebookWriter(course, a, AssignmentSource.load(course, a).notebooks) for a in ("ps1", "ps2")}
        for batch in (first, second):
            for result in batch:
                writer = writers[result.assignment]
                if write_with_api:
                    with writer._quiet():  # nbgrader's add_submission warns about its own autoflush
                        _write_with_nbgraders_api(writer.gradebook, result, writer.gpu_solutions)
                else:
                    writer.write(result)
            if batch is first:  # an instructor gives bob a manual score between the two runs
                with Gradebook(db_url) as gradebook:
                    gradebook.find_grade("test_squares", "ps1", "ps1", "bob").manual_score = 1.5
                    gradebook.db.commit()
        for writer in writers.values():
            writer.close()

    ours, theirs = f"sqlite:///{tmp_path / 'ours.db'}", f"sqlite:///{tmp_path / 'theirs.db'}"
    fill(ours, write_with_api=False)
    fill(theirs, write_with_api=True)
    rows = _rows(ours)
    assert rows == _rows(theirs)
    assert len(rows["submission"]) == 6 and len(rows["grade"]) == 3 * 4 + 3 * 2
    assert ("ps1", "bob", "ps1", "test_squares", 2.0, 1.5, None, True) in rows["grade"]  # a manual score stays
    assert ("ps2", "cy", "ps2", "train", f"{WAITING_FOR_GPU}: test_train", None) in rows["comment"]
    assert ("ps2", "ada", "ps2", "train", None, None) in rows["comment"]  # the GPU part came: no longer waiting
