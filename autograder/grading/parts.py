"""The part rule: a submission graded in parts, which tests each part judges, and where it runs.

A submission of an assignment without GPU tests is one part, "all". With GPU-tagged tests it can be
split: the "cpu" part (every test but the GPU ones, which stay pending "waiting for GPU runner") and
the "gpu" part (only the GPU tests, on a CUDA runner). Both parts run all of the student's cells, so
each test sees the notebook state it was written for. Merging puts the GPU part's verdicts in place of
the pending cells: the merged result is the one a single "all" grading gives.

Everything that depends on the part is decided here: which tests it judges or leaves pending, whether
it records the manually graded cells, which queue takes it, whether it needs CUDA and with which limits.
"""

from __future__ import annotations

import dataclasses
import functools
import glob
import subprocess
import sys
from enum import StrEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from nbformat import NotebookNode

    from autograder.sandbox.confine import Limits

from autograder.course import CourseError, fake_cuda
from autograder.grading.results import WAITING_FOR_GPU, CellResult, SubmissionResult
from autograder.notebook import cells

GPU_MEMORY_BYTES = 64 * 1024**3  # a CUDA process maps far more than a CPU one
NO_CUDA = (
    "this machine has no CUDA (torch.cuda.is_available() is False here), so it refuses GPU jobs: grade "
    "them on a machine with a CUDA GPU (`course worker --queue gpu`, `course grade-one --part gpu`)"
)


class NoCuda(CourseError):
    """A GPU part was sent to a machine without CUDA (or a gpu worker started on one)."""


@functools.cache
def cuda_device_count() -> int:
    """How many CUDA devices this machine's torch sees, asked in a fresh Python: a worker must not
    initialise CUDA itself before it forks (its children would inherit a broken CUDA context)."""
    if fake_cuda():
        return 1
    if not glob.glob("/dev/nvidia*"):  # no NVIDIA driver: no need to start torch to know
        return 0
    code = "import torch; print(torch.cuda.device_count() if torch.cuda.is_available() else 0)"
    try:
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
        return int(done.stdout.strip() or 0)
    except (OSError, ValueError, subprocess.TimeoutExpired):
        return 0


class Part(StrEnum):
    ALL = "all"  # every test, here
    CPU = "cpu"  # every test but the GPU-tagged ones, which stay pending
    GPU = "gpu"  # only the GPU-tagged tests, on a CUDA runner

    def judges(self, gpu_test: bool) -> bool:
        """Whether this part gives a test its verdict."""
        return self is Part.ALL or (self is Part.GPU) == gpu_test

    def leaves_pending(self, gpu_test: bool) -> bool:
        """Whether this part records a test as "waiting for GPU runner" (the GPU part judges it)."""
        return self is Part.CPU and gpu_test

    @property
    def records_manual_cells(self) -> bool:
        """Manually graded cells belong to the part that also has the CPU tests."""
        return self is not Part.GPU

    @property
    def queue(self) -> str:
        """The Celery queue that takes this part."""
        return "gpu" if self is Part.GPU else "cpu"

    @property
    def other(self) -> Part | None:
        """The part this one is merged with."""
        return {Part.CPU: Part.GPU, Part.GPU: Part.CPU}.get(self)

    def on_cuda(self) -> bool:
        """Whether the student process gets the GPU: always for "gpu" (NoCuda where there is none), where
        there is one for "all" (GPU tests on their full budget), never for "cpu"."""
        if self is Part.GPU and cuda_device_count() == 0:
            raise NoCuda(NO_CUDA)
        return self is Part.GPU or (self is Part.ALL and cuda_device_count() > 0)

    def limits(self) -> Limits:
        from autograder.sandbox.confine import Limits  # the sandbox's import is heavy; the CLI needs Part only

        return Limits(gpu=True, memory_bytes=GPU_MEMORY_BYTES) if self.on_cuda() else Limits()


QUEUES = tuple(dict.fromkeys(part.queue for part in Part))
GPU_TESTS = ("here", "wait")  # the local backend grades GPU tests here, or leaves them for a GPU worker


def gpu_test_ids(notebooks: dict[str, NotebookNode]) -> set[str]:
    tests = (cell for nb in notebooks.values() for cell in nb.cells if cells.role(cell) == "test")
    return {cells.grade_id(cell) for cell in tests if cells.is_gpu(cell)}


def has_gpu_tests(notebooks: dict[str, NotebookNode]) -> bool:
    return bool(gpu_test_ids(notebooks))


def parts_to_grade(notebooks: dict[str, NotebookNode], backend: str, gpu_tests: str) -> list[Part]:
    """The parts each submission is graded in by one `course grade` run: one part without GPU tests;
    with them, both on the Celery backend, else all here (gpu_tests "here") or the CPU part only ("wait")."""
    if not has_gpu_tests(notebooks):
        return [Part.ALL]
    if backend == "celery":
        return [Part.CPU, Part.GPU]
    return [Part.ALL] if gpu_tests == "here" else [Part.CPU]


def base_part(done: list[str]) -> Part | None:
    """Of a submission's finished parts, newest first, the one its result starts from ("all" or "cpu")."""
    return next((Part(part) for part in done if part in (Part.ALL, Part.CPU)), None)


def not_graded(assignment: str, notebooks: dict[str, NotebookNode], student: str, reason: str,
               part: Part = Part.ALL) -> SubmissionResult:  # fmt: skip
    """A part the grader could not grade: each test it judges 0 with the reason, the tests it leaves to
    the GPU part pending, the manually graded cells waiting for a person."""
    result = SubmissionResult(student, assignment, problems=[reason])
    for name, notebook in notebooks.items():
        for cell in notebook.cells:
            gid, points, gpu = cells.grade_id(cell), cells.points(cell), cells.is_gpu(cell)
            if cells.role(cell) == "test" and part.leaves_pending(gpu):
                result.cells.append(CellResult(name, gid, points, None, WAITING_FOR_GPU, gpu=True, pending=True))
            elif cells.role(cell) == "test" and part.judges(gpu):
                result.cells.append(CellResult(name, gid, points, 0.0, f"not graded: {reason}", gpu=gpu))
            elif cells.role(cell) == "solution" and cells.is_graded(cell) and part.records_manual_cells:
                result.cells.append(CellResult(name, gid, points, None, "needs manual grading"))
    return result


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
