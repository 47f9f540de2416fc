"""The course's grading engine: release, intake, sandboxed student process, trusted judge, reports."""
