"""`course validate`: is an assignment gradable, and do its tests catch bugs?

- the solution earns every autograded point; the untouched release earns none;
- every seeded bug, common mistake and cheat in source/<a>/mutants.toml loses points ("killed");
- with `seeds`, the solution re-seeded through mutants.toml's [[seed]] entries still earns every point
  (thresholded tests pass on every seed, not only the one the author tried);
- with `auto_mutants`, automatic mutants of the solution regions are graded and the kill rate reported,
  with the survivors (code no test checks);
- rules declared on solution cells name things that exist;
- optionally (`with_nbgrader`), nbgrader autograde agrees on the solution and the blank release.
"""

from __future__ import annotations

import os
import random
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from autograder.authoring import auto_mutants, mutants
from autograder.authoring.release import solution_notebook
from autograder.authoring.verdict import Check, demo_batch_checks, full_marks_check
from autograder.course import Course, CourseError
from autograder.grading.grade import AssignmentSource
from course_utils import rules

AUTO_MUTANT_CELL_TIMEOUT_S = 90  # an automatic mutant may loop forever; no solution cell needs this long


@dataclass
class AutoMutantScore:
    generated: int  # all automatic mutants of the assignment
    accepted: int  # of those, accepted in mutants.toml as unable to change behaviour
    graded: int  # how many were graded (a sample, or all that are not accepted)
    survivors: list[auto_mutants.AutoMutant] = field(default_factory=list)

    @property
    def killed(self) -> int:
        return self.graded - len(self.survivors)

    @property
    def rate(self) -> float:
        return self.killed / self.graded if self.graded else 1.0

    def lines(self) -> list[str]:
        lines = [
            f"  automatic mutants: {self.killed} of {self.graded} killed ({100 * self.rate:.1f}%); "
            f"{self.generated} generated, {self.accepted} accepted as equivalent"
        ]
        lines += [f"    survived: {mutant.id}" for mutant in self.survivors]
        return lines


@dataclass
class ValidationReport:
    assignment: str
    checks: list[Check] = field(default_factory=list)
    auto: AutoMutantScore | None = None

    @property
    def ok(self) -> bool:
        return all(check.ok for check in self.checks)

    @property
    def mutation_score(self) -> str:
        declared = [check for check in self.checks if check.group == "mutant"]
        return f"{sum(c.ok for c in declared)}/{len(declared)}"

    def table(self) -> str:
        width = max(len(check.name) for check in self.checks)
        lines = [f"{self.assignment}: {'OK' if self.ok else 'FAILED'} (mutants killed {self.mutation_score})"]
        for check in self.checks:
            mark = "ok  " if check.ok else "MISS"
            lines.append(f"  {mark} {check.name:<{width}}  expected {check.expected:<14} got {check.got}")
        if self.auto is not None:
            lines += self.auto.lines()
        return "\n".join(lines)


def _auto_mutant_submissions(
    source: AssignmentSource, declared: mutants.MutantsFile, sample: int | None, sample_seed: int
) -> tuple[dict[str, tuple[auto_mutants.AutoMutant, dict]], int, int]:
    """({student: (mutant, notebooks)}, how many were generated, how many are accepted as equivalent)."""
    generated = auto_mutants.notebook_mutants(source.notebooks)
    ids = {mutant.id for _, mutant in generated}
    for accepted_id in declared.accepted:
        if accepted_id not in ids:
            cell = accepted_id.split(":", 1)[0]
            raise CourseError(
                f"{declared.path}: accepted mutant {accepted_id!r} no longer matches the source of cell {cell!r}"
            )
    mutated_cells = {mutant.cell for _, mutant in generated}
    for cell in declared.accepted_cells:
        if cell not in mutated_cells:
            raise CourseError(f"{declared.path}: accepted cell {cell!r} is not a solution cell with code to mutate")

    def accepted(mutant: auto_mutants.AutoMutant) -> bool:
        first, last = declared.accepted_cells.get(mutant.cell, (0, -1))
        return mutant.id in declared.accepted or first <= mutant.line <= last

    candidates = [(name, mutant) for name, mutant in generated if not accepted(mutant)]
    accepted_count = len(generated) - len(candidates)
    if sample is not None and sample < len(candidates):
        chosen = sorted(random.Random(sample_seed).sample(range(len(candidates)), sample))
        candidates = [candidates[index] for index in chosen]
    submissions = {}
    for number, (name, mutant) in enumerate(candidates):
        notebooks = {}
        for other, notebook in source.notebooks.items():
            changed = nbformat.from_dict(notebook)
            if other == name:
                for cell in changed.cells:
                    if cell.cell_type == "code" and cell.metadata.get("nbgrader", {}).get("grade_id") == mutant.cell:
                        cell.source = mutant.source
            notebooks[other] = solution_notebook(changed)
        submissions[f"auto_{number:04d}"] = (mutant, notebooks)
    return submissions, len(generated), accepted_count


