"""The one-machine course server: JupyterHub with a Linux account per student, each user's JupyterLab in
a bubblewrap sandbox that sees only its home, the Python installation and nbgrader's exchange, and the
instructor's verbs on the exchange (publish, collect, return feedback)."""
