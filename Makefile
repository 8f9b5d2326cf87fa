# The tasks a newcomer needs. Each one sets up what it uses first.
.PHONY: setup test unit lint demo bench clean

VENV := .venv/bin

setup:
	@scripts/setup.sh

lint: setup
	$(VENV)/ruff check .
	$(VENV)/ruff format --check .
	$(VENV)/mypy
	$(VENV)/lint-imports

unit: setup
	$(VENV)/pytest tests/unit -q

test: setup lint
	$(VENV)/pytest -q -ra

demo: setup
	$(VENV)/python -m testbed.demo

bench: setup
	$(VENV)/python bench/rollback_vs_kubectl.py
	$(VENV)/python bench/assessment.py

clean:
	rm -rf .venv .mypy_cache .ruff_cache .pytest_cache
