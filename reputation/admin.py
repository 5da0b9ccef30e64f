"""Admin for reputation. Disputes: the mediation screen (reputation/dispute_admin.py)."""

from . import dispute_admin  # noqa: F401
