"""Shared fixtures: the fake platforms live in :mod:`tests.fakes.fixtures`, the
throw-away PostgreSQL in :mod:`tests.pgfixture`."""

pytest_plugins = ["tests.fakes.fixtures", "tests.pgfixture"]
