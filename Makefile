# The tasks a newcomer needs. Each one sets up what it uses first.
.PHONY: setup test unit lint demo bench faults clean

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
	$(VENV)/python bench/stats.py

# The fault suite, longer than CI's run: FAULTS_ROUNDS rounds (default 5), outages of
# FAULTS_OUTAGE seconds (default 20), every step and case (ROLLBOT_FAULTS_LONG: all
# the Helm steps, helm killed with its worker, the load run at 100 rollbacks in 50
# namespaces), then the table for docs/reliability.md.
faults: setup
	rm -f .faults.jsonl
	for round in $$(seq $${FAULTS_ROUNDS:-5}); do \
	  ROLLBOT_FAULTS_LOG=$(CURDIR)/.faults.jsonl ROLLBOT_FAULTS_LONG=1 \
	  ROLLBOT_FAULTS_OUTAGE_SECONDS=$${FAULTS_OUTAGE:-20} HYPOTHESIS_PROFILE=long \
	  $(VENV)/pytest tests/integration/faults tests/unit/test_requests_properties.py -q || true; \
	done
	$(VENV)/python scripts/fault_table.py .faults.jsonl

clean:
	rm -rf .venv .mypy_cache .ruff_cache .pytest_cache
