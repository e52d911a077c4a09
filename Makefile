# The two commands of the README. Both bootstrap .venv first (a no-op once installed).
.PHONY: run test

run:
	@./scripts/bootstrap.sh
	@.venv/bin/coach ui

test:
	@./scripts/bootstrap.sh
	@.venv/bin/ruff check coach tests app.py scripts bench
	@.venv/bin/mypy --explicit-package-bases coach app.py bench
	@.venv/bin/python -m pytest
