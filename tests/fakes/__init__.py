"""Fake platform servers on 127.0.0.1 (see :mod:`tests.fakes.server`)."""
