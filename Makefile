# Two commands: `make run` starts the product, `make test` runs every check.
# Everything else here is what those two need; nothing has to be installed by hand.

PYTHON ?= python3.10
UV_VERSION := 0.13.9
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.synced-$(shell cat uv.lock pyproject.toml 2>/dev/null | sha256sum | cut -c1-16)
RASA := cd rasa_project && RASA_TELEMETRY_ENABLED=false TF_CPP_MIN_LOG_LEVEL=2 ../$(BIN)/rasa
export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := $(VENV)
# The e2e tests run on a set clock, never the wall clock (tests/e2e/conftest.py): the whole
# suite at DAY_CLOCK, then the e2e tests marked `clock` again at NIGHT_CLOCK, in a far zone.
DAY_CLOCK := 15:00 America/New_York
NIGHT_CLOCK := 03:00 America/New_York
FAR_ZONE := Pacific/Kiritimati

.PHONY: run test system-packages browser-deps screenshots lint typecheck unit e2e-night rasa-validate rasa-test-stories eval nlu-floor bench chaos chaos-small model install clean

run: $(STAMP)
	$(BIN)/debtbot run

test: system-packages lint typecheck rasa-validate unit e2e-night rasa-test-stories nlu-floor

# Chromium, dovecot-imapd, openssl: installed when root or sudo without a password can, else
# one line saying which command to run (nothing is skipped quietly instead).
system-packages:
	@scripts/system-packages

install: $(STAMP)

# axe-core (the console's accessibility check in the browser test), from tests/browser's lock.
BROWSER_DEPS := tests/browser/node_modules/.installed-$(shell cat tests/browser/package-lock.json 2>/dev/null | sha256sum | cut -c1-16)
browser-deps: $(BROWSER_DEPS)

$(BROWSER_DEPS): tests/browser/package.json tests/browser/package-lock.json
	cd tests/browser && npm ci --no-audit --no-fund --loglevel=error
	@rm -f tests/browser/node_modules/.installed-*
	@touch $@

# The virtual environment, from the lock file only (uv sync --frozen never re-resolves).
$(STAMP): uv.lock pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "$(PYTHON) not found: Rasa 3.6 needs Python 3.10"; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m uv --version 2>/dev/null | grep -q "$(UV_VERSION)" || $(BIN)/python -m pip install -q "uv==$(UV_VERSION)"
	$(BIN)/python -m uv sync --frozen --python $(BIN)/python
	@rm -f $(VENV)/.synced-*
	@touch $@

# Plus the import contracts (.importlinter: bot's layers, no cycles, pure rules; docs/architecture.md)
# and known vulnerabilities in the locked dependencies (pip-audit on `uv export --frozen`;
# accepted ones, with their reasons, in scripts/audit-ignore.txt). Says NOT RUN, without failing,
# where PyPI's vulnerability data is unreachable; DEBTBOT_AUDIT_REQUIRED=1 makes that fail.
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-logo
	$(BIN)/python scripts/audit_dependencies.py

typecheck: $(STAMP)
	$(BIN)/mypy

model: $(STAMP)
	$(BIN)/debtbot train

# `rasa data validate --fail-on-warnings` plus our own checks of the dialogue's data
# (bot/ops/validate.py: both languages, nothing about the debt before verification, ...).
rasa-validate: $(STAMP)
	$(BIN)/debtbot validate

unit: $(STAMP) model browser-deps
	DEBTBOT_TEST_CLOCK="$(DAY_CLOCK)" $(BIN)/pytest

# The second clock setting: night in New York (openers deferred, then released at 08:00), with
# the processes in a zone fourteen hours ahead of UTC; plus the unit tests of the time rules.
e2e-night: $(STAMP) model browser-deps
	DEBTBOT_TEST_CLOCK="$(NIGHT_CLOCK)" TZ=$(FAR_ZONE) $(BIN)/pytest -q -p no:cacheprovider \
		-m "clock or not e2e" tests/e2e tests/bot/test_clock.py tests/bot/compliance/test_rules.py \
		tests/bot/outreach/test_planner.py tests/bot/outreach/test_reminders.py

rasa-test-stories: $(STAMP)
	model=$$($(BIN)/debtbot train --print-path) && $(RASA) test core --stories tests --model "$$model" \
		--fail-on-prediction-errors --out ../var/rasa-results

# The README's console screenshots and docs/ops.md's, made by the browser tests.
screenshots: $(STAMP) model browser-deps
	DEBTBOT_SCREENSHOTS_DIR=docs/screenshots DEBTBOT_TEST_CLOCK="$(DAY_CLOCK)" $(BIN)/pytest -q -p no:cacheprovider \
		tests/e2e/test_console_browser.py tests/e2e/test_ops_browser.py -k "takes_over or tuning_cycle"

# Held-out NLU evaluation: per-intent and macro F1 per language; fails below the bars.
eval: $(STAMP)
	model=$$($(BIN)/debtbot train --print-path) && \
		RASA_TELEMETRY_ENABLED=false TF_CPP_MIN_LOG_LEVEL=2 $(BIN)/python -m bot.ops.evaluate --model "$$model" --tests rasa_project/tests

# In `make test`: the same evaluation, failing only on a clear regression (see README).
nlu-floor: $(STAMP)
	model=$$($(BIN)/debtbot train --print-path) && \
		RASA_TELEMETRY_ENABLED=false TF_CPP_MIN_LOG_LEVEL=2 $(BIN)/python -m bot.ops.evaluate --model "$$model" \
		--tests rasa_project/tests --fail-below 0.85

# Benchmarks (not tests): ratios against a baseline measured in the same run. bench.e2e (about
# 10 minutes) runs the product, Rasa alone and Rasa's Twilio connector on the same model and
# conversations, writes bench/results/latest.json; `python -m bench.report` puts it in the README.
bench: $(STAMP) model
	$(BIN)/python -m bench.webhooks
	$(BIN)/python -m bench.webhook_http
	$(BIN)/python -m bench.outreach
	$(BIN)/python -m bench.job_latency
	$(BIN)/python -m bench.rasa_validation
	$(BIN)/python -m bench.e2e
	$(BIN)/python -m bench.report

# The soak with faults (not a test; loopback only): 1,000 signed SMS over 100 conversations at
# 3/s while every kind of process and Redis is killed; fails on anything lost, duplicated or out
# of order. chaos-small is what CI runs so it cannot rot.
chaos: $(STAMP) model
	$(BIN)/python -m bench.chaos --messages 1000 --conversations 100 --rate 3 --kills 10

chaos-small: $(STAMP) model
	$(BIN)/python -m bench.chaos --messages 200 --conversations 20 --rate 3 --kills 5

clean:
	rm -rf $(VENV) var models .mypy_cache .ruff_cache .pytest_cache
