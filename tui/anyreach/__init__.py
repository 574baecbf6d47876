"""anyreach layer."""
