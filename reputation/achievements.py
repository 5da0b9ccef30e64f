"""Achievement definitions: code, not data. ``UserAchievement`` rows record who
earned which code and when; ``reputation.services.achievements_award`` checks
these rules and awards each code once."""

from __future__ import annotations

from dataclasses import dataclass

from django.utils.translation import gettext_lazy as _

FIRST_JOB = "first_job"
FIVE_STAR_10 = "five_star_10"
FAST_RESPONDER = "fast_responder"
NO_DISPUTE_50 = "no_dispute_50"
VERIFIED_PRO = "verified_pro"

FIVE_STAR_JOBS_NEEDED = 10
FAST_RESPONDER_CONVERSATIONS = 20
FAST_RESPONDER_SECONDS = 3600
UNDISPUTED_JOBS_NEEDED = 50


@dataclass(frozen=True)
class Achievement:
    code: str
    title: str
    description: str
    icon: str  # a short text mark; pages never rely on it alone


ACHIEVEMENTS: dict[str, Achievement] = {
    a.code: a
    for a in [
        Achievement(FIRST_JOB, _("First job done"), _("Completed a first job on BittieTasks."), "1"),
        Achievement(
            FIVE_STAR_10, _("Ten five-star jobs"), _("Ten jobs rated five stars by customers."), "★"
        ),
        Achievement(
            FAST_RESPONDER,
            _("Fast responder"),
            _("Median reply under an hour over at least 20 conversations."),
            "⏱",
        ),
        Achievement(NO_DISPUTE_50, _("Fifty smooth jobs"), _("Fifty completed jobs without a dispute."), "50"),
        Achievement(VERIFIED_PRO, _("Verified pro"), _("Email, phone and ID all verified."), "✓"),
    ]
}
