#!/usr/bin/env bash
# Set up (idempotently) and run every check: ruff (lint and format), the layer
# contract, mypy (strict in the domain layers), then pytest with any arguments
# given (e.g. -m "not slow" for the fast loop).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$ROOT/scripts/setup.sh"
cd "$ROOT"
.venv/bin/ruff check tui tests scripts
.venv/bin/ruff format --check tui tests scripts
.venv/bin/lint-imports
.venv/bin/mypy
exec .venv/bin/python -m pytest "$@"
