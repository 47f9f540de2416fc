"""When a submission must be graded again: a digest of what its grading depends on.

A part is graded again when its content hash changes: the submission's files, the assignment's source
(cells, nbgrader metadata, the release's data files) or GRADER_VERSION (raise it when a grader change
alters scores).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from autograder.grading.grade import AssignmentSource

GRADER_VERSION = "1"


def source_digest(source: AssignmentSource) -> str:
    digest = hashlib.sha256()
    for name, notebook in sorted(source.notebooks.items()):
        digest.update(name.encode() + b"\0")
        for cell in notebook.cells:
            digest.update(cell.cell_type.encode() + cell.source.encode() + b"\0")
            digest.update(repr(sorted(cell.metadata.get("nbgrader", {}).items())).encode())
    if source.data_dir is not None:
        for path in sorted(source.data_dir.rglob("*")):
            if path.is_file() and path.suffix != ".ipynb":
                digest.update(str(path.relative_to(source.data_dir)).encode() + path.read_bytes())
    return digest.hexdigest()


def content_hash(folder: Path, source_digest: str) -> str:
    digest = hashlib.sha256(f"{GRADER_VERSION}\0{source_digest}\0".encode())
    if folder.is_dir() and not folder.is_symlink():
        for path in sorted(folder.rglob("*")):
            if ".ipynb_checkpoints" in path.parts:
                continue
            digest.update(str(path.relative_to(folder)).encode() + b"\0")
            if path.is_symlink():
                digest.update(b"symlink\0" + str(path.readlink()).encode())
            elif path.is_file():
                digest.update(hashlib.sha256(path.read_bytes()).digest())
    else:
        digest.update(b"not a folder" if folder.exists() else b"missing")
    return digest.hexdigest()
