"""What instructors run on their course: release (student notebooks, posted solutions), seeded and
automatic mutants, validate, the demo batch, the self-check command and nbgrader as a reference."""
