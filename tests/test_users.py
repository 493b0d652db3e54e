"""Users and API tokens: names, roles, scopes, hashed passwords, lockout, tokens, the CLI."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from factories import load_tiny_city, load_tiny_city_by_cli
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from geogrid import actors, users
from geogrid.errors import CodeError, Conflict, InputError, NotFound, Unauthenticated
from geogrid.models import USER_ROLES, ApiToken, AppUser

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
PASSWORD = "correct horse battery"
GRID = "370705001001001"


@pytest.fixture
def city(db, settings, tmp_path):
    return load_tiny_city(db, settings, tmp_path)


@pytest.fixture
def worker(db, city):
    return users.add_user(
        db,
        "Wang.Li",
        actors.GRID_WORKER,
        scope=[GRID],
        display_name="王丽",
        password=PASSWORD,
        created_by="admin",
    )


def _fails(db, name: str, password: str, now: datetime) -> Unauthenticated:
    with pytest.raises(Unauthenticated) as caught:
        users.verify_password(db, name, password, now=now)
    return caught.value


# -- users ----------------------------------------------------------------------------------


def test_user_roles_are_the_actor_roles_but_system():
    assert set(USER_ROLES) == set(actors.ROLES) - {actors.SYSTEM}


def test_add_and_list_users_with_lower_case_names(db, city, worker):
    users.add_user(db, "admin.zhang", actors.ADMINISTRATOR, created_by="setup")
    assert worker.name == "wang.li"
    assert [user.name for user in users.list_users(db)] == ["admin.zhang", "wang.li"]
    assert users.get_user(db, "WANG.LI").display_name == "王丽"
    listed = users.user_as_dict(worker)
    assert listed["scope"] == [GRID] and listed["has_password"] is True
    assert "password_hash" not in listed


def test_names_are_unique_whatever_their_case(db, city, worker):
    with pytest.raises(Conflict) as caught:
        users.add_user(db, "WANG.li", actors.OFFICIAL, scope=["370705"], created_by="admin")
    assert caught.value.field == "name"
    # The failed insert left the session usable.
    assert users.get_user(db, "wang.li").role == actors.GRID_WORKER


def test_the_database_itself_keeps_names_lower_case_and_scopes_for_the_scoped(db, city):
    for row in (
        AppUser(name="Wang.Li", role=actors.ADMINISTRATOR, created_by="sql"),
        AppUser(name="wang.li", role=actors.OFFICIAL, scope=[], created_by="sql"),
    ):
        with pytest.raises(IntegrityError), db.begin_nested():
            db.add(row)
            db.flush()


@pytest.mark.parametrize("name", ["", "x", "王丽", "wang li", ".dot", "a" * 65])
def test_malformed_names_are_refused(db, city, name):
    with pytest.raises(InputError) as caught:
        users.add_user(db, name, actors.OFFICIAL, scope=["370705"], created_by="admin")
    assert caught.value.field == "name"


def test_unknown_roles_and_system_are_refused(db, city):
    for role in ("superuser", actors.SYSTEM):
        with pytest.raises(InputError) as caught:
            users.add_user(db, "someone", role, scope=["370705"], created_by="admin")
        assert caught.value.field == "role"


def test_scoped_roles_need_a_scope_and_administrators_refuse_one(db, city):
    with pytest.raises(InputError) as caught:
        users.add_user(db, "no.scope", actors.PLANNER, created_by="admin")
    assert caught.value.field == "scope"
    with pytest.raises(InputError) as caught:
        users.add_user(db, "boss", actors.ADMINISTRATOR, scope=["370705"], created_by="admin")
    assert caught.value.field == "scope"


def test_department_staff_need_their_department(db, city):
    with pytest.raises(InputError) as caught:
        users.add_user(db, "cg.staff", actors.DEPARTMENT, scope=["370705"], created_by="admin")
    assert caught.value.field == "department"
    staff = users.add_user(
        db,
        "cg.staff",
        actors.DEPARTMENT,
        scope=["370705"],
        department="城市管理局",
        created_by="admin",
    )
    assert users.actor_of(staff).department == "城市管理局"


def test_scope_codes_must_be_areas_of_the_current_generation(db, city):
    for bad in (["370705009"], ["37x705"], ["370705", "370705001001009"]):
        with pytest.raises(CodeError) as caught:
            users.add_user(db, "official.li", actors.OFFICIAL, scope=bad, created_by="admin")
        assert caught.value.field == "scope"
    official = users.add_user(
        db,
        "official.li",
        actors.OFFICIAL,
        scope=[" 370705001", "370705002", "370705001"],
        created_by="admin",
    )
    assert official.scope == ["370705001", "370705002"]


def test_scopes_cannot_be_checked_before_any_generation_is_active(db):
    with pytest.raises(CodeError) as caught:
        users.add_user(db, "early", actors.OFFICIAL, scope=["370705"], created_by="admin")
    assert caught.value.field == "scope"


def test_set_scope_replaces_the_codes_and_the_actor_follows(db, city, worker):
    users.set_scope(db, "wang.li", ["370705002001001", "370705002001002"])
    actor = users.actor_of(users.get_user(db, "wang.li"))
    assert actor.covers("370705002001002") and not actor.covers(GRID)
    with pytest.raises(CodeError):
        users.set_scope(db, "wang.li", ["370705003"])


def test_unknown_users_are_not_found(db, city):
    with pytest.raises(NotFound) as caught:
        users.disable_user(db, "nobody")
    assert caught.value.field == "name"


# -- passwords --------------------------------------------------------------------------------


def test_password_is_stored_as_a_scrypt_hash_that_verifies(db, city, worker):
    assert PASSWORD not in worker.password_hash
    assert worker.password_hash.startswith("scrypt:")
    user = users.verify_password(db, "WANG.LI", PASSWORD, now=T0)
    assert user.id == worker.id and user.last_login_at == T0
    wrong = _fails(db, "wang.li", "correct horse battery!", T0)
    assert wrong.field == "password"


def test_password_policy(db, city):
    for password, field in (("short", "password"), ("x" * 257, "password")):
        with pytest.raises(InputError) as caught:
            users.add_user(
                db, "li.na", actors.PLANNER, scope=["370705"], password=password, created_by="a"
            )
        assert caught.value.field == field
    with pytest.raises(InputError, match="user name"):
        users.add_user(
            db,
            "li.na.12345",
            actors.PLANNER,
            scope=["370705"],
            password="LI.NA.12345",
            created_by="a",
        )


def test_refusals_do_not_tell_unknown_from_wrong_or_token_only(db, city, worker):
    users.add_user(db, "hotline.bridge", actors.OFFICIAL, scope=["370705"], created_by="admin")
    messages = {
        _fails(db, "wang.li", "not the password", T0).message,
        _fails(db, "nobody.here", PASSWORD, T0).message,
        _fails(db, "hotline.bridge", PASSWORD, T0).message,
    }
    assert len(messages) == 1


def test_lockout_after_five_failures_and_unlock_after_fifteen_minutes(db, city, worker):
    for attempt in range(users.MAX_FAILED_LOGINS):
        _fails(db, "wang.li", f"guess number {attempt}", T0 + timedelta(seconds=attempt))
    locked = users.get_user(db, "wang.li")
    assert locked.locked_until == T0 + timedelta(seconds=4) + users.LOCKOUT
    # While locked even the right password is refused, with the same message.
    during = _fails(db, "wang.li", PASSWORD, T0 + timedelta(minutes=10))
    assert during.message == _fails(db, "nobody", PASSWORD, T0).message
    after = T0 + timedelta(seconds=4) + users.LOCKOUT
    assert users.verify_password(db, "wang.li", PASSWORD, now=after).last_login_at == after
    assert locked.failed_logins == 0 and locked.locked_until is None


def test_a_success_resets_the_failure_count(db, city, worker):
    for attempt in range(users.MAX_FAILED_LOGINS - 1):
        _fails(db, "wang.li", f"guess number {attempt}", T0)
    users.verify_password(db, "wang.li", PASSWORD, now=T0)
    _fails(db, "wang.li", "one more guess", T0)
    assert users.get_user(db, "wang.li").locked_until is None


def test_disabled_users_cannot_log_in_until_enabled(db, city, worker):
    users.disable_user(db, "wang.li")
    _fails(db, "wang.li", PASSWORD, T0)
    users.enable_user(db, "wang.li")
    assert users.verify_password(db, "wang.li", PASSWORD, now=T0).name == "wang.li"


def test_set_password_replaces_the_old_one_and_lifts_a_lock(db, city, worker):
    for attempt in range(users.MAX_FAILED_LOGINS):
        _fails(db, "wang.li", f"guess number {attempt}", T0)
    users.set_password(db, "wang.li", "a brand new pass phrase")
    _fails(db, "wang.li", PASSWORD, T0)
    assert users.verify_password(db, "wang.li", "a brand new pass phrase", now=T0)


# -- tokens -----------------------------------------------------------------------------------


def test_a_token_stands_for_its_user_and_only_its_hash_is_stored(db, city, worker):
    secret, token = users.issue_token(db, "wang.li", purpose="patrol app", now=T0)
    assert secret.startswith("gg_") and len(secret) > 40
    assert token.prefix == secret[:8]
    assert db.scalar(select(func.count()).where(ApiToken.token_hash == secret)) == 0
    actor = users.actor_for_token(db, secret, now=T0)
    assert actor == actors.Actor(name="wang.li", role=actors.GRID_WORKER, scope=(GRID,))
    assert token.last_used_at == T0


def test_last_used_is_written_at_most_once_a_minute(db, city, worker):
    secret, token = users.issue_token(db, "wang.li", purpose="patrol app", now=T0)
    users.actor_for_token(db, secret, now=T0)
    users.actor_for_token(db, secret, now=T0 + timedelta(seconds=30))
    db.expire_all()
    assert db.get(ApiToken, token.id).last_used_at == T0
    users.actor_for_token(db, secret, now=T0 + timedelta(seconds=61))
    db.expire_all()
    assert db.get(ApiToken, token.id).last_used_at == T0 + timedelta(seconds=61)


def test_unknown_revoked_and_expired_tokens_are_refused(db, city, worker):
    for bogus in ("", "gg_not-a-token", "Bearer x"):
        with pytest.raises(Unauthenticated):
            users.actor_for_token(db, bogus, now=T0)
    secret, token = users.issue_token(
        db, "wang.li", purpose="trial", expires_in=timedelta(days=1), now=T0
    )
    assert users.actor_for_token(db, secret, now=T0 + timedelta(hours=23)).name == "wang.li"
    with pytest.raises(Unauthenticated, match="expired"):
        users.actor_for_token(db, secret, now=T0 + timedelta(days=1))
    other, _ = users.issue_token(db, "wang.li", purpose="bridge", now=T0)
    assert users.revoke_token(db, other[:8], now=T0).revoked_at == T0
    with pytest.raises(Unauthenticated, match="revoked"):
        users.actor_for_token(db, other, now=T0)
    # Revoking again is harmless and keeps the first date.
    assert users.revoke_token(db, other, now=T0 + timedelta(hours=1)).revoked_at == T0


def test_tokens_of_a_disabled_user_are_refused(db, city, worker):
    secret, _ = users.issue_token(db, "wang.li", purpose="patrol app", now=T0)
    users.disable_user(db, "wang.li")
    with pytest.raises(Unauthenticated, match="disabled"):
        users.actor_for_token(db, secret, now=T0)
    with pytest.raises(InputError):
        users.issue_token(db, "wang.li", purpose="another", now=T0)


def test_token_arguments_are_checked(db, city, worker):
    with pytest.raises(InputError) as caught:
        users.issue_token(db, "wang.li", purpose="  ")
    assert caught.value.field == "purpose"
    with pytest.raises(InputError) as caught:
        users.issue_token(db, "wang.li", purpose="x", expires_in=timedelta(0))
    assert caught.value.field == "expires_in"
    with pytest.raises(NotFound):
        users.revoke_token(db, "gg_zzzzz")


# -- the command line ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cli(make_cli, tmp_path_factory):
    """``geogrid`` on a database of this module's own, with the tiny city active."""
    invoke = make_cli()
    folder = tmp_path_factory.mktemp("city")
    load_tiny_city_by_cli(invoke, folder)
    return invoke


