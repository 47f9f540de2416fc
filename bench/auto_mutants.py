"""Mutation score of every assignment's tests: all automatic mutants, graded.

    .venv/bin/python bench/auto_mutants.py [assignment ...] [--workers N] [--out bench/auto_mutants.md]

For each assignment, generates every automatic mutant of the source's solution regions
(autograder/authoring/auto_mutants.py), leaves out those mutants.toml accepts as equivalent, grades the rest with
`course grade`'s engine (each only up to its first lost point) and prints the kill rate and the time.
The survivors, with cell and line, go to the --out file (Markdown): code that no test checks.
The CI suite grades a sample of these (tests/test_validate.py); this script grades them all.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from autograder.authoring.validate import validate  # noqa: E402
from autograder.course import REPO_ROOT, Course  # noqa: E402

TARGET = 0.90


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("assignments", nargs="*")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "bench" / "auto_mutants.md")
    args = parser.parse_args()
    course = Course.load(REPO_ROOT)
    rows = ["| assignment | generated | accepted | graded | killed | kill rate | time |", "|---" * 7 + "|"]
    survivors = []
    for assignment in args.assignments or course.assignments():
        started = time.perf_counter()
        report = validate(course, assignment, workers=args.workers, quick=True, auto=True)
        seconds = time.perf_counter() - started
        auto = report.auto
        mark = "" if auto.rate >= TARGET else " (below 90%)"
        rows.append(
            f"| {assignment} | {auto.generated} | {auto.accepted} | {auto.graded} | {auto.killed} "
            f"| {100 * auto.rate:.1f}%{mark} | {seconds:.0f} s |"
        )
        print(rows[-1], flush=True)
        survivors += [f"\n## {assignment}: {len(auto.survivors)} survivors\n"]
        survivors += [f"- {mutant.id}" for mutant in auto.survivors]
        args.out.write_text("# Automatic mutants\n\n" + "\n".join(rows) + "\n" + "\n".join(survivors) + "\n")
    print("\n".join(rows))
    print(f"survivors in {args.out}")


if __name__ == "__main__":
    main()
