"""`course validate`: is an assignment gradable, and do its tests catch bugs?

- the solution earns every autograded point; the untouched release earns none;
- every seeded bug in source/<a>/mutants.toml loses points (a "killed" mutant);
- optionally (`with_nbgrader`), nbgrader autograde agrees on the solution and the blank release.
"""

from __future__ import annotations

import os
import tempfile
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from autograder import cells
from autograder.course import Course, CourseError
from autograder.grade import AssignmentSource
from autograder.release import solution_notebook
from autograder.results import SubmissionResult

MUTANTS_FILE = "mutants.toml"


@dataclass
class Check:
    name: str
    expected: str
    got: str
    ok: bool


@dataclass
class ValidationReport:
    assignment: str
    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(check.ok for check in self.checks)

    @property
    def mutation_score(self) -> str:
        mutants = [check for check in self.checks if check.name.startswith("mutant")]
        return f"{sum(c.ok for c in mutants)}/{len(mutants)}"

    def table(self) -> str:
        width = max(len(check.name) for check in self.checks)
        lines = [f"{self.assignment}: {'OK' if self.ok else 'FAILED'} (mutants killed {self.mutation_score})"]
        for check in self.checks:
            mark = "ok  " if check.ok else "MISS"
            lines.append(f"  {mark} {check.name:<{width}}  expected {check.expected:<14} got {check.got}")
        return "\n".join(lines)


@dataclass(frozen=True)
class Mutant:
    name: str
    cell: str
    replace: str
    with_: str


def load_mutants(course: Course, assignment: str) -> list[Mutant]:
    path = course.source_dir / assignment / MUTANTS_FILE
    if not path.is_file():
        return []
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as error:
        raise CourseError(f"{path}: not valid TOML: {error}") from None
    mutants = []
    for number, entry in enumerate(data.get("mutant", []), start=1):
        missing = [key for key in ("name", "cell", "replace", "with") if not isinstance(entry.get(key), str)]
        if missing:
            raise CourseError(f"{path}: mutant {number} lacks {', '.join(missing)}")
        mutants.append(Mutant(entry["name"], entry["cell"], entry["replace"], entry["with"]))
    return mutants


def mutate(source: AssignmentSource, mutant: Mutant) -> tuple[str, nbformat.NotebookNode]:
    """The notebook (name, solution version) with the mutant's replacement applied in its cell."""
    for name, notebook in source.notebooks.items():
        mutated = nbformat.from_dict(notebook)
        for cell in mutated.cells:
            if cells.grade_id(cell) == mutant.cell and cells.role(cell) == "solution":
                count = cell.source.count(mutant.replace)
                if count != 1:
                    raise CourseError(
                        f"mutant {mutant.name!r}: {mutant.replace!r} occurs {count} times in cell {mutant.cell!r} "
                        "(must be exactly once)"
                    )
                cell.source = cell.source.replace(mutant.replace, mutant.with_)
                return name, solution_notebook(mutated)
    raise CourseError(f"mutant {mutant.name!r}: no solution cell {mutant.cell!r} in {source.name}")


def validate(
    course: Course, assignment: str, with_nbgrader: bool = False, workers: int | None = None, quick: bool = False
) -> ValidationReport:
    """Grade the demo batch (solution, blank release, one submission per mutant) and check each verdict.

    quick: grade each mutant only up to its first lost point (enough to know it is caught; the report
    then names that one test instead of every test that catches it)."""
    from autograder.batch import grade_batch
    from autograder.demo import build_demo_course

    report = ValidationReport(assignment)
    mutants = load_mutants(course, assignment)
    if not (course.release_dir / assignment).is_dir():
        raise CourseError(f"{course.release_dir / assignment}: missing; run `course release {assignment}` first")
    with tempfile.TemporaryDirectory(prefix="validate-") as tmp:
        demo = build_demo_course(course, assignment, Path(tmp) / "course", garbage=False)
        mutants_only = (lambda student: student.startswith("mutant_")) if quick else None
        batch = grade_batch(demo, assignment, workers=workers or os.cpu_count() or 1, force=True,
                            show_progress=False, stop_after_loss=mutants_only)  # fmt: skip
    results = {result.student: result for result in batch.results}

    solved, blank = results["correct_00"], results["blank_00"]
    full = f"{solved.auto_max:g}/{solved.auto_max:g}"
    failing = [f"{c.grade_id}: {c.message}" for c in solved.cells if not c.manual and c.score < c.max_points]
    got = _score(solved) + (f" ({failing[0][:200]})" if failing else "") + "; ".join(solved.problems)
    report.checks.append(Check("solution", full, got, solved.score == solved.auto_max > 0 and not failing))
    report.checks.append(Check("blank release", f"0/{blank.auto_max:g}", _score(blank), blank.score == 0))
    for number, mutant in enumerate(mutants):
        graded = results[f"mutant_{number:02d}"]
        lost = [c.grade_id for c in graded.cells if not c.manual and c.score < c.max_points]
        got = _score(graded) + (f" (fails {', '.join(lost[:3])})" if lost else "")
        report.checks.append(Check(f"mutant: {mutant.name}", f"< {full}", got, graded.score < solved.auto_max))

    if with_nbgrader:
        report.checks.extend(nbgrader_checks(course, assignment))
    return report


def _score(result: SubmissionResult) -> str:
    return f"{result.score:g}/{result.auto_max:g}"


def nbgrader_checks(course: Course, assignment: str) -> list[Check]:
    from autograder.nbgrader_anchor import autograde, make_anchor_course

    release_dir = course.release_dir / assignment
    solutions_dir = course.solutions_dir / assignment
    for folder in (release_dir, solutions_dir):
        if not folder.is_dir():
            raise CourseError(f"{folder}: missing; run `course release {assignment}` first")
    with tempfile.TemporaryDirectory(prefix="anchor-") as tmp:
        root = make_anchor_course(course, assignment, Path(tmp))
        scores = autograde(root, assignment, {"solution": solutions_dir, "blank": release_dir})
    solution, blank = scores["solution"], scores["blank"]
    return [
        Check(
            "nbgrader: solution",
            f"{solution.auto_max:g}/{solution.auto_max:g}",
            f"{solution.auto_score:g}/{solution.auto_max:g}",
            solution.auto_score == solution.auto_max > 0,
        ),
        Check(
            "nbgrader: blank release",
            f"0/{blank.auto_max:g}",
            f"{blank.auto_score:g}/{blank.auto_max:g}",
            blank.auto_score == 0,
        ),
    ]
