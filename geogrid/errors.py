"""Domain errors: a machine code, a message a person can act on, and the field at fault.

The library knows nothing of HTTP; ``web`` maps each ``code`` to a status in one table.
"""

from __future__ import annotations

from typing import Any


class GeogridError(Exception):
    """Base of every error geogrid raises on purpose."""

    code = "geogrid_error"

    def __init__(self, message: str, *, field: str | None = None, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.details = details

    def as_dict(self) -> dict[str, Any]:
        """The error as a JSON-ready mapping (code, message, field, details)."""
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.field is not None:
            body["field"] = self.field
        if self.details:
            body["details"] = {key: _json_safe(value) for key, value in self.details.items()}
        return body


def _json_safe(value: Any) -> Any:
    # NaN and infinity are not JSON; the offending input is shown as text instead.
    if isinstance(value, float) and (value != value or value in (float("inf"), float("-inf"))):
        return str(value)
    return value


class ConfigError(GeogridError):
    code = "config_error"


class InputError(GeogridError):
    """Input that cannot be used as given (a form field, a file row, an argument)."""

    code = "invalid_input"


class CodeError(InputError):
    """A unified code that does not fit the code scheme or the hierarchy."""

    code = "invalid_code"


class CoordinateError(InputError):
    """A coordinate that is missing, not a number, out of range or of unknown type."""

    code = "invalid_coordinate"


class FileFormatError(InputError):
    """A file that cannot be read: wrong format, wrong encoding, broken structure."""

    code = "invalid_file"


class NotFound(GeogridError):
    code = "not_found"


class Conflict(GeogridError):
    """The request contradicts the stored state (a code reused, a second draft, ...)."""

    code = "conflict"


class IllegalTransition(Conflict):
    """A workflow action that the incident's state does not allow (resolving a rejected one)."""

    code = "illegal_transition"


class Unauthenticated(GeogridError):
    """No valid credentials were given (a missing, wrong or revoked token or password)."""

    code = "unauthenticated"


class Forbidden(GeogridError):
    """The actor's role or scope does not allow this (another team's grid, a resident closing)."""

    code = "forbidden"


class ValidationFailed(GeogridError):
    """A boundary set failed validation; ``details['issues']`` lists every problem."""

    code = "validation_failed"


class CalendarNotCovered(GeogridError):
    """A day in a year that neither the calendar package nor the override table covers."""

    code = "calendar_not_covered"

    def __init__(self, year: int, *, field: str | None = None) -> None:
        super().__init__(
            f"the working-day calendar does not cover {year}: the chinese-calendar package has "
            f"no data for it and no override falls in it; upgrade the package "
            f"(pip install -U chinese-calendar) once the State Council has published {year}'s "
            f"holidays, or enter them with `geogrid calendar set {year}-MM-DD holiday|workday "
            "--name ... --commit`",
            field=field,
            year=year,
        )
        self.year = year


class DatabaseNotReady(GeogridError):
    code = "database_not_ready"
