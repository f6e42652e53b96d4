"""Shared fixtures: the fake platforms live in :mod:`tests.fakes.fixtures`, the
throw-away PostgreSQL in :mod:`tests.pgfixture`, the SMTP server in :mod:`tests.smtpfixture`,
SQL stores of both backends in :mod:`tests.opsfixture`."""

pytest_plugins = [
    "tests.fakes.fixtures",
    "tests.pgfixture",
    "tests.smtpfixture",
    "tests.opsfixture",
]
