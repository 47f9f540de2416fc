"""Notebook cells and outputs for autograded notebooks, built as nbformat 4 nodes directly.

nbformat.v4's new_code_cell / new_output check every node against the schema as it is made, a cost
paid for every output of every submission. These nodes have fixed shapes, and tests/test_grade.py
validates graded notebooks.
"""

from __future__ import annotations

from nbformat import NotebookNode, from_dict
from nbformat.v4.nbbase import random_cell_id


def code_cell(source: str, metadata: dict) -> NotebookNode:
    return from_dict(
        {"id": random_cell_id(), "cell_type": "code", "metadata": metadata, "execution_count": None,
         "source": source, "outputs": []}
    )  # fmt: skip


def markdown_cell(source: str, metadata: dict) -> NotebookNode:
    return from_dict({"id": random_cell_id(), "cell_type": "markdown", "metadata": metadata, "source": source})


def stream(name: str, text: str) -> NotebookNode:
    """name: "stdout" or "stderr"."""
    return from_dict({"output_type": "stream", "name": name, "text": text})


def execute_result(text: str) -> NotebookNode:
    return from_dict({"output_type": "execute_result", "data": {"text/plain": text}, "metadata": {},
                      "execution_count": None})  # fmt: skip


def error(ename: str, evalue: str, traceback: list[str]) -> NotebookNode:
    return from_dict({"output_type": "error", "ename": ename, "evalue": evalue, "traceback": traceback})
