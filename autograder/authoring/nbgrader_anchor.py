"""Grade notebooks with nbgrader itself (`nbgrader autograde`) in a throw-away course directory.

Our course must stay a valid nbgrader course, and nbgrader is the anchor we compare against: tests use
this to check that solutions earn full marks and blank releases earn nothing under nbgrader too, and the
benchmarks use it to time nbgrader on the same batch.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from autograder.course import Course, put_python_scripts_on_path


@dataclass(frozen=True)
class AnchorScore:
    auto_score: float  # points earned on autograded test cells
    auto_max: float  # points available on autograded test cells
    needs_manual: float  # points of manually graded cells (not scored by autograde)
    cells: tuple[tuple[str, float], ...] = ()  # (grade id, score) of each autograded test cell


def _nbgrader(args: list[str], cwd: Path, tolerate_failures: bool = False) -> None:
    put_python_scripts_on_path()
    command = [str(Path(sys.executable).parent / "nbgrader"), *args]
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, env=os.environ.copy())
    if done.returncode != 0 and not tolerate_failures:
        raise RuntimeError(f"nbgrader {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")


def make_anchor_course(course: Course, assignment: str, workdir: Path) -> Path:
    """A fresh nbgrader course in workdir holding one assignment's source, with the gradebook filled."""
    root = workdir / "nbgrader-course"
    (root / "source").mkdir(parents=True)
    shutil.copy(course.root / "nbgrader_config.py", root / "nbgrader_config.py")
    shutil.copytree(course.source_dir / assignment, root / "source" / assignment)
    _nbgrader(["generate_assignment", assignment, "--force"], cwd=root)
    return root


def autograde(
    root: Path, assignment: str, submissions: dict[str, Path], tolerate_failures: bool = False
) -> dict[str, AnchorScore]:
    """Submit each student's folder (or single notebook) and run `nbgrader autograde`; read the gradebook.

    tolerate_failures: broken submissions make nbgrader fail; leave them out of the answer instead.
    """
    from nbgrader.api import Gradebook, MissingEntry

    for student, path in submissions.items():
        target = root / "submitted" / student / assignment
        if path.is_dir():
            shutil.copytree(path, target)
        else:
            target.mkdir(parents=True)
            shutil.copy(path, target / path.name)
    _nbgrader(["autograde", assignment, "--force"], cwd=root, tolerate_failures=tolerate_failures)

    scores = {}
    with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gradebook:
        for student in submissions:
            try:
                submission = gradebook.find_submission(assignment, student)
            except MissingEntry:
                if tolerate_failures:
                    continue
                raise
            auto_score = auto_max = manual = 0.0
            per_cell = []
            for notebook in submission.notebooks:
                for grade in notebook.grades:
                    if grade.cell.cell_type == "code":
                        auto_score += grade.score
                        auto_max += grade.max_score
                        per_cell.append((grade.cell.name, grade.score))
                    else:
                        manual += grade.max_score
            scores[student] = AnchorScore(auto_score, auto_max, manual, tuple(sorted(per_cell)))
    return scores
