"""People who log in and clients that call the API."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column

from geogrid.models.base import Base, sql_list

#: Roles a person can log in with; ``system`` is geogrid itself and never a login.
USER_ROLES = (
    "administrator",
    "official",
    "grid_worker",
    "patrol_member",
    "station_officer",
    "planner",
    "department",
    "resident",
)


class AppUser(Base):
    """A person who logs in (password) or a client that calls the API (token), with a scope."""

    __tablename__ = "app_user"
    __table_args__ = (
        CheckConstraint(f"role IN ({sql_list(USER_ROLES)})", name="app_user_role_known"),
        # Names are compared case-insensitively by storing them in lower case.
        CheckConstraint("name = lower(name) AND length(name) > 0", name="app_user_name_lower"),
        # Administrators act everywhere; everyone else answers for some codes.
        CheckConstraint(
            "(role = 'administrator') = (cardinality(scope) = 0)",
            name="app_user_scope_unless_administrator",
        ),
        CheckConstraint("failed_logins >= 0", name="app_user_failed_logins_positive"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    #: The login name, lower case, unique.
    name: Mapped[str] = mapped_column(String(64), unique=True)
    #: How the person is shown, e.g. 王丽 (东关第1网格).
    display_name: Mapped[str] = mapped_column(Text, server_default="")
    role: Mapped[str] = mapped_column(String(32))
    #: Unified codes the user answers for; a code covers every area below it.
    scope: Mapped[list[str]] = mapped_column(
        ARRAY(String(32)), server_default=text("'{}'::varchar[]")
    )
    #: For department staff: the department they act for, e.g. 城市管理局.
    department: Mapped[str] = mapped_column(Text, server_default="")
    #: A werkzeug password hash (``scrypt:...``); none for token-only users.
    password_hash: Mapped[str | None] = mapped_column(Text)
    disabled: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    #: Failed password checks since the last success or lock.
    failed_logins: Mapped[int] = mapped_column(Integer, server_default="0")
    locked_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    created_by: Mapped[str] = mapped_column(Text)
    last_login_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    #: Raised to end every session of the user at once (logout everywhere, password change,
    #: disabling); a web session remembers the value it was signed in with.
    session_epoch: Mapped[int] = mapped_column(Integer, server_default="0")


class ApiToken(Base):
    """A bearer token for the API: only its SHA-256 is stored, the secret is shown once."""

    __tablename__ = "api_token"
    __table_args__ = (Index("ix_api_token_prefix", "prefix"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("app_user.id"), index=True)
    #: SHA-256 of the whole secret, hex.
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    #: The secret's first characters, so people can tell tokens apart and revoke one.
    prefix: Mapped[str] = mapped_column(String(16))
    #: What the token is for, e.g. "12345 hotline bridge".
    purpose: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
