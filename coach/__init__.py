"""A local-first rehearsal coach for product interviews at AI labs."""

__version__ = "0.1.0"
