"""`course validate` on every assignment: solution full marks, blank release 0, every seeded bug caught."""

import nbformat
import pytest

from autograder.authoring import mutants
from autograder.authoring.auto_mutants import notebook_mutants
from autograder.authoring.release import release
from autograder.authoring.validate import validate
from autograder.course import REPO_ROOT, Course, CourseError
from autograder.grading import time_limits
from autograder.grading.grade import AssignmentSource

COURSE_ASSIGNMENTS = Course.load(REPO_ROOT).assignments()


AUTO_MUTANT_SAMPLE = 6  # per assignment in CI; bench/auto_mutants.py grades them all
CI_GRADING_BUDGET_S = 150  # seconds of solution runs per assignment in CI (2 workers: about a minute and a half)
FULL_CI_UNDER_S = 10  # a solution this fast is validated in full in CI...
FULL_CI_MUTANT_RUNS_S = 250  # ...when its declared mutants fit in this many seconds of solution runs


def ci_plan(repo_course, assignment) -> tuple[int, int | None, int]:
    """(seeds, declared mutants to grade or None for all, automatic mutants) for CI. An assignment whose
    solution runs longer gets a seeded sample sized to CI_GRADING_BUDGET_S; `course validate <a> --seeds 5
    --auto-mutants` grades everything (the README's tables come from it)."""
    solution = nbformat.read(repo_course.solutions_dir / assignment / f"{assignment}.ipynb", as_version=4)
    total_s = time_limits.stored_timing(solution).total_s
    declared = len(mutants.load(repo_course, assignment).mutants)
    if total_s <= FULL_CI_UNDER_S and declared * total_s <= FULL_CI_MUTANT_RUNS_S:
        return 5, None, AUTO_MUTANT_SAMPLE
    runs = int(CI_GRADING_BUDGET_S / total_s)
    return (3, max(8, runs), 4) if runs >= 10 else (2, max(6, runs), 2)


@pytest.mark.parametrize("assignment", COURSE_ASSIGNMENTS)
def test_assignment_validates(repo_course, assignment):
    """The solution (re-seeded: thresholded tests pass on every seed), the blank release, every declared
    bug, mistake and cheat (a sample, for a slow solution), and a sample of automatic mutants, in one batch."""
    seeds, mutant_sample, auto_sample = ci_plan(repo_course, assignment)
    report = validate(repo_course, assignment, quick=True, seeds=seeds, auto=True, auto_mutants_sample=auto_sample,
                      mutant_sample=mutant_sample)  # fmt: skip
    assert report.ok, report.table()
    declared = mutants.load(repo_course, assignment).mutants
    assert len(declared) >= 10, f"{assignment} declares only {len(declared)} mutants"
    graded = [check for check in report.checks if check.group == "mutant"]
    assert len(graded) == min(mutant_sample or len(declared), len(declared)), report.table()
    assert len([check for check in report.checks if check.group == "seed"]) == seeds - 1, report.table()
    assert report.auto.graded == auto_sample < report.auto.generated, report.table()
    assert report.auto.killed >= auto_sample // 2, report.table()


def test_a_sample_of_declared_mutants_grades_only_those(released):
    report = validate(released, "ps1", mutant_sample=1, sample_seed=3)
    assert report.ok and [c.group for c in report.checks].count("mutant") == 1, report.table()


def test_fixture_course_validates_and_a_surviving_mutant_is_reported(released):
    fixture_course = released
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
    assert "MISS bug: harmless" in report.table()


@pytest.mark.parametrize(
    "text, message",
    [
        ("[[mutant]\nname = 1", "not valid TOML"),
        ('[[mutant]]\nname = "x"\ncell = "mean"\nreplace = "y"', "mutant 1: give either cell, replace and with"),
        ('[[mutant]]\nname = "x"\nkind = "oops"\ncell = "m"\nreplace = "y"\nwith = "z"', "mutant 1, kind: 'oops'"),
        ('[[mutant]]\nname = "x"\nedits = [{cell = "m", replace = "y"}]', "mutant 1, edits 1: 'with' is a required"),
        ('[[accepted]]\nreason = "x"', "accepted 1: give either id"),
        ('[[seed]]\ncell = "m"', "seed 1: 'replace' is a required property"),
    ],
)
def test_broken_mutant_files_name_the_problem(fixture_course, text, message):
    (fixture_course.source_dir / "ps1" / "mutants.toml").write_text(text)
    with pytest.raises(CourseError, match=f"mutants.toml: {message}" if "TOML" not in message else message):
        mutants.load(fixture_course, "ps1")


