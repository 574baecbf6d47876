"""anyreach-tui: monitor live Anyreach AI-agent calls from a terminal."""
