"""The interface language: Chinese (zh-CN) by default, English on request.

A small catalogue rather than gettext: messages are written in English in the
templates (``_("Grid map")``) and looked up in the Chinese table. Each area of work
keeps its words in its own module of :mod:`web.messages`. The language comes
from ``?lang=`` (remembered in a cookie), then the cookie, then the browser's
Accept-Language, then ``GEOGRID_LANGUAGE``.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from flask import Flask, Response, g, request

from web.db import get_settings
from web.messages import load_catalogues

LANGUAGES = ("zh_CN", "en")
#: The value for ``<html lang>`` and for Accept-Language matching.
HTML_LANG = {"zh_CN": "zh-CN", "en": "en"}
COOKIE = "lang"
_COOKIE_MAX_AGE = 365 * 24 * 3600

#: Every area's messages merged: language → English message → translation.
CATALOGUES: dict[str, dict[str, str]] = load_catalogues()


def gettext(message: str, **values: Any) -> str:
    """``message`` in the request's language, with ``%(name)s`` values filled in."""
    text = CATALOGUES[current_language()].get(message, message)
    return text % values if values else text


def current_language() -> str:
    """The request's language (chosen once per request)."""
    if "language" not in g:
        g.language = _choose_language()
    return g.language


def init_app(app: Flask) -> None:
    """Make ``_`` and the language available to templates; remember ``?lang=``."""
    app.jinja_env.globals.update(_=gettext, url_with_lang=url_with_lang)
    app.context_processor(
        lambda: {"language": current_language(), "html_lang": HTML_LANG[current_language()]}
    )
    app.after_request(_remember_language)


def url_with_lang(language: str) -> str:
    """This page's URL with ``lang`` set, keeping its other query parameters."""
    args = request.args.to_dict(flat=False)
    args["lang"] = [language]
    return f"{request.path}?{urlencode(args, doseq=True)}"


def _choose_language() -> str:
    asked = _known(request.args.get("lang")) or _known(request.cookies.get(COOKIE))
    if asked:
        return asked
    accepted = request.accept_languages.best_match(["zh-CN", "zh", "en"])
    if accepted:
        return "en" if accepted == "en" else "zh_CN"
    return get_settings().language


def _known(value: str | None) -> str | None:
    if not value:
        return None
    value = value.lower()
    if value.startswith("zh"):
        return "zh_CN"
    return "en" if value.startswith("en") else None


def _remember_language(response: Response) -> Response:
    chosen = _known(request.args.get("lang"))
    if chosen and chosen != request.cookies.get(COOKIE):
        response.set_cookie(COOKIE, chosen, max_age=_COOKIE_MAX_AGE, httponly=True, samesite="Lax")
    return response
