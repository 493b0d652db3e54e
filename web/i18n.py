"""The interface language: Chinese (zh-CN) by default, English on request.

A small catalogue rather than gettext: messages are written in English in the
templates (``_("Grid map")``) and looked up in the Chinese table. The language comes
from ``?lang=`` (remembered in a cookie), then the cookie, then the browser's
Accept-Language, then ``GEOGRID_LANGUAGE``.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from flask import Flask, Response, g, request

from web.db import get_settings

LANGUAGES = ("zh_CN", "en")
#: The value for ``<html lang>`` and for Accept-Language matching.
HTML_LANG = {"zh_CN": "zh-CN", "en": "en"}
COOKIE = "lang"
_COOKIE_MAX_AGE = 365 * 24 * 3600

#: English message → Chinese. Keys are exactly the strings passed to ``_()``.
ZH_CN: dict[str, str] = {
    "geogrid": "网格化服务管理",
    "Grid map": "网格地图",
    "Area": "区域",
    "Show": "显示",
    "All areas": "全部区域",
    "Generation %(id)s": "第 %(id)s 版边界",
    "Levels on the map": "地图图层",
    "Areas in view": "本区域下级",
    "Up": "上一级",
    "Hover over a grid to see its code and name.": "鼠标移到网格上可查看编码和名称。",
    "Language": "语言",
    "Error %(status)s": "错误 %(status)s",
    "Back to the grid map": "返回网格地图",
    "Field: %(field)s": "字段：%(field)s",
    "No areas to show.": "没有可显示的区域。",
    # Error codes, shown as the error page's heading.
    "invalid_input": "输入有误",
    "invalid_code": "编码无效",
    "invalid_coordinate": "坐标无效",
    "invalid_file": "文件无法读取",
    "validation_failed": "校验未通过",
    "not_found": "未找到",
    "conflict": "与现有数据冲突",
    "illegal_transition": "当前状态不允许此操作",
    "unauthenticated": "需要登录或有效的访问令牌",
    "forbidden": "无权进行此操作",
    "calendar_not_covered": "工作日历缺少该年份的节假日安排",
    "config_error": "配置错误",
    "database_not_ready": "数据库未就绪",
    "method_not_allowed": "不支持该请求方式",
    "too_large": "请求过大",
    "unsupported_media_type": "不支持的内容类型",
    "http_error": "请求错误",
    "internal_error": "服务器内部错误",
}

#: English needs words only for the error codes used as headings.
EN: dict[str, str] = {
    "invalid_input": "Invalid input",
    "invalid_code": "Invalid code",
    "invalid_coordinate": "Invalid coordinate",
    "invalid_file": "Unreadable file",
    "validation_failed": "Validation failed",
    "not_found": "Not found",
    "conflict": "Conflict with stored data",
    "illegal_transition": "Not allowed in the current state",
    "unauthenticated": "Sign-in or a valid token needed",
    "forbidden": "Not allowed",
    "calendar_not_covered": "The working-day calendar does not cover that year",
    "config_error": "Configuration error",
    "database_not_ready": "Database not ready",
    "method_not_allowed": "Method not allowed",
    "too_large": "Request too large",
    "unsupported_media_type": "Unsupported content type",
    "http_error": "Request error",
    "internal_error": "Internal server error",
}

CATALOGUES: dict[str, dict[str, str]] = {"zh_CN": ZH_CN, "en": EN}


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
