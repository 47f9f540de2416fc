"""How long a submission may run: limits derived from the reference solution's measured run time.

`course release` executes each solution notebook and records how long its slowest cell and the whole
notebook took (rounded up to a tenth of a second, in the posted solution's metadata; measured again
only when the solution is executed again, so a release stays byte-identical). Grading then allows

    cell limit     = max(cell_floor_s,     cell_factor x the solution's slowest cell)
    notebook limit = max(notebook_floor_s, notebook_factor x the solution's total)

each at most the ceiling (the cell: ExecutePreprocessor.timeout; the notebook: notebook_ceiling_s).
A GPU part (a CUDA runner grading GPU-marked exercises at full size, which the release machine never
ran) has its own fixed budget: gpu_cell_s and gpu_notebook_s. `TimeLimits.per_assignment` overrides
any of these for one assignment. All of it lives in nbgrader_config.py:

    c.TimeLimits.notebook_factor = 5
    c.TimeLimits.per_assignment = {"a5_transformer": {"cell_s": 120}}

Why these defaults: honest code that is slow is slow in a cell or two (a loop where the solution
vectorises), so a cell may take 10x the solution's slowest; a submission that is slow everywhere is
stopped at 5x the solution's total, so one hostile submission holds a worker for a small multiple of
an honest one's time (bench/hostile_time.py measures it; the README lists each assignment's limits).

Without a measurement (solutions not executed yet) the ceilings apply, as before this module.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from nbformat import NotebookNode

DEFAULTS = {
    "cell_factor": 10.0,
    "notebook_factor": 5.0,
    "cell_floor_s": 10.0,
    "notebook_floor_s": 15.0,
    "notebook_ceiling_s": 900.0,
    "gpu_cell_s": 600.0,
    "gpu_notebook_s": 1800.0,
}
DEFAULT_CELL_CEILING_S = 120.0
OVERRIDABLE = {"cell_s", "notebook_s"}


@dataclass(frozen=True)
class Timing:
    """The solution's measured run time, in seconds."""

    slowest_cell_s: float
    total_s: float

    def as_metadata(self) -> dict:
        return {"slowest_cell_s": self.slowest_cell_s, "total_s": self.total_s}


@dataclass(frozen=True)
class Limits:
    cell_s: float
    notebook_s: float
    basis: str  # how they were decided, for the README table and error messages


def round_up(seconds: float) -> float:
    """To the next tenth of a second (0.1 at least): what is stored, so a re-release writes the same."""
    return max(0.1, math.ceil(seconds * 10 - 1e-9) / 10)


def measure(nb: NotebookNode) -> Timing:
    """The timing of an executed notebook whose code cells carry nbclient's execution timestamps
    (record_timing=True); the timestamps are removed, so the notebook's bytes do not depend on them."""
    from datetime import datetime

    durations = []
    for cell in nb.cells:
        execution = cell.get("metadata", {}).pop("execution", None)
        if cell.cell_type != "code" or not execution:
            continue
        started = execution.get("iopub.execute_input") or execution.get("shell.execute_reply.started")
        ended = execution.get("shell.execute_reply")
        if started and ended:
            seconds = (datetime.fromisoformat(ended.replace("Z", "+00:00")) -
                       datetime.fromisoformat(started.replace("Z", "+00:00"))).total_seconds()  # fmt: skip
            durations.append(max(seconds, 0.0))
    return Timing(round_up(max(durations, default=0.0)), round_up(sum(durations)))


def stored_timing(solution: NotebookNode | None) -> Timing | None:
    """What `course release` recorded in a posted solution notebook, if anything."""
    if solution is None:
        return None
    timing = solution.metadata.get("course", {}).get("timing")
    try:
        return Timing(float(timing["slowest_cell_s"]), float(timing["total_s"]))
    except (TypeError, KeyError, ValueError):
        return None


def settings(config, assignment: str) -> dict:
    """TimeLimits from nbgrader_config.py over the defaults, and the assignment's overrides."""
    section = config.get("TimeLimits", {}) if hasattr(config, "get") else {}
    values = {name: float(section.get(name, default)) for name, default in DEFAULTS.items()}
    values["cell_ceiling_s"] = float(config.get("ExecutePreprocessor", {}).get("timeout") or DEFAULT_CELL_CEILING_S)
    overrides = dict(section.get("per_assignment", {}) or {}).get(assignment, {})
    values["overrides"] = {name: float(value) for name, value in dict(overrides).items() if name in OVERRIDABLE}
    return values


def derive(config, assignment: str, timing: Timing | None, gpu: bool = False) -> Limits:
    """The limits of one notebook of `assignment`. gpu: a part graded on a CUDA runner at full size."""
    values = settings(config, assignment)
    if gpu:
        cell, notebook, basis = values["gpu_cell_s"], values["gpu_notebook_s"], "GPU budget"
    elif timing is None:
        cell, notebook, basis = values["cell_ceiling_s"], values["notebook_ceiling_s"], "not measured: ceilings"
    else:
        cell_factor, notebook_factor = values["cell_factor"], values["notebook_factor"]
        cell = min(values["cell_ceiling_s"], max(values["cell_floor_s"], round_up(cell_factor * timing.slowest_cell_s)))
        notebook = min(
            values["notebook_ceiling_s"], max(values["notebook_floor_s"], round_up(notebook_factor * timing.total_s))
        )
        basis = (f"the solution's {timing.slowest_cell_s:g} s slowest cell x {cell_factor:g}, "
                 f"its {timing.total_s:g} s in all x {notebook_factor:g}")  # fmt: skip
    overrides = values["overrides"]
    if overrides:
        basis += " (overridden)"
    return Limits(overrides.get("cell_s", cell), overrides.get("notebook_s", notebook), basis)
