"""The nbgrader notebook format as the grader reads it: cell roles and markers (cells.py) and plain
notebook nodes (nbnodes.py)."""
