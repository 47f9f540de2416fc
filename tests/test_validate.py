"""`course validate` on every assignment: solution full marks, blank release 0, every seeded bug caught."""

import pytest

from autograder.course import REPO_ROOT, Course, CourseError
from autograder.release import release
from autograder.validate import load_mutants, validate

COURSE_ASSIGNMENTS = Course.load(REPO_ROOT).assignments()


@pytest.mark.parametrize("assignment", COURSE_ASSIGNMENTS)
def test_assignment_validates(repo_course, assignment):
    report = validate(repo_course, assignment, quick=True)  # each seeded bug graded up to its first lost point
    assert report.ok, report.table()
    mutants = [check for check in report.checks if check.name.startswith("mutant")]
    assert len(mutants) >= 10, f"{assignment} declares only {len(mutants)} mutants"


def test_fixture_course_validates_and_a_surviving_mutant_is_reported(fixture_course):
    release(fixture_course, "ps1")
    report = validate(fixture_course, "ps1")
    assert report.ok and report.mutation_score == "2/2", report.table()
    quick = validate(fixture_course, "ps1", quick=True)
    assert quick.ok and quick.mutation_score == "2/2", quick.table()

    mutants = fixture_course.source_dir / "ps1" / "mutants.toml"
    mutants.write_text(
        mutants.read_text() + '\n[[mutant]]\nname = "harmless"\ncell = "mean"\n'
        'replace = "sum(xs) / len(xs)"\nwith = "sum(xs) / len(xs) + 0.0"\n'
    )
    report = validate(fixture_course, "ps1")
    assert not report.ok and report.mutation_score == "2/3"
    assert "MISS mutant: harmless" in report.table()


@pytest.mark.parametrize(
    "text, message",
    [
        ("[[mutant]\nname = 1", "not valid TOML"),
        ('[[mutant]]\nname = "x"\ncell = "mean"\nreplace = "y"', "lacks with"),
    ],
)
def test_broken_mutant_files_name_the_problem(fixture_course, text, message):
    (fixture_course.source_dir / "ps1" / "mutants.toml").write_text(text)
    with pytest.raises(CourseError, match=message):
        load_mutants(fixture_course, "ps1")


def test_mutant_that_does_not_apply_is_a_course_error(fixture_course):
    release(fixture_course, "ps1")
    (fixture_course.source_dir / "ps1" / "mutants.toml").write_text(
        '[[mutant]]\nname = "typo"\ncell = "mean"\nreplace = "no such text"\nwith = "x"\n'
    )
    with pytest.raises(CourseError, match="occurs 0 times in cell 'mean'"):
        validate(fixture_course, "ps1")
