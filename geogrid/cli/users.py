"""Commands for users and API tokens: ``geogrid users add|list|disable|enable|set-scope|...``."""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta

import click

from geogrid import users
from geogrid.cli.base import Context, echo_json, main, pass_context, user_name
from geogrid.errors import InputError
from geogrid.models import USER_ROLES

COMMIT_HELP = "write the change; without it nothing is changed"


@main.group("users")
def users_group() -> None:
    """Users who log in or call the API: roles, scopes of codes, passwords and tokens."""


def _codes(values: tuple[str, ...] | str) -> list[str]:
    # Codes may come comma-separated, space-separated or both.
    parts = [values] if isinstance(values, str) else values
    return [code.strip() for part in parts for code in part.split(",") if code.strip()]


def _password(password_stdin: bool) -> tuple[str, bool]:
    """The password read from stdin, or a generated one; and whether it was generated."""
    if not password_stdin:
        return users.generate_password(), True
    line = sys.stdin.readline().rstrip("\r\n")
    if not line:
        raise InputError("no password on standard input", field="password")
    return line, False


def _dry_run(what: str) -> None:
    click.echo(f"dry run: nothing was written (add --commit to {what})")


def _describe(user) -> str:
    scope = ",".join(user.scope) or "everywhere"
    department = f", {user.department}" if user.department else ""
    return f"{user.name} ({user.role}{department}; scope {scope})"


@users_group.command("add")
@click.argument("name")
@click.option("--role", type=click.Choice(USER_ROLES), required=True)
@click.option("--scope", default="", help="comma-separated codes (not for administrator)")
@click.option("--display-name", default="", help="how the person is shown, e.g. 王丽")
@click.option("--department", default="", help="for department staff, e.g. 城市管理局")
@click.option(
    "--password-stdin", is_flag=True, help="read the password from standard input (else generated)"
)
@click.option("--no-password", is_flag=True, help="a token-only user (an API client)")
@click.option("--user", help="who is adding it (default: your login)")
@click.option("--commit", is_flag=True, help=COMMIT_HELP)
@pass_context
def users_add(
    context: Context,
    name: str,
    role: str,
    scope: str,
    display_name: str,
    department: str,
    password_stdin: bool,
    no_password: bool,
    user: str | None,
    commit: bool,
) -> None:
    """Add user NAME with a role and a scope; prints a generated password unless given one."""
    if no_password and password_stdin:
        raise click.UsageError("give --password-stdin or --no-password, not both")
    password, generated = (None, False) if no_password else _password(password_stdin)
    with context.session(commit=commit) as session:
        added = users.add_user(
            session,
            name,
            role,
            scope=_codes(scope),
            display_name=display_name,
            department=department,
            password=password,
            created_by=user_name(user),
        )
        described = _describe(added)
    if not commit:
        click.echo(f"would add user {described}")
        _dry_run("add it")
        return
    click.echo(f"added user {described}")
    if generated:
        click.echo(f"password: {password}")
        click.echo("it is shown only now; pass it on safely")


@users_group.command("list")
@click.option("--json", "as_json", is_flag=True)
@pass_context
def users_list(context: Context, as_json: bool) -> None:
    """List users with their role, scope and state."""
    now = datetime.now(UTC)
    with context.session(commit=False) as session:
        listed = users.list_users(session)
        rows = [users.user_as_dict(user) for user in listed]
        locked = {user.name for user in listed if user.locked_until and user.locked_until > now}
    if as_json:
        echo_json(rows)
        return
    if not rows:
        click.echo("no users yet (add one with `geogrid users add NAME --role ... --commit`)")
        return
    for row in rows:
        state = "disabled" if row["disabled"] else "locked" if row["name"] in locked else "active"
        login = "password" if row["has_password"] else "token only"
        click.echo(
            f"{row['name']:<24} {row['role']:<16} {','.join(row['scope']) or 'everywhere':<32} "
            f"{state:<8} {login:<10} {row['display_name']} {row['department']}".rstrip()
        )


@users_group.command("disable")
@click.argument("name")
@click.option("--commit", is_flag=True, help=COMMIT_HELP)
@pass_context
def users_disable(context: Context, name: str, commit: bool) -> None:
    """Stop NAME from logging in and from using any of their API tokens; ends their sessions."""
    with context.session(commit=commit) as session:
        login = users.disable_user(session, name).name
    click.echo(f"{'disabled' if commit else 'would disable'} user {login}")
    if not commit:
        _dry_run("disable it")


@users_group.command("enable")
@click.argument("name")
@click.option("--commit", is_flag=True, help=COMMIT_HELP)
@pass_context
def users_enable(context: Context, name: str, commit: bool) -> None:
    """Let NAME in again; also lifts a lock after too many failed logins."""
    with context.session(commit=commit) as session:
        login = users.enable_user(session, name).name
    click.echo(f"{'enabled' if commit else 'would enable'} user {login}")
    if not commit:
        _dry_run("enable it")