def _listed(cli, name: str) -> dict | None:
    rows = json.loads(cli("users", "list", "--json").output)
    return next((row for row in rows if row["name"] == name), None)


def test_cli_add_is_a_dry_run_without_commit(cli):
    dry = cli("users", "add", "Li.Ming", "--role", "official", "--scope", "370705")
    assert "would add user li.ming" in dry.output and "password:" not in dry.output
    assert "dry run: nothing was written" in dry.output
    assert _listed(cli, "li.ming") is None
    added = cli("users", "add", "Li.Ming", "--role", "official", "--scope", "370705", "--commit")
    password = next(
        line.split(": ", 1)[1] for line in added.output.splitlines() if line.startswith("password")
    )
    assert len(password) >= users.MIN_PASSWORD_LENGTH
    row = _listed(cli, "li.ming")
    assert (row["role"], row["scope"], row["has_password"]) == ("official", ["370705"], True)
    duplicate = cli("users", "add", "LI.MING", "--role", "planner", "--scope", "370705",
                    "--commit", ok=False)  # fmt: skip
    assert duplicate.exit_code == 1 and "[name]" in duplicate.output


def test_cli_disable_and_enable(cli):
    cli("users", "add", "zhou.bo", "--role", "planner", "--scope", "370705", "--commit")
    cli("users", "disable", "zhou.bo")
    assert _listed(cli, "zhou.bo")["disabled"] is False
    cli("users", "disable", "Zhou.Bo", "--commit")
    assert _listed(cli, "zhou.bo")["disabled"] is True
    assert "disabled" in cli("users", "list").output
    cli("users", "enable", "zhou.bo", "--commit")
    assert _listed(cli, "zhou.bo")["disabled"] is False


