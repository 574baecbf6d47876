"""Bottom utilities every layer may use: paths, logging set-up, backoff (no tui imports)."""
