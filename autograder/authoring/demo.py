"""A demo batch made from the course itself: the solution, the blank release, one submission per seeded
bug (mutant) and a few broken files. `course demo` grades it; `course validate` and the benchmarks too."""

from __future__ import annotations

import shutil
from pathlib import Path

import nbformat

from autograder.authoring import mutants
from autograder.authoring.release import solution_notebook
from autograder.course import Course
from autograder.grading.grade import AssignmentSource

GARBAGE = {
    "garbage_json": b"{this is not json",
    "garbage_binary": bytes(range(256)) * 16,
    "garbage_nbformat3": b'{"nbformat": 3, "nbformat_minor": 0, "worksheets": [], "metadata": {}}',
}


def build_demo_course(
    course: Course,
    assignment: str,
    root: Path,
    copies: int = 1,
    garbage: bool = True,
    extra: dict[str, dict[str, nbformat.NotebookNode]] | None = None,
    mutant_numbers: set[int] | None = None,
) -> Course:
    """A fresh course directory at `root` with submitted/<student>/<assignment>/ for a demo batch.

    copies: how many students submit the solution and how many submit the blank release.
    extra: more submissions, {student: {notebook name: notebook}} (validation's seed runs, automatic mutants).
    mutant_numbers: only these declared mutants (by their place in mutants.toml); None: every one.
    """
    root.mkdir(parents=True)
    shutil.copy(course.root / "nbgrader_config.py", root / "nbgrader_config.py")
    for folder in (course.source_dir, course.release_dir, course.solutions_dir):
        if (folder / assignment).is_dir():
            shutil.copytree(folder / assignment, root / folder.relative_to(course.root) / assignment)
    demo = Course.load(root)
    source = AssignmentSource.load(demo, assignment)
    solutions = {name: solution_notebook(nb) for name, nb in source.notebooks.items()}

    def submit(student: str, notebooks: dict) -> None:
        folder = demo.submitted_dir / student / assignment
        folder.mkdir(parents=True)
        for name, notebook in notebooks.items():
            nbformat.write(notebook, folder / name)

    for number in range(copies):
        submit(f"correct_{number:02d}", solutions)
        blank = {
            p.name: nbformat.read(p, as_version=4) for p in sorted((demo.release_dir / assignment).glob("*.ipynb"))
        }
        submit(f"blank_{number:02d}", blank)
    declared = mutants.load(demo, assignment)
    for number, mutant in enumerate(declared.mutants):
        if mutant_numbers is not None and number not in mutant_numbers:
            continue
        submit(f"mutant_{number:02d}", mutants.apply_edits(source.notebooks, mutant.edits, mutant.name, declared.path))
    for student, notebooks in (extra or {}).items():
        submit(student, notebooks)
    if garbage:
        for student, content in GARBAGE.items():
            folder = demo.submitted_dir / student / assignment
            folder.mkdir(parents=True)
            for name in source.notebooks:
                (folder / name).write_bytes(content)
    return demo
