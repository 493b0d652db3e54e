"""Commands for the working-day calendar and its administrator overrides."""

from __future__ import annotations

from collections import Counter
from datetime import date, datetime

import chinese_calendar
import click

from geogrid import workdays
from geogrid.cli.base import (
    Context,
    main,
    pass_context,
    user_name,
)
from geogrid.errors import InputError

# -- calendar -----------------------------------------------------------------------------


@main.group("calendar")
def calendar_group() -> None:
    """The working-day calendar: the official holidays plus administrators' overrides."""


def _calendar_day(value: str, field: str = "date") -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise InputError(f"not a date (YYYY-MM-DD): {value!r}", field=field) from None


@calendar_group.command("set")
@click.argument("day", metavar="DATE")
@click.argument("kind", type=click.Choice(workdays.OVERRIDE_KINDS))
@click.option("--name", default="", help="the holiday it belongs to, e.g. 元旦")
@click.option("--note", default="", help="where it comes from, e.g. the State Council notice")
@click.option("--user", help="who is setting it (default: your login)")
@click.option("--commit", is_flag=True, help="write the override; without it nothing is changed")
@pass_context
def calendar_set(
    context: Context, day: str, kind: str, name: str, note: str, user: str | None, commit: bool
) -> None:
    """Declare DATE a working day or a holiday, over what the calendar package says."""
    when = _calendar_day(day)
    with context.session(commit=commit) as session:
        before = workdays.load_calendar(session).describe(when)
        workdays.set_override(session, when, kind, set_by=user_name(user), name=name, note=note)
        calendar = workdays.load_calendar(session)
    label = f" ({name})" if name else ""
    verb = "is now" if commit else "would become"
    click.echo(f"{when.isoformat()} {verb} a {kind}{label}; it was: {before}")
    if when.year not in calendar.package_years:
        click.secho(
            f"warning: the calendar package does not cover {when.year}; with this override "
            f"the year counts as covered, so enter every holiday and swapped working day "
            f"(调休) of {when.year}",
            fg="yellow",
            err=True,
        )
    if not commit:
        click.echo("dry run: nothing was written (add --commit to set it)")


@calendar_group.command("unset")
@click.argument("day", metavar="DATE")
@click.option("--commit", is_flag=True, help="remove the override; without it nothing is changed")
@pass_context
def calendar_unset(context: Context, day: str, commit: bool) -> None:
    """Remove the override of DATE, so the calendar package decides again."""
    when = _calendar_day(day)
    with context.session(commit=commit) as session:
        removed = workdays.unset_override(session, when)
        removed_kind = removed.kind if removed is not None else None
        after = workdays.load_calendar(session).describe(when)
    if removed_kind is None:
        click.echo(f"{when.isoformat()} has no override; nothing to remove")
        return
    verb = "removed" if commit else "would remove"
    click.echo(f"{verb} the override of {when.isoformat()} ({removed_kind}); it is then: {after}")
    if not commit:
        click.echo("dry run: nothing was changed (add --commit to remove it)")


@calendar_group.command("check")
@click.option("--year", type=int, help="check this year (default: this year and the next)")
@pass_context
def calendar_check(context: Context, year: int | None) -> None:
    """Say which years the calendar covers, and warn about years that it does not."""
    with context.session(commit=False) as session:
        calendar = workdays.load_calendar(session)
        per_year = Counter(override.day.year for override in workdays.list_overrides(session))
    package = sorted(calendar.package_years)
    click.echo(
        f"calendar package chinese-calendar {chinese_calendar.__version__}: "
        f"{package[0]}-{package[-1]}"
        if package
        else "calendar package chinese-calendar: no data"
    )
    listed = ", ".join(f"{y} ({per_year[y]} days)" for y in sorted(per_year)) or "none"
    click.echo(f"overrides: {listed}")
    this_year = workdays.today().year
    for checked in [year] if year is not None else [this_year, this_year + 1]:
        if checked in calendar.package_years:
            click.echo(f"{checked}: covered by the calendar package")
        elif checked in calendar.override_years:
            click.echo(f"{checked}: covered by {per_year[checked]} overrides only")
        else:
            click.secho(
                f"warning: {checked} is not covered; deadlines reaching into it fail. "
                f"Upgrade chinese-calendar or enter {checked}'s holidays and swapped working "
                f"days with `geogrid calendar set {checked}-MM-DD holiday|workday --commit`",
                fg="yellow",
            )


@calendar_group.command("due")
@click.argument("start")
@click.argument("n", type=int)
@pass_context
def calendar_due(context: Context, start: str, n: int) -> None:
    """Print the deadline N working days after START (ISO date-time, Asia/Shanghai by default)."""
    try:
        moment = datetime.fromisoformat(start)
    except ValueError:
        raise InputError(f"not a date-time (YYYY-MM-DDTHH:MM): {start!r}", field="start") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=workdays.SHANGHAI)
    with context.session(commit=False) as session:
        due_at = workdays.load_calendar(session).add_working_days(moment, n)
    click.echo(due_at.isoformat(timespec="minutes"))


if __name__ == "__main__":  # pragma: no cover
    main()
