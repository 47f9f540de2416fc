"""What grading produces: one CellResult per graded cell, gathered per submission."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from autograder.i18n import N_

if TYPE_CHECKING:
    from nbformat import NotebookNode

WAITING_FOR_GPU = N_("waiting for GPU runner")  # translated where it is shown


@dataclass
class CellResult:
    notebook: str
    grade_id: str
    max_points: float
    score: float | None  # None: not scored yet (a manually graded cell, or a GPU test while `pending`)
    message: str = ""  # why points were lost ("" when none were)
    output: str = ""  # what the public part of the test printed
    has_hidden: bool = False  # the test cell has hidden tests
    hidden_failed: bool = False  # the failure is inside a hidden block
    gpu: bool = False
    pending: bool = False  # a GPU test no CUDA runner has graded yet: score None, message WAITING_FOR_GPU

    @property
    def manual(self) -> bool:
        """Waiting for a person (not for a GPU runner)."""
        return self.score is None and not self.pending

    @property
    def public_message(self) -> str:
        """What a student may read before hidden tests are published."""
        if self.hidden_failed:
            return "hidden tests failed (details are published with the grades)"
        return self.message


@dataclass
class SubmissionResult:
    student: str
    assignment: str
    cells: list[CellResult] = field(default_factory=list)
    findings: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # notebook-level reasons (unreadable, missing, crashed)
    isolation: str = ""
    seconds: float = 0.0
    autograded: dict[str, NotebookNode] = field(default_factory=dict)

    @property
    def score(self) -> float:
        return sum(cell.score for cell in self.cells if cell.score is not None)

    @property
    def auto_max(self) -> float:
        return sum(cell.max_points for cell in self.cells if not cell.manual)

    @property
    def waiting_for_gpu(self) -> list[CellResult]:
        return [cell for cell in self.cells if cell.pending]

    @property
    def max_score(self) -> float:
        return sum(cell.max_points for cell in self.cells)

    @property
    def has_problems(self) -> bool:
        return bool(self.problems)

    def to_dict(self) -> dict:
        """Plain data for the job table and Celery (the autograded notebooks travel separately)."""
        return dataclasses.asdict(dataclasses.replace(self, autograded={}))

    @classmethod
    def from_dict(cls, data: dict) -> SubmissionResult:
        return cls(**{**data, "cells": [CellResult(**cell) for cell in data["cells"]]})