def test_cli_set_scope_and_password(cli):
    cli("users", "add", "zhao.kai", "--role", "grid_worker", "--scope", GRID, "--commit")
    bad = cli("users", "set-scope", "zhao.kai", "999999", "--commit", ok=False)
    assert bad.exit_code == 1 and "[scope]" in bad.output
    cli("users", "set-scope", "zhao.kai", "370705001001002")
    assert _listed(cli, "zhao.kai")["scope"] == [GRID]
    cli("users", "set-scope", "zhao.kai", "370705001001002,370705002001001", GRID, "--commit")
    assert _listed(cli, "zhao.kai")["scope"] == ["370705001001002", "370705002001001", GRID]
    empty = cli("users", "set-password", "zhao.kai", "--password-stdin", "--commit", ok=False)
    assert empty.exit_code == 1 and "[password]" in empty.output
    changed = cli("users", "set-password", "zhao.kai", "--commit")
    assert "password: " in changed.output


def test_cli_tokens_are_shown_once_and_revoked_by_prefix(cli):
    cli("users", "add", "hotline", "--role", "official", "--scope", "370705", "--no-password",
        "--commit")  # fmt: skip
    assert _listed(cli, "hotline")["has_password"] is False
    dry = cli("users", "token", "hotline", "--purpose", "12345 bridge")
    assert "gg_" not in dry.output and "dry run" in dry.output
    assert json.loads(cli("users", "tokens", "hotline", "--json").output) == []
    issued = cli("users", "token", "hotline", "--purpose", "12345 bridge", "--expires-days", "30",
                 "--commit")  # fmt: skip
    secret = next(line for line in issued.output.splitlines() if line.startswith("gg_"))
    tokens = json.loads(cli("users", "tokens", "hotline", "--json").output)
    assert [(t["prefix"], t["revoked_at"]) for t in tokens] == [(secret[:8], None)]
    assert secret not in cli("users", "tokens").output
    cli("users", "revoke-token", secret[:8])
    assert json.loads(cli("users", "tokens", "hotline", "--json").output)[0]["revoked_at"] is None
    cli("users", "revoke-token", secret[:8], "--commit")
    assert json.loads(cli("users", "tokens", "hotline", "--json").output)[0]["revoked_at"]
