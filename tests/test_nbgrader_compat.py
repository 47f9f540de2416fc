"""Our course stays a valid nbgrader course: nbgrader autograde gives the solution every autograded point
and the untouched release none."""

import pytest

from autograder.course import REPO_ROOT, Course
from autograder.validate import nbgrader_checks, validate

COURSE_ASSIGNMENTS = Course.load(REPO_ROOT).assignments()


@pytest.mark.parametrize("assignment", COURSE_ASSIGNMENTS)
def test_nbgrader_autograde_solution_full_release_zero(repo_course, assignment):
    checks = nbgrader_checks(repo_course, assignment)
    assert len(checks) == 2
    assert all(check.ok for check in checks), [(c.name, c.expected, c.got) for c in checks]


def test_fixture_course_under_nbgrader(fixture_course):
    from autograder.release import release

    release(fixture_course, "ps1")
    report = validate(fixture_course, "ps1", with_nbgrader=True)
    assert report.ok, report.table()
    assert [c.got for c in report.checks if c.name.startswith("nbgrader")] == ["9/9", "0/9"]


def test_fixture_course_scores_match_nbgrader(fixture_course, tmp_path):
    """Honest submissions get the same scores from `course grade` and from `nbgrader autograde`."""
    from autograder.batch import grade_batch
    from autograder.nbgrader_anchor import autograde, make_anchor_course
    from autograder.release import release
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
