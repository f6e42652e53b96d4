"""Platform adapters: one module per platform behind :class:`~crosspost.adapters.base.Adapter`."""
