"""listen layer."""
