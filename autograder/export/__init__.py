"""The course for other graders: a GitHub Actions workflow that grades each push of a student's repository
(ci_template.py), and an otter-grader / Gradescope autograder zip (otter_export.py)."""
