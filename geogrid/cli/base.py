"""The ``geogrid`` command line: the root group, its context, and shared helpers.

Each command parses its arguments, opens one session, calls one library function and
prints the answer. Commands that change data say what they would do and change nothing
unless given ``--commit``; the command owns the transaction.
"""

from __future__ import annotations

import getpass
import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import click
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from geogrid import db
from geogrid.errors import GeogridError, InputError
from geogrid.settings import Settings, unknown_variables
from geogrid.validate import ValidationRules
from geogrid.workdays import SHANGHAI

CRS_HELP = "coordinate type: wgs84, cgcs2000, gcj02, bd09 or EPSG:n"


class Context:
    """What every command needs: the settings, and a way to open the database."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._engine = None
        self._factory = None

    def close(self) -> None:
        """Close the database connections this command opened."""
        if self._engine is not None:
            self._engine.dispose()

    @contextmanager
    def session(self, *, commit: bool = True, check: bool = True) -> Iterator[Session]:
        """A session whose transaction commits at the end only when ``commit`` is true."""
        if self._factory is None:
            self._engine = db.make_engine(self.settings)
            self._factory = db.make_sessionmaker(self._engine)
        session = self._factory()
        try:
            if check:
                db.check_schema(session, self.settings.scheme)
            yield session
            if commit:
                session.commit()
            else:
                session.rollback()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    @property
    def rules(self) -> ValidationRules:
        return ValidationRules.from_settings(self.settings)


pass_context = click.make_pass_decorator(Context)


class GeogridGroup(click.Group):
    """Turns domain errors into a one-line message and exit status 1, never a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except OperationalError as exc:
            click.secho(f"error: {db.connection_advice(exc)}", fg="red", err=True)
            ctx.exit(1)
        except OSError as exc:
            click.secho(
                f"error [{exc.filename or 'path'}]: {exc.strerror or exc}", fg="red", err=True
            )
            ctx.exit(1)
        except GeogridError as exc:
            where = f" [{exc.field}]" if exc.field else ""
            click.secho(f"error{where}: {exc.message}", fg="red", err=True)
            for issue in exc.details.get("issues", [])[:50]:
                click.echo(f"  - {issue_line(issue)}", err=True)
            ctx.exit(1)


@click.group(cls=GeogridGroup)
@click.version_option(package_name="geogrid")
@click.pass_context
def main(ctx: click.Context) -> None:
    """geogrid: grids with unified codes, boundary generations and geocoding into grids."""
    try:
        settings = Settings.from_env()
    except GeogridError as exc:
        raise click.UsageError(f"{exc.field}: {exc.message}") from None
    for name in unknown_variables():
        click.secho(
            f"warning: {name} is not a geogrid setting (see the README); ignored",
            fg="yellow",
            err=True,
        )
    ctx.obj = Context(settings)
    ctx.call_on_close(ctx.obj.close)


def user_name(value: str | None) -> str:
    return value or getpass.getuser()


def echo_json(data: Any) -> None:
    """Print data as indented JSON, Chinese as it is (not \\u escapes)."""
    click.echo(json.dumps(data, ensure_ascii=False, indent=2))


def parse_moment(value: str | None, field: str) -> datetime | None:
    """A date or date-time from the command line (None stays None); Shanghai unless it says."""
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise InputError(
            f"not a date or date-time (YYYY-MM-DD[THH:MM[+08:00]]): {value!r}", field=field
        ) from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=SHANGHAI)


def issue_line(issue: dict[str, Any]) -> str:
    where = ""
    if issue.get("location"):
        lon, lat = issue["location"]
        where = f" at {lon:.6f},{lat:.6f}"
    return f"{issue.get('severity', 'error')}: {issue.get('check')}: {issue.get('message')}{where}"


def print_report(report: Any, *, limit: int = 50) -> None:
    for line in report.summary_lines():
        click.echo(line)
    for issue in report.issues[:limit]:
        click.echo(f"  - {issue_line(issue.as_dict())}")
    if len(report.issues) > limit:
        click.echo(f"  ... and {len(report.issues) - limit} more (see `geogrid generations show`)")
