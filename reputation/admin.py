"""Admin for reputation. Disputes: the mediation screen (reputation/dispute_admin.py)."""

from . import dispute_admin, review_admin  # noqa: F401  (review_admin: reviews, reports, trust scores, achievements)
