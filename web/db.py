"""One database session per request, on ``g``; the request owns the transaction.

Library functions flush and never commit. The request commits once its response is
known to be a success, and rolls back otherwise, so a failed commit still becomes an
error response rather than a success that was not saved.
"""

from __future__ import annotations

from flask import Flask, Response, current_app, g
from sqlalchemy.orm import Session

from geogrid.settings import Settings


def get_session() -> Session:
    """The request's session, opened on first use."""
    if "db_session" not in g:
        g.db_session = current_app.extensions["geogrid"].session_factory()
    return g.db_session


def get_settings() -> Settings:
    """The settings the app was created with."""
    return current_app.extensions["geogrid"].settings


def init_app(app: Flask) -> None:
    """Register the commit-or-roll-back and close hooks."""
    app.after_request(_finish_transaction)
    app.teardown_appcontext(_close_session)


def _finish_transaction(response: Response) -> Response:
    session: Session | None = g.get("db_session")
    if session is not None:
        if response.status_code < 400:
            session.commit()
        else:
            session.rollback()
    return response


def _close_session(_error: BaseException | None) -> None:
    # Closing rolls back whatever is still open, e.g. after an unhandled exception.
    session: Session | None = g.pop("db_session", None)
    if session is not None:
        session.close()
