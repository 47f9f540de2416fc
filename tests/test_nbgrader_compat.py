"""Our course stays a valid nbgrader course: nbgrader autograde gives the solution every autograded point
and the untouched release none."""

import pytest

from autograder.course import REPO_ROOT, Course
from autograder.validate import validate

COURSE_ASSIGNMENTS = Course.load(REPO_ROOT).assignments()


@pytest.mark.parametrize("assignment", COURSE_ASSIGNMENTS)
def test_nbgrader_autograde_solution_full_release_zero(repo_course, assignment):
    report = validate(repo_course, assignment)
    anchor = [check for check in report.checks if check.name.startswith("nbgrader")]
    assert len(anchor) == 2
    assert all(check.ok for check in anchor), report.table()


def test_fixture_course_under_nbgrader(fixture_course):
    from autograder.release import release

    release(fixture_course, "ps1")
    report = validate(fixture_course, "ps1")
    assert report.ok, report.table()
    assert "9/9" in report.table()
