# The two quick-start commands: `make chat` and `make test`. Both set everything up first.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: chat test lint bench bench-cli bench-console bench-telegram bench-slack bench-roster setup clean

$(BIN)/profilebot: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $@

## Pango for PDF cards (WeasyPrint) and pdftotext for their tests, from apt when it can
## (root or sudo without a password); otherwise it says what to install and carries on.
setup: $(BIN)/profilebot
	@bash .ci/system-packages.sh

## Talk to profilebot in the terminal (the "This is me" interview, stored in ./profilebot.db).
chat: setup
	$(BIN)/profilebot chat --as $${AS:-me}

## The whole test suite (PostgreSQL tests run when PROFILEBOT_TEST_POSTGRES_URL is set).
## lint-imports checks the architecture's contracts (pyproject.toml [tool.importlinter]);
## tests/test_architecture.py runs it too, so pytest alone cannot skip them.
test: setup
	$(BIN)/ruff check bot dialogues storage tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/pytest -q

bench: setup
	$(BIN)/python bench/turns.py

## How quickly each command answers, each run as a process of its own (see docs/benchmarks.md).
bench-cli: setup
	$(BIN)/python bench/cli.py

## Telegram end to end: profilebot vs a hand-written PTB bot, both against the fake Bot API.
bench-telegram: setup
	$(BIN)/python bench/telegram.py

## Slack end to end: profilebot vs a minimal Bolt app (say "ok"), both against the fake Web API.
bench-slack: setup
	$(BIN)/python bench/slack.py

## The terminal and long conversations: `profilebot chat` with answers piped in vs the service
## path, and a turn's cost early and late in 50-, 400- and 800-step flows.
bench-console: setup
	$(BIN)/python bench/console.py

## `people import` of a 10,000-row school (add --postgres URL to measure PostgreSQL too).
bench-roster: setup
	$(BIN)/python bench/roster.py

## One student's one-page card as PDF: in process and as a command (see docs/benchmarks.md).
bench-card: setup
	$(BIN)/python bench/card.py

clean:
	rm -rf $(VENV) build *.egg-info
