"""The course's grading engine: release, intake, sandboxed student process, trusted judge, reports."""

import sys

# jsonschema (under nbformat) compiles rfc3987-syntax's grammar when it is first imported, a long wait
# for an "iri" format check that neither nbformat's nor nbgrader's schemas use. Every process of the
# grader goes without it: the command, and the forkserver and workers of `course grade`, which import
# autograder before nbformat.
sys.modules.setdefault("rfc3987_syntax", None)
