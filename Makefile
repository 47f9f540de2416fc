# The two commands of this repository (see README.md). Each installs what it needs first.
.PHONY: main test

main:
	@scripts/setup.sh
	.venv/bin/course release --all
	.venv/bin/course demo a1_backprop

test:
	@scripts/setup.sh
	.venv/bin/ruff check .
	.venv/bin/python -m pytest -n 2 --durations=15
