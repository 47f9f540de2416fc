"""Our course stays a valid nbgrader course: nbgrader autograde gives the solution every autograded point
and the untouched release none."""

import pytest

from autograder.authoring.validate import nbgrader_checks, validate
from autograder.course import REPO_ROOT, Course

COURSE_ASSIGNMENTS = Course.load(REPO_ROOT).assignments()


@pytest.mark.parametrize("assignment", COURSE_ASSIGNMENTS)
def test_nbgrader_autograde_solution_full_release_zero(repo_course, assignment):
    checks = nbgrader_checks(repo_course, assignment)
    assert len(checks) == 2
    assert all(check.ok for check in checks), [(c.name, c.expected, c.got) for c in checks]


def test_fixture_course_under_nbgrader(released):
    report = validate(released, "ps1", with_nbgrader=True)
    assert report.ok, report.table()
    assert [c.got for c in report.checks if c.name.startswith("nbgrader")] == ["9/9", "0/9"]


def test_fixture_course_scores_match_nbgrader(fixture_course, tmp_path):
    """Honest submissions get the same scores from `course grade` and from `nbgrader autograde`."""
    from autograder.authoring.nbgrader_anchor import autograde, make_anchor_course
    from autograder.authoring.release import release
    from autograder.batch.coordinator import grade_batch
    from tests.helpers import MEAN_OK, NORMALISE_OK, SQUARES_OK, submit

    release(fixture_course, "ps1")
    folders = {
        "solution": submit(fixture_course, "ps1", "solution"),
        "blank": submit(fixture_course, "ps1", "blank", {}),
        "two_right": submit(fixture_course, "ps1", "two_right", {"squares": SQUARES_OK, "normalise": NORMALISE_OK}),
        "partial_mean": submit(
            fixture_course,
            "ps1",
            "partial_mean",
            {"mean": "def mean(xs):\n    return sum(xs) / len(xs) if len(xs) > 1 else 0.0", "squares": SQUARES_OK},
        ),
        "hidden_wrong": submit(
            fixture_course,
            "ps1",
            "hidden_wrong",
            {"squares": "def squares(n):\n    return [1, 4, 9][:n]", "mean": MEAN_OK, "normalise": NORMALISE_OK},
        ),
    }
    ours = {result.student: result.score for result in grade_batch(fixture_course, "ps1", show_progress=False).results}
    root = make_anchor_course(fixture_course, "ps1", tmp_path)
    theirs = {student: score.auto_score for student, score in autograde(root, "ps1", folders).items()}
    assert ours == theirs
    assert ours == {"solution": 9, "blank": 0, "two_right": 5, "partial_mean": 5, "hidden_wrong": 7}


PS3_STUDENTS = {
    "solution": None,
    "blank": {},
    "no_helper": {"functions": "SCALE = 2\n\ndef squares(n):\n    return [i * i for i in range(1, n + 1)]\n\n"
                  "def cubes(n):\n    return [i ** 3 for i in range(1, n + 1)]\n\n"
                  "def sum_of_squares(n):\n    return sum(i * i for i in range(1, n + 1))\n\n"
                  "def scaled(x):\n    return SCALE * x"},
    "fixed_scale": {"functions": "SCALE = 2\n\ndef squares(n):\n    return [i * i for i in range(1, n + 1)]\n\n"
                    "def cubes(n):\n    return [i ** 3 for i in range(1, n + 1)]\n\n"
                    "def sum_of_squares(n):\n    return sum(squares(n))\n\n"
                    "def scaled(x):\n    return 2 * x"},
}  # fmt: skip


def test_tests_that_patch_or_delete_student_names_score_as_under_nbgrader(fixture_course, tmp_path):
    """ps3's tests delete `squares` (sum_of_squares must then fail with NameError), replace it with the
    student's `cubes`, and set the global SCALE that `scaled` reads, restoring each in a finally block;
    a last test checks that everything is the student's own again. Per cell, nbgrader and `course grade`
    agree."""
    from autograder.authoring.nbgrader_anchor import autograde, make_anchor_course
    from autograder.authoring.release import release
    from autograder.batch.coordinator import grade_batch
    from tests.helpers import submit

    release(fixture_course, "ps3")
    folders = {student: submit(fixture_course, "ps3", student, code) for student, code in PS3_STUDENTS.items()}
    results = grade_batch(fixture_course, "ps3", show_progress=False).results
    ours = {r.student: tuple(sorted((c.grade_id, c.score) for c in r.cells)) for r in results}
    root = make_anchor_course(fixture_course, "ps3", tmp_path)
    theirs = {student: score.cells for student, score in autograde(root, "ps3", folders).items()}
    assert ours == theirs
    assert {student: sum(score for _, score in cells) for student, cells in ours.items()} == {
        "solution": 8, "blank": 0, "no_helper": 4, "fixed_scale": 6,
    }  # fmt: skip


def test_a_test_that_puts_a_judge_side_stub_in_place_of_a_student_function_is_an_authoring_error(fixture_course):
    """A counting stub written in the test would have to run in the student process: refused, by name."""
    import nbformat

    from autograder.authoring.release import release
    from autograder.course import CourseError

    path = fixture_course.source_dir / "ps3" / "ps3.ipynb"
    nb = nbformat.read(path, as_version=4)
    stub = nbformat.v4.new_code_cell(
        "calls = []\norig_squares = squares\n\ndef squares(n):\n    calls.append(n)\n    return orig_squares(n)\n\n"
        "try:\n    sum_of_squares(2)\n    assert calls == [2]\nfinally:\n    squares = orig_squares",
        metadata={"nbgrader": {"grade": True, "grade_id": "test_counts_calls", "locked": True, "points": 1,
                               "schema_version": 3, "solution": False}},
    )  # fmt: skip
    nb.cells.append(stub)
    nbformat.write(nb, path)
    release(fixture_course, "ps3")
    message = "test cell 'test_counts_calls' puts a judge-side function in place of 'squares'"
    with pytest.raises(CourseError, match=message):
        validate(fixture_course, "ps3")
