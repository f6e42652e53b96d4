"""Alembic migrations; run by ``crosspost db upgrade`` (:func:`crosspost.store.migrate.upgrade`)."""
