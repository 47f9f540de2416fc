"""source/<a>/mutants.toml: seeded bugs, common mistakes and cheats, seed variants, accepted auto-mutants.

    [[mutant]]                      # one edit ...
    name = "affine_backward: missing transpose in dx"
    kind = "bug"                    # "bug" (default), "mistake" (a common student mistake) or "cheat"
    cell = "affine"                 # grade_id of a solution cell
    replace = "dx = dout @ w.T"     # occurs exactly once in that cell
    with = "dx = dout @ w"

    [[mutant]]                      # ... or several, in one or several solution cells
    name = "..."
    edits = [{ cell = "a", replace = "...", with = "..." }, { cell = "b", replace = "...", with = "..." }]

    [[seed]]                        # `course validate --seeds N`: the solution with {seed} = 0..N-1
    cell = "train"
    replace = "seed_everything(0)"
    with = "seed_everything({seed})"

    [[accepted]]                    # an automatic mutant that cannot change behaviour, and why
    id = "relu: line 14: `x > 0` -> `x >= 0`"
    reason = "..."

    [[accepted]]                    # every automatic mutant of a free-form cell (its test is a metric),
    cell = "train"                  # or only of its lines 12 to 30: lines = [12, 30]
    reason = "any hyperparameters that reach the accuracy threshold are correct"

Every entry must still match the source: an edit whose text is gone is an error naming the file and cell.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import jsonschema
import nbformat

from autograder.authoring.release import solution_notebook
from autograder.course import Course, CourseError
from autograder.notebook import cells

MUTANTS_FILE = "mutants.toml"
KINDS = ("bug", "mistake", "cheat")

_EDIT = {
    "type": "object",
    "properties": {"cell": {"type": "string"}, "replace": {"type": "string"}, "with": {"type": "string"}},
    "required": ["cell", "replace", "with"],
    "additionalProperties": False,
}
SCHEMA = {
    "type": "object",
    "properties": {
        "mutant": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "name": {"type": "string"},
                    "kind": {"enum": list(KINDS)},
                    "cell": {"type": "string"},
                    "replace": {"type": "string"},
                    "with": {"type": "string"},
                    "edits": {"type": "array", "items": _EDIT, "minItems": 1},
                },
                "required": ["name"],
                "oneOf": [{"required": ["cell", "replace", "with"]}, {"required": ["edits"]}],
                "additionalProperties": False,
            },
        },
        "seed": {"type": "array", "items": _EDIT},
        "accepted": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "id": {"type": "string"},
                    "cell": {"type": "string"},
                    "lines": {  # [first, last], both included
                        "type": "array", "items": {"type": "integer", "minimum": 1}, "minItems": 2, "maxItems": 2,
                    },
                    "reason": {"type": "string", "minLength": 1},
                },
                "required": ["reason"],
                "dependencies": {"lines": ["cell"]},
                "oneOf": [{"required": ["id"]}, {"required": ["cell"]}],
                "additionalProperties": False,
            },
        },
    },
    "additionalProperties": False,
}


@dataclass(frozen=True)
class Edit:
    cell: str
    replace: str
    with_: str


@dataclass(frozen=True)
class Mutant:
    name: str
    edits: tuple[Edit, ...]
    kind: str = "bug"


@dataclass
class MutantsFile:
    path: Path
    mutants: list[Mutant] = field(default_factory=list)
    seeds: list[Edit] = field(default_factory=list)
    accepted: dict[str, str] = field(default_factory=dict)  # automatic mutant id -> why it is harmless
    accepted_cells: dict[str, tuple[int, int]] = field(default_factory=dict)  # cell -> accepted lines (first, last)


def _edit(entry: dict) -> Edit:
    return Edit(entry["cell"], entry["replace"], entry["with"])


def _describe(error: jsonschema.ValidationError) -> str:
    parts = list(error.absolute_path)  # e.g. ["mutant", 0, "edits", 1, "with"] -> "mutant 1, edits 2, with"
    where = ", ".join(
        f"{part} {parts[i + 1] + 1}" if i + 1 < len(parts) and isinstance(parts[i + 1], int) else str(part)
        for i, part in enumerate(parts)
        if not isinstance(part, int)
    )
    if error.validator == "required":
        return f"{where or 'top level'}: {error.message}"
    if error.validator == "oneOf" and "accepted" in where:
        return f"{where}: give either id (one automatic mutant) or cell (all of that cell's)"
    if error.validator == "oneOf":
        return f"{where}: give either cell, replace and with, or edits (a list of them)"
    return f"{where or 'top level'}: {error.message}"


def load(course: Course, assignment: str) -> MutantsFile:
    path = course.source_dir / assignment / MUTANTS_FILE
    found = MutantsFile(path)
    if not path.is_file():
        return found
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as error:
        raise CourseError(f"{path}: not valid TOML: {error}") from None
    problem = jsonschema.exceptions.best_match(jsonschema.Draft7Validator(SCHEMA).iter_errors(data))
    if problem is not None:
        raise CourseError(f"{path}: {_describe(problem)}")
    for entry in data.get("mutant", []):
        edits = tuple(_edit(e) for e in entry["edits"]) if "edits" in entry else (_edit(entry),)
        found.mutants.append(Mutant(entry["name"], edits, entry.get("kind", "bug")))
    found.seeds = [_edit(entry) for entry in data.get("seed", [])]
    found.accepted = {entry["id"]: entry["reason"] for entry in data.get("accepted", []) if "id" in entry}
    found.accepted_cells = {
        entry["cell"]: tuple(entry.get("lines", (1, 10**9))) for entry in data.get("accepted", []) if "cell" in entry
    }
    return found


def apply_edits(
    notebooks: dict[str, nbformat.NotebookNode], edits: tuple[Edit, ...] | list[Edit], what: str, path: Path
) -> dict[str, nbformat.NotebookNode]:
    """The solution notebooks (markers removed) with the edits applied to the source's solution cells.

    An edit whose text does not occur exactly once in its cell is an authoring error, named with file and cell."""
    changed = {name: nbformat.from_dict(notebook) for name, notebook in notebooks.items()}
    for edit in edits:
        targets = [
            cell
            for notebook in changed.values()
            for cell in notebook.cells
            if cells.grade_id(cell) == edit.cell and cells.role(cell) == "solution"
        ]
        if not targets:
            raise CourseError(f"{path}: {what}: no solution cell {edit.cell!r} in the source notebooks")
        count = targets[0].source.count(edit.replace)
        if count != 1:
            raise CourseError(
                f"{path}: {what}: {edit.replace!r} occurs {count} times in cell {edit.cell!r} (must be exactly once)"
            )
        targets[0].source = targets[0].source.replace(edit.replace, edit.with_)
    return {name: solution_notebook(notebook) for name, notebook in changed.items()}


def seeded(edits: list[Edit], seed: int) -> list[Edit]:
    return [Edit(edit.cell, edit.replace, edit.with_.replace("{seed}", str(seed))) for edit in edits]
