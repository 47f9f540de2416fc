"""`course check <notebook>`: the student's self-check from a terminal.

Runs the notebook in a fresh kernel (its folder as working directory, errors allowed, a time limit per
cell), then course_utils.selfcheck.check_all in that same kernel, and returns its plain-text table. It
needs only the notebook and an environment with course_utils: no source/, no gradebook. The release's
own self-check cells are left out of the run: check_all at the end covers them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import nbformat

from autograder.course import Course, CourseError
from autograder.notebook import cells

DEFAULT_TIMEOUT_S = 120


@dataclass
class CheckReport:
    text: str  # check_all's table, as a terminal shows it
    passed: int
    total: int

    @property
    def ok(self) -> bool:
        return self.passed == self.total


def cell_timeout(course_root: Path) -> int:
    """The course's per-cell limit (ExecutePreprocessor.timeout) when run in a course, else 120 s."""
    try:
        return int(Course.load(course_root).config.ExecutePreprocessor.get("timeout", DEFAULT_TIMEOUT_S))
    except CourseError:  # a student with only the released folder has no nbgrader_config.py
        return DEFAULT_TIMEOUT_S


def _output_text(cell: nbformat.NotebookNode) -> str:
    parts = []
    for output in cell.get("outputs", []):
        if output.output_type in ("execute_result", "display_data"):
            parts.append(output.data.get("text/plain", ""))
        elif output.output_type == "stream":
            parts.append(output.text)
        elif output.output_type == "error":
            parts.append(f"{output.ename}: {output.evalue}")
    return "\n".join(parts).strip()


def check_notebook(path: Path, timeout: int = DEFAULT_TIMEOUT_S) -> CheckReport:
    """Run the notebook at path, then its public self-check; CourseError when it cannot be run at all."""
    from nbclient import NotebookClient

    if not path.is_file():
        raise CourseError(f"{path}: no such notebook")
    try:
        nb = nbformat.read(path, as_version=4)
    except Exception as error:  # nbformat raises several unrelated types for bad files
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise CourseError(f"{path}: not a readable notebook: {reason}") from None
    nb.cells = [cell for cell in nb.cells if not cells.is_selfcheck(cell)]
    name = json.dumps(path.name)
    nb.cells.append(nbformat.v4.new_code_cell(  # in the notebook's language (its own first cell is a self-check one)
        f"from course_utils import i18n\nfrom course_utils.selfcheck import check_all\ni18n.use_notebook({name})\n"
        f"_course_check = check_all({name})\n_course_check"
    ))
    nb.cells.append(nbformat.v4.new_code_cell(  # the counts, for the exit code: whatever the language
        'import json\nprint(json.dumps([_course_check.passed, len(_course_check.tests)]'
        ' if hasattr(_course_check, "tests") else None))'
    ))
    client = NotebookClient(
        nb,
        timeout=timeout,
        interrupt_on_timeout=True,  # a cell over its limit is interrupted and the next cells still run
        allow_errors=True,
        kernel_name="python3",
        record_timing=False,
        resources={"metadata": {"path": str(path.resolve().parent)}},
    )
    try:
        client.execute()
    except Exception as error:  # the kernel did not start or died
        reason = str(error).strip().splitlines()[-1] if str(error).strip() else type(error).__name__
        raise CourseError(f"{path}: could not run it: {reason}") from None
    text = _output_text(nb.cells[-2])
    try:
        passed, total = json.loads(_output_text(nb.cells[-1]))
    except (ValueError, TypeError):
        raise CourseError(f"{path}: the self-check did not run: {text or 'no output'}") from None
    return CheckReport(text, passed, total)
