"""The API's description: ``GET /api/openapi.json`` (OpenAPI 3.1) and ``GET /api/docs``.

The document is written by hand in ``web/openapi.json`` from the views, not generated
from them, so it says what clients may rely on; ``tests/webapp/test_openapi.py`` keeps it
honest (every route documented with its methods, real answers valid against it, no
garbage parameter answered with a 500). The served copy names the server the request
came to and the session cookie the app really uses. The docs page is rendered here from
the same document, with no script, so it works offline.
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, render_template, request
from markupsafe import Markup, escape

bp = Blueprint("openapi", __name__, url_prefix="/api")

#: The hand-written OpenAPI 3.1 document.
DOCUMENT_PATH = Path(__file__).resolve().with_name("openapi.json")
METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


@bp.get("/openapi.json")
def document() -> Response:
    """The OpenAPI document, its server URL the one this request came to."""
    response = jsonify(served_document())
    # The server URL follows the Host header; a shared cache must not mix hosts.
    response.headers["Cache-Control"] = "public, max-age=300"
    response.headers["Vary"] = "Host"
    return response


@bp.get("/docs")
def docs() -> str:
    """Every path, its parameters and answers, as a plain page."""
    spec = served_document()
    return render_template(
        "api_docs.html",
        info=spec["info"],
        introduction=marked_up(spec["info"].get("description", "")),
        server=spec["servers"][0]["url"],
        operations=operations(spec),
    )


def served_document() -> dict[str, Any]:
    """A copy of the document for this request: this server, this app's session cookie."""
    spec = copy.deepcopy(load_document())
    spec["servers"] = [{"url": request.url_root.rstrip("/"), "description": "This server."}]
    cookie = spec["components"]["securitySchemes"]["cookieAuth"]
    cookie["name"] = current_app.config["SESSION_COOKIE_NAME"]
    return spec


@cache
def load_document() -> dict[str, Any]:
    """The document as written (read once per process, on first use)."""
    return json.loads(DOCUMENT_PATH.read_text(encoding="utf-8"))


@dataclass(frozen=True)
class Parameter:
    """A parameter as the docs page lists it."""

    name: str
    where: str
    required: bool
    type: str
    description: Markup


@dataclass(frozen=True)
class Operation:
    """One method of one path as the docs page lists it."""

    method: str
    path: str
    tag: str
    summary: str
    description: Markup
    public: bool
    parameters: list[Parameter]
    body: list[str]
    responses: list[tuple[str, Markup]]

    @property
    def anchor(self) -> str:
        """The page-local id of the operation."""
        return f"{self.method}-{self.path}".replace("/", "-").replace("{", "").replace("}", "")


def operations(spec: dict[str, Any]) -> list[Operation]:
    """Every operation of ``spec``, grouped by tag in the document's tag order."""
    tag_order = [tag["name"] for tag in spec.get("tags", [])]
    found = []
    for path, item in spec["paths"].items():
        shared = item.get("parameters", [])
        for method in METHODS:
            if method in item:
                found.append(_operation(spec, path, method, item[method], shared))
    return sorted(found, key=lambda op: tag_order.index(op.tag) if op.tag in tag_order else 99)


def _operation(
    spec: dict[str, Any], path: str, method: str, op: dict[str, Any], shared: list[Any]
) -> Operation:
    security = op.get("security", spec.get("security", []))
    parameters = [_parameter(spec, raw) for raw in [*shared, *op.get("parameters", [])]]
    body = op.get("requestBody", {}).get("content", {})
    responses = [
        (status, marked_up(_resolve(spec, answer).get("description", "")))
        for status, answer in op.get("responses", {}).items()
    ]
    return Operation(
        method=method.upper(),
        path=path,
        tag=(op.get("tags") or [""])[0],
        summary=op.get("summary", ""),
        description=marked_up(op.get("description", "")),
        public={} in security,
        parameters=parameters,
        body=[
            f"{media} ({_type_of(spec, form.get('schema', {}))})" for media, form in body.items()
        ],
        responses=responses,
    )


def _parameter(spec: dict[str, Any], raw: dict[str, Any]) -> Parameter:
    parameter = _resolve(spec, raw)
    return Parameter(
        name=parameter["name"],
        where=parameter["in"],
        required=bool(parameter.get("required")),
        type=_type_of(spec, parameter.get("schema", {})),
        description=marked_up(parameter.get("description", "")),
    )


def marked_up(text: str) -> Markup:
    """Text with its `code` spans and **bold** as HTML; everything else escaped."""
    html = str(escape(text))
    html = re.sub(r"`([^`]+)`", r"<code>\1</code>", html)
    return Markup(re.sub(r"\*\*([^*]+)\*\*", r"<strong>\1</strong>", html))


def _type_of(spec: dict[str, Any], schema: dict[str, Any]) -> str:
    """A short name for a schema: its component's name, its enum, or its type."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        target = _resolve(spec, schema)
        return f"{name}: {' | '.join(map(str, target['enum']))}" if "enum" in target else name
    if "enum" in schema:
        return " | ".join(map(str, schema["enum"]))
    kind = schema.get("type", "any")
    kind = " or ".join(kind) if isinstance(kind, list) else kind
    return f"{kind} ({schema['format']})" if "format" in schema else kind


def _resolve(spec: dict[str, Any], item: dict[str, Any]) -> dict[str, Any]:
    """Follow a local ``$ref`` (``#/components/...``) to what it names."""
    while "$ref" in item:
        node: Any = spec
        for part in item["$ref"].removeprefix("#/").split("/"):
            node = node[part]
        item = node
    return item
