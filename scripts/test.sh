#!/usr/bin/env bash
# Set up (idempotently) and run every check: ruff, the layer contract, pytest.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$ROOT/scripts/setup.sh"
cd "$ROOT"
.venv/bin/ruff check tui tests scripts
.venv/bin/lint-imports
exec .venv/bin/python -m pytest "$@"
