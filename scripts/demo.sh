#!/usr/bin/env bash
# Set up (idempotently) and start the local demo: livekit-server, the API
# emulator, simulated calls, and the dashboard on them.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$ROOT/scripts/setup.sh"
exec "$ROOT/.venv/bin/anyreach-tui" demo "$@"
