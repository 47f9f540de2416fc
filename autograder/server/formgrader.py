"""What the instructor's formgrader may not do on the course server: run students' code."""

from nbconvert.preprocessors import Preprocessor
from traitlets import Bool


class RefuseAutograde(Preprocessor):
    """In place of nbgrader's autograde steps: formgrader's Autograde button would run a student's notebook
    in the instructor's own server, as the instructor, next to the gradebook. Grading happens in the
    grader's sandbox instead: `sudo course collect <a> && sudo course grade <a>`."""

    enabled = Bool(True)  # nbconvert's preprocessors are off unless enabled: this one must always run

    def preprocess(self, nb, resources):
        raise RuntimeError(
            "Autograding from formgrader is turned off on this server: students' code would run as you. "
            "Run `sudo course collect <assignment>` and `sudo course grade <assignment>` instead."
        )
