"""One error family for services, mapped in one place to each interface.

A service raises ``ApplicationError`` (or a subclass); pages turn it into a
form error or a message, the API into a JSON body with a status code, and
socket consumers into an error frame. Nothing is written when it is raised:
services raise before they write, or inside their transaction.
"""

from __future__ import annotations

from typing import Any


class ApplicationError(Exception):
    status_code = 400
    default_code = "invalid"

    def __init__(
        self,
        message: str,
        code: str | None = None,
        extra: dict[str, Any] | None = None,
        *,
        fields: dict[str, list[str]] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code or self.default_code
        self.extra = extra or {}
        self.fields = fields or {}


class PermissionDenied(ApplicationError):
    status_code = 403
    default_code = "permission_denied"


class NotFound(ApplicationError):
    status_code = 404
    default_code = "not_found"


class Conflict(ApplicationError):
    """The request was fine but the object moved on (already booked, already paid)."""

    status_code = 409
    default_code = "conflict"