@users_group.command("logout")
@click.argument("name")
@click.option("--commit", is_flag=True, help=COMMIT_HELP)
@pass_context
def users_logout(context: Context, name: str, commit: bool) -> None:
    """End every web session of NAME (each at its next request); API tokens stay valid."""
    with context.session(commit=commit) as session:
        login = users.end_sessions(session, name).name
    click.echo(f"{'ended' if commit else 'would end'} every web session of {login}")
    if not commit:
        _dry_run("end them")


@users_group.command("set-scope")
@click.argument("name")
@click.argument("codes", nargs=-1, required=True)
@click.option("--commit", is_flag=True, help=COMMIT_HELP)
@pass_context
def users_set_scope(context: Context, name: str, codes: tuple[str, ...], commit: bool) -> None:
    """Replace the codes NAME answers for (CODES comma- or space-separated)."""
    with context.session(commit=commit) as session:
        before = list(users.get_user(session, name).scope)
        user = users.set_scope(session, name, _codes(codes))
        login, after = user.name, list(user.scope)
    verb = "now answers" if commit else "would answer"
    click.echo(f"{login} {verb} for {','.join(after)} (was {','.join(before) or 'everywhere'})")
    if not commit:
        _dry_run("change it")


@users_group.command("set-password")
@click.argument("name")
@click.option(
    "--password-stdin", is_flag=True, help="read the password from standard input (else generated)"
)
@click.option("--commit", is_flag=True, help=COMMIT_HELP)
@pass_context
def users_set_password(context: Context, name: str, password_stdin: bool, commit: bool) -> None:
    """Give NAME a new password (generated and printed unless read from stdin); ends sessions."""
    password, generated = _password(password_stdin)
    with context.session(commit=commit) as session:
        login = users.set_password(session, name, password).name
    if not commit:
        click.echo(f"would set a new password for {login}")
        _dry_run("set it")
        return
    click.echo(f"set a new password for {login}")
    if generated:
        click.echo(f"password: {password}")
        click.echo("it is shown only now; pass it on safely")


@users_group.command("token")
@click.argument("name")
@click.option("--purpose", required=True, help="what the token is for, e.g. the client's name")
@click.option("--expires-days", type=click.IntRange(min=1), help="default: never expires")
@click.option("--commit", is_flag=True, help="issue it; without it nothing is changed")
@pass_context
def users_token(
    context: Context, name: str, purpose: str, expires_days: int | None, commit: bool
) -> None:
    """Issue an API token for NAME; the secret is printed once and never stored."""
    expires_in = timedelta(days=expires_days) if expires_days else None
    with context.session(commit=commit) as session:
        secret, token = users.issue_token(session, name, purpose=purpose, expires_in=expires_in)
        login = users.get_user(session, name).name
        expires = token.expires_at.isoformat() if token.expires_at else "never"
    if not commit:
        click.echo(f"would issue an API token for {login} ({purpose}), expiring {expires}")
        _dry_run("issue it; the secret is shown then")
        return
    click.echo(f"issued an API token for {login} ({purpose}), expiring {expires}")
    click.echo(secret)
    click.echo("it is shown only now; send it as 'Authorization: Bearer <token>'", err=True)


@users_group.command("tokens")
@click.argument("name", required=False)
@click.option("--json", "as_json", is_flag=True)
@pass_context
def users_tokens(context: Context, name: str | None, as_json: bool) -> None:
    """List API tokens (of NAME only, when given) by prefix; secrets are never shown."""
    with context.session(commit=False) as session:
        rows = [
            users.token_as_dict(token, user) for token, user in users.list_tokens(session, name)
        ]
    if as_json:
        echo_json(rows)
        return
    if not rows:
        click.echo("no API tokens")
    for row in rows:
        state = "revoked" if row["revoked_at"] else f"expires {row['expires_at'] or 'never'}"
        used = row["last_used_at"] or "never used"
        click.echo(f"{row['prefix']}…  {row['user']:<20} {row['purpose']:<30} {state}; {used}")


@users_group.command("revoke-token")
@click.argument("prefix")
@click.option("--commit", is_flag=True, help=COMMIT_HELP)
@pass_context
def users_revoke_token(context: Context, prefix: str, commit: bool) -> None:
    """Revoke the API token whose secret starts with PREFIX (see `geogrid users tokens`)."""
    now = datetime.now(UTC)
    with context.session(commit=commit) as session:
        token = users.revoke_token(session, prefix.rstrip("…"), now=now)
        shown, revoked_at = token.prefix, token.revoked_at
    if revoked_at != now:
        click.echo(f"API token {shown}… was already revoked at {revoked_at.isoformat()}")
        return
    click.echo(f"{'revoked' if commit else 'would revoke'} API token {shown}…")
    if not commit:
        _dry_run("revoke it")
