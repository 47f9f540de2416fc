"""Course configuration, read by nbgrader and by the `course` command."""

c = get_config()  # noqa: F821  (nbgrader injects get_config)

c.CourseDirectory.course_id = "dl-course"
c.CourseDirectory.source_directory = "source"
c.CourseDirectory.release_directory = "release"
c.CourseDirectory.submitted_directory = "submitted"
c.CourseDirectory.autograded_directory = "autograded"
c.CourseDirectory.feedback_directory = "feedback"
c.CourseDirectory.db_url = "sqlite:///gradebook.db"

# Student notebooks must not wait forever on one cell (nbgrader autograde and `course grade` both read this).
c.ExecutePreprocessor.timeout = 120

# `course grade` gives each assignment limits derived from its solution's run time, measured by
# `course release` (autograder/grading/time_limits.py): a cell may take cell_factor x the solution's slowest
# cell, a notebook notebook_factor x the solution's total, above the floors and below the ceilings
# (ExecutePreprocessor.timeout for a cell). GPU parts, run at full size on a CUDA runner, have a fixed budget.
c.TimeLimits.cell_factor = 10
c.TimeLimits.notebook_factor = 5
c.TimeLimits.cell_floor_s = 10
c.TimeLimits.notebook_floor_s = 15
c.TimeLimits.notebook_ceiling_s = 900
c.TimeLimits.gpu_cell_s = 600
c.TimeLimits.gpu_notebook_s = 1800
c.TimeLimits.per_assignment = {}  # e.g. {"a5_transformer": {"cell_s": 60, "notebook_s": 120}}

c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
c.ClearSolutions.text_stub = "YOUR ANSWER HERE"

# Files in source/<assignment>/ that never reach students: mutants.toml holds seeded bugs written as
# fragments of the solution; translations/ holds translated cells, solutions and all.
c.CourseDirectory.ignore = [".ipynb_checkpoints", "*.pyc", "__pycache__", "feedback", "mutants.toml", "translations"]

# The language students get: notebooks, self-check, grading messages, feedback (en or zh; English is the
# source of truth, translations live in source/<assignment>/translations/). `--lang` overrides it per command.
c.Course.language = "en"