def check_rule_declarations(source: AssignmentSource, course: Course) -> None:
    """A rule that names something that does not exist is an authoring error: one line, file and cell."""
    for name, notebook in source.notebooks.items():
        for cell in notebook.cells:
            where = course.source_dir / source.name / name
            grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
            try:
                rule = rules.rule_of(cell.metadata)
            except rules.RuleError as error:
                raise CourseError(f"{where}: cell {grade_id!r}: {error}") from None
            defined = rules.defined_names(cell.source)
            missing = [r.function for r in (rule.require if rule else ()) if r.function not in defined]
            if missing:
                raise CourseError(f"{where}: cell {grade_id!r}: course.require names {', '.join(missing)}, "
                                  f"which the cell does not define")  # fmt: skip


def validate(
    course: Course,
    assignment: str,
    with_nbgrader: bool = False,
    workers: int | None = None,
    quick: bool = False,
    seeds: int = 0,
    auto_mutants_sample: int | None = None,
    auto: bool = False,
    sample_seed: int = 0,
    mutant_sample: int | None = None,
) -> ValidationReport:
    """Grade the demo batch (solution, blank release, one submission per mutant, seed runs, automatic
    mutants) and check each verdict.

    quick: grade each mutant only up to its first lost point (enough to know it is caught; the report
    then names that one test instead of every test that catches it).
    seeds: also grade the solution with {seed} = 1..seeds-1 in mutants.toml's [[seed]] entries.
    auto: grade automatic mutants, all of them or a sample of auto_mutants_sample (chosen with sample_seed).
    mutant_sample: grade only this many of the declared mutants, chosen with sample_seed (CI's budget for
    an assignment whose solution runs long; `course validate` grades them all)."""
    from autograder.authoring.demo import build_demo_course
    from autograder.batch.coordinator import grade_batch

    report = ValidationReport(assignment)
    if not (course.release_dir / assignment).is_dir():
        raise CourseError(f"{course.release_dir / assignment}: missing; run `course release {assignment}` first")
    source = AssignmentSource.load(course, assignment)
    check_rule_declarations(source, course)
    declared = mutants.load(course, assignment)
    for mutant in declared.mutants:  # an entry that no longer matches fails here, before any grading
        mutants.apply_edits(source.notebooks, mutant.edits, mutant.name, declared.path)
    if seeds > 1 and not declared.seeds:
        raise CourseError(f"{declared.path}: no [[seed]] entry, so the solution cannot be re-seeded")
    extra = {
        f"seed_{seed:02d}": mutants.apply_edits(
            source.notebooks, mutants.seeded(declared.seeds, seed), f"seed {seed}", declared.path
        )
        for seed in range(1, seeds)
    }
    auto_submissions, generated, accepted = (
        _auto_mutant_submissions(source, declared, auto_mutants_sample, sample_seed) if auto else ({}, 0, 0)
    )
    extra.update({student: notebooks for student, (_, notebooks) in auto_submissions.items()})
    numbers = None
    if mutant_sample is not None and mutant_sample < len(declared.mutants):
        numbers = set(random.Random(sample_seed).sample(range(len(declared.mutants)), mutant_sample))

    with tempfile.TemporaryDirectory(prefix="validate-") as tmp:
        demo = build_demo_course(course, assignment, Path(tmp) / "course", garbage=False, extra=extra,
                                 mutant_numbers=numbers)  # fmt: skip
        if auto:
            with open(demo.root / "nbgrader_config.py", "a") as config:
                config.write(f"\nc.ExecutePreprocessor.timeout = {AUTO_MUTANT_CELL_TIMEOUT_S}\n")
            demo = Course.load(demo.root)
        stop = (lambda student: student.startswith(("mutant_", "auto_"))) if quick else None
        batch = grade_batch(demo, assignment, workers=workers or os.cpu_count() or 1, force=True,
                            show_progress=False, stop_after_loss=stop)  # fmt: skip
    results = {result.student: result for result in batch.results}

    solved = results["correct_00"]
    report.checks.extend(demo_batch_checks(results, declared, numbers))
    for seed in range(1, seeds):
        report.checks.append(full_marks_check(f"solution, seed {seed}", results[f"seed_{seed:02d}"], "seed"))
    if auto:
        survivors = [
            mutant for student, (mutant, _) in auto_submissions.items()
            if results[student].score >= solved.auto_max
        ]  # fmt: skip
        report.auto = AutoMutantScore(generated, accepted, len(auto_submissions), survivors)

    if with_nbgrader:
        report.checks.extend(nbgrader_checks(course, assignment))
    return report


def nbgrader_checks(course: Course, assignment: str) -> list[Check]:
    from autograder.authoring.nbgrader_anchor import autograde, make_anchor_course

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
            "nbgrader",
        ),
        Check(
            "nbgrader: blank release",
            f"0/{blank.auto_max:g}",
            f"{blank.auto_score:g}/{blank.auto_max:g}",
            blank.auto_score == 0,
            "nbgrader",
        ),
    ]
