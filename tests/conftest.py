"""Shared fixtures: the fake platforms live in :mod:`tests.fakes.fixtures`."""

pytest_plugins = ["tests.fakes.fixtures"]
