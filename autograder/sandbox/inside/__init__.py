"""The files that run inside the sandbox: copied there by file name (confine.RUNNER_FILES) and imported
as top-level modules, next to each other. They use the standard library and numpy (torch and IPython
only when student code needs them) and never import `autograder` (tests/test_layout.py checks it). The
judge imports wire.py and kernel_objects.py from here too."""
