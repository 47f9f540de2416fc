"""The nbgrader notebook format as the grader reads it: cell roles and markers (cells.py), plain
notebook nodes (nbnodes.py) and reading a source notebook with its checks (source.py)."""