def test_mutant_that_does_not_apply_is_a_course_error(fixture_course):
    release(fixture_course, "ps1")
    (fixture_course.source_dir / "ps1" / "mutants.toml").write_text(
        '[[mutant]]\nname = "typo"\ncell = "mean"\nreplace = "no such text"\nwith = "x"\n'
    )
    with pytest.raises(CourseError, match="mutants.toml: typo: 'no such text' occurs 0 times in cell 'mean'"):
        validate(fixture_course, "ps1")


def test_mutants_of_every_kind_seeds_and_automatic_mutants(fixture_course):
    release(fixture_course, "ps1")
    (fixture_course.source_dir / "ps1" / "mutants.toml").write_text(
        '[[mutant]]\nname = "two cells at once"\nkind = "cheat"\nedits = [\n'
        '  { cell = "squares", replace = "range(1, n + 1)", with = "range(0, n)" },\n'
        '  { cell = "mean", replace = "len(xs)", with = "(len(xs) + 1)" },\n]\n'
        '[[mutant]]\nname = "harmless"\nkind = "mistake"\ncell = "mean"\n'
        'replace = "sum(xs) / len(xs)"\nwith = "sum(xs) / len(xs) + 0.0"\n'
        '[[seed]]\ncell = "normalise"\nreplace = "return v / np.linalg.norm(v)"\n'
        'with = "return v / np.linalg.norm(v) * (1 + 0 * {seed})"\n'
        '[[accepted]]\nid = "squares: line 4: `n < 1` -> `n <= 1`"\nreason = "squares(1) is [1] either way"\n'
        '[[accepted]]\ncell = "normalise"\nlines = [4, 4]\nreason = "its line 4 only"\n'
    )
    report = validate(fixture_course, "ps1", seeds=3, auto=True)
    table = report.table()
    assert report.mutation_score == "1/2" and not report.ok, table
    assert "ok   cheat: two cells at once" in table and "MISS mistake: harmless" in table
    assert [c.ok for c in report.checks if c.group == "seed"] == [True, True], table
    auto = report.auto
    normalise = [m for _, m in notebook_mutants(AssignmentSource.load(fixture_course, "ps1").notebooks)
                 if m.cell == "normalise" and m.line == 4]  # fmt: skip
    assert auto.accepted == 1 + len(normalise) and auto.graded == auto.generated - auto.accepted > 5, table
    assert f"automatic mutants: {auto.killed} of {auto.graded} killed" in table
    survivors = {mutant.id for mutant in auto.survivors}
    assert survivors == {"squares: line 4: `1` -> `0`"}, table  # no test asks for squares(0)
    assert all(f"survived: {survivor}" in table for survivor in survivors)


def test_stale_accepted_mutants_and_seeds_name_the_file_and_cell(fixture_course):
    release(fixture_course, "ps1")
    path = fixture_course.source_dir / "ps1" / "mutants.toml"
    path.write_text('[[accepted]]\nid = "mean: line 9: `a` -> `b`"\nreason = "gone"\n')
    with pytest.raises(CourseError, match=r"accepted mutant .* no longer matches the source of cell 'mean'"):
        validate(fixture_course, "ps1", auto=True)
    path.write_text('[[seed]]\ncell = "mean"\nreplace = "np.random.seed(0)"\nwith = "np.random.seed({seed})"\n')
    with pytest.raises(CourseError, match="mutants.toml: seed 1: 'np.random.seed.0.' occurs 0 times in cell 'mean'"):
        validate(fixture_course, "ps1", seeds=2)
