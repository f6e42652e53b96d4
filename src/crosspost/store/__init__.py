"""The durable queue: posts, deliveries, attempts (see :mod:`crosspost.store.base`)."""
