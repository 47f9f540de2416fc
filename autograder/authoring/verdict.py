"""What a demo batch must show, judged the same way by `course validate` and `course demo`: the solution
earns every autograded point, the blank release none, every declared mutant (bug, mistake, cheat) loses
points, and each broken file is recorded with a reason. A submission missing from the batch fails its check."""

from __future__ import annotations

from dataclasses import dataclass

from autograder.authoring import mutants
from autograder.authoring.demo import GARBAGE
from autograder.grading.results import SubmissionResult

STOPPED_BY_QUICK = "the first test that lost points"  # tests --quick never ran are not "failed"


@dataclass
class Check:
    name: str
    expected: str
    got: str
    ok: bool
    group: str = ""  # "solution", "blank", "mutant", "garbage", "seed", "nbgrader"


def score(result: SubmissionResult) -> str:
    return f"{result.score:g}/{result.auto_max:g}"


def full_marks_check(name: str, result: SubmissionResult | None, group: str) -> Check:
    if result is None:
        return Check(name, "every point", "missing from the batch", False, group)
    failing = [f"{c.grade_id}: {c.message}" for c in result.cells if not c.manual and c.score < c.max_points]
    got = score(result) + (f" ({failing[0][:200]})" if failing else "") + "; ".join(result.problems)
    ok = result.score == result.auto_max > 0 and not failing
    return Check(name, f"{result.auto_max:g}/{result.auto_max:g}", got, ok, group)


def demo_batch_checks(
    results: dict[str, SubmissionResult], declared: mutants.MutantsFile, mutant_numbers: set[int] | None = None
) -> list[Check]:
    """The checks of a batch built by demo.build_demo_course, by student name (only the mutants in
    mutant_numbers, when the batch was built with a sample of them)."""
    solved, blank = results.get("correct_00"), results.get("blank_00")
    checks = [full_marks_check("solution", solved, "solution")]
    if blank is None:
        checks.append(Check("blank release", "0", "missing from the batch", False, "blank"))
    else:
        checks.append(Check("blank release", f"0/{blank.auto_max:g}", score(blank), blank.score == 0, "blank"))
    full = f"{solved.auto_max:g}/{solved.auto_max:g}" if solved else "every point"
    for number, mutant in enumerate(declared.mutants):
        if mutant_numbers is not None and number not in mutant_numbers:
            continue
        name = f"{mutant.kind}: {mutant.name}"
        graded = results.get(f"mutant_{number:02d}")
        if graded is None or solved is None:
            checks.append(Check(name, f"< {full}", "missing from the batch", False, "mutant"))
            continue
        lost = [
            c.grade_id for c in graded.cells
            if not c.manual and c.score < c.max_points and STOPPED_BY_QUICK not in c.message
        ]  # fmt: skip
        got = score(graded) + (f" (fails {', '.join(lost[:3])})" if lost else "")
        checks.append(Check(name, f"< {full}", got, graded.score < solved.auto_max, "mutant"))
    for student in GARBAGE:
        if student in results:
            problems = results[student].problems
            got = problems[0][:120] if problems else "no reason recorded"
            checks.append(Check(f"broken file: {student}", "a reason", got, bool(problems), "garbage"))
    return checks


DEMO_GROUPS = {
    "solution": "solution earns every autograded point",
    "blank": "blank release earns 0",
    "mutant": "every mutant loses points ({count})",
    "garbage": "broken files are recorded with a reason",
}


def run_demo(course, assignment: str, workers: int, target, echo) -> bool:
    """`course demo`: build the demo batch at `target` (replacing it), grade it with the local pool and
    job table as an instructor would, print the batch summary and the verdict through `echo`. True when
    every check holds and every kind of submission was there."""
    import shutil

    from autograder.authoring.demo import build_demo_course
    from autograder.batch.coordinator import grade_batch
    from autograder.records.summary import batch_summary

    if target.exists():
        shutil.rmtree(target)
    demo = build_demo_course(course, assignment, target)
    echo(f"demo course with {len(list(demo.submitted_dir.iterdir()))} submissions of {assignment} in {target}")
    report = grade_batch(demo, assignment, workers, force=True)
    echo(batch_summary(demo, assignment, report, workers))
    checks = demo_batch_checks({r.student: r for r in report.results}, mutants.load(demo, assignment))
    for group, text in DEMO_GROUPS.items():
        members = [check for check in checks if check.group == group]
        echo(f"  {'ok  ' if members and all(c.ok for c in members) else 'MISS'} {text.format(count=len(members))}")
        for check in members:
            if not check.ok:
                echo(f"         {check.name}: expected {check.expected}, got {check.got}")
    return all(check.ok for check in checks) and all(any(c.group == g for c in checks) for g in DEMO_GROUPS)
