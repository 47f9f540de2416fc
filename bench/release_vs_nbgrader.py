"""Benchmark: `course release` against `nbgrader generate_assignment`, same notebooks, same run.

    .venv/bin/python bench/release_vs_nbgrader.py

For every assignment in source/, times (a) the release step inside `course release` (nbgrader's
GenerateAssignment converter in-process, no database), (b) the whole `course release --no-execute`
command, and (c) the `nbgrader generate_assignment` command, each in a scratch copy of the course.
Solution execution is excluded from (a) and (b): it is the notebook's own run time.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from autograder.authoring.release import release  # noqa: E402
from autograder.course import REPO_ROOT, Course, put_python_scripts_on_path  # noqa: E402


def scratch_course(root: Path) -> Course:
    root.mkdir(parents=True)
    shutil.copy(REPO_ROOT / "nbgrader_config.py", root)
    shutil.copytree(REPO_ROOT / "source", root / "source")
    return Course.load(root)


def timed(command: list[str], cwd: Path) -> float:
    started = time.perf_counter()
    subprocess.run(command, cwd=cwd, check=True, capture_output=True)
    return time.perf_counter() - started


def main() -> None:
    put_python_scripts_on_path()
    bin_dir = Path(sys.executable).parent
    with tempfile.TemporaryDirectory(prefix="bench-release-") as tmp:
        course = scratch_course(Path(tmp) / "ours")
        anchor = scratch_course(Path(tmp) / "nbgrader")
        header = ("assignment", "notebooks", "in-process", "course CLI", "nbgrader CLI", "ratio")
        print("{:<16} {:>9} {:>11} {:>11} {:>13} {:>6}".format(*header))
        for assignment in course.assignments():
            report = release(course, assignment, execute_solutions=False)
            cli = timed([str(bin_dir / "course"), "release", assignment, "--no-execute"], course.root)
            theirs = timed([str(bin_dir / "nbgrader"), "generate_assignment", assignment, "--force"], anchor.root)
            count = len(report.notebooks)
            print(
                f"{assignment:<16} {count:>9} {report.release_seconds / count:>10.3f}s {cli / count:>10.2f}s "
                f"{theirs / count:>12.2f}s {theirs / cli:>5.1f}x"
            )


if __name__ == "__main__":
    main()
