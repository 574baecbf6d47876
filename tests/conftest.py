"""Shared pytest configuration: fixtures live in tests/fixtures/, one module per area."""

pytest_plugins = [
    "tests.fixtures.livekit",
    "tests.fixtures.listen",
    "tests.fixtures.audio",
    "tests.fixtures.calls",
    "tests.fixtures.anyreach",
    "tests.fixtures.config",
    "tests.fixtures.live",
]
