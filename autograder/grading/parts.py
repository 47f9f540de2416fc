"""A submission graded in parts: which parts it needs, and how their results make one.

A submission of an assignment without GPU tests is one part, "all". With GPU-tagged tests it can be
split: the "cpu" part (every test but the GPU ones, which stay pending "waiting for GPU runner") and
the "gpu" part (only the GPU tests, on a CUDA runner). Both parts run all of the student's cells, so
each test sees the notebook state it was written for. Merging puts the GPU part's verdicts in place of
the pending cells: the merged result is the one a single "all" grading gives.
"""

from __future__ import annotations

import dataclasses

from nbformat import NotebookNode

from autograder.grading.results import SubmissionResult
from autograder.notebook import cells


def has_gpu_tests(notebooks: dict[str, NotebookNode]) -> bool:
    return any(cells.role(c) == "test" and cells.is_gpu(c) for nb in notebooks.values() for c in nb.cells)


def merge(base: SubmissionResult, gpu: SubmissionResult | None) -> SubmissionResult:
    """The CPU part's result with the GPU part's verdicts in place of its pending cells."""
    if gpu is None:
        return base
    verdicts = {(cell.notebook, cell.grade_id): cell for cell in gpu.cells}
    return dataclasses.replace(
        base,
        cells=[verdicts.get((c.notebook, c.grade_id), c) if c.pending else c for c in base.cells],
        problems=base.problems + [p for p in gpu.problems if p not in base.problems],
        findings=base.findings + [f for f in gpu.findings if f not in base.findings],
        seconds=base.seconds + gpu.seconds,
        autograded={},
    )


def merge_notebook(base: NotebookNode, gpu: NotebookNode, gpu_ids: set[str]) -> NotebookNode:
    """The CPU part's autograded notebook with the outputs of the GPU tests taken from the GPU part's."""
    outputs = {cells.grade_id(cell): cell.get("outputs", []) for cell in gpu.cells if cells.grade_id(cell) in gpu_ids}
    for cell in base.cells:
        if cells.grade_id(cell) in outputs:
            cell.outputs = outputs[cells.grade_id(cell)]
    return base
