"""Checks answers against the hand-written OpenAPI document (``tests/webapp/test_openapi.py``).

:class:`Contract` validates a response's status, media type and JSON body against what
the document says the operation answers, strictly: an object may carry no property the
document does not name unless the document says it may (``additionalProperties`` or
``unevaluatedProperties``), so a field added to a view fails until it is documented.
"""

from __future__ import annotations

import copy
import re
from typing import Any
from urllib.parse import quote

from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

#: The HTTP methods an OpenAPI path item may describe.
METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
#: The URI the document is registered under, for ``$ref`` resolution.
SPEC_URI = "urn:geogrid:openapi"


class Contract:
    """Checks answers against the document, strictly (no undocumented properties)."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec
        strict = make_strict(spec)
        self.registry = Registry().with_resource(
            SPEC_URI, Resource.from_contents(strict, default_specification=DRAFT202012)
        )

    def operations(self, method: str) -> list[tuple[str, dict[str, Any], list[dict[str, Any]]]]:
        """Each documented operation of ``method``: path, operation, resolved parameters."""
        found = []
        for path, item in self.spec["paths"].items():
            if method in item:
                operation = item[method]
                raw = [*item.get("parameters", []), *operation.get("parameters", [])]
                found.append((path, operation, [resolved(self.spec)(p) for p in raw]))
        return found

    def properties(self, schema: dict[str, Any]) -> list[str]:
        """The property names a (request) schema documents, through $ref."""
        names = list(schema.get("properties", {}))
        if "$ref" in schema:
            names += self.properties(resolved(self.spec)({"$ref": schema["$ref"]}))
        return names

    def caller(self, client: Any):
        """``call(method, path, status, ids={...}, **request)``: a checked call of ``client``.

        ``path`` is the documented template; ``ids`` fill its ``{name}`` parts.
        """

        def call(method: str, path: str, status: int, *, ids=None, **request: Any) -> Any:
            url = fill(path, ids or {})
            return self.check(
                client.open(url, method=method.upper(), **request), method, path, status
            )

        return call

    def check(self, response: Any, method: str, path: str, status: int) -> Any:
        """The answer's JSON (or bytes) after checking its status and its body."""
        assert response.status_code == status, response.get_data(as_text=True)[:800]
        failure = self.failure(response, method, path)
        assert failure is None, failure
        return response.get_json() if response.is_json else response.data

    def failure(self, response: Any, method: str, path: str) -> str | None:
        """Why the answer breaks the document, or None."""
        status = str(response.status_code)
        if response.status_code >= 500:
            return f"{status}: {response.get_data(as_text=True)[:300]}"
        pointer = f"/paths/{escape(path)}/{method}/responses"
        answers = self.spec["paths"][path][method]["responses"]
        if status not in answers:
            return f"status {status} is not documented: {response.get_data(as_text=True)[:300]}"
        pointer, answer = self.follow(f"{pointer}/{status}", answers[status])
        content = answer.get("content", {})
        if not content:
            return f"{status} has a body, documented none" if response.data else None
        if response.mimetype not in content:
            return f"{status} answered {response.mimetype}, documented {sorted(content)}"
        if not response.is_json:
            return None
        found = self.errors_at(
            f"{pointer}/content/{escape(response.mimetype)}/schema", response.get_json()
        )
        return "; ".join(found) or None

    def follow(self, pointer: str, item: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        """The pointer and content of what ``item`` refers to (itself if not a $ref)."""
        while "$ref" in item:
            pointer = item["$ref"].removeprefix("#")
            item = resolved(self.spec)(item)
        return pointer, item

    def errors_at(self, pointer: str, instance: Any) -> list[str]:
        """The schema errors of ``instance`` against the schema at ``pointer``."""
        validator = Draft202012Validator(
            {"$ref": f"{SPEC_URI}#{pointer}"},
            registry=self.registry,
            format_checker=Draft202012Validator.FORMAT_CHECKER,
        )
        return [
            f"{'/'.join(map(str, error.absolute_path)) or '(top)'}: {error.message[:200]}"
            for error in validator.iter_errors(instance)
        ]


def make_strict(spec: dict[str, Any]) -> dict[str, Any]:
    """A copy in which every object schema without a rule for extra properties has none."""
    strict = copy.deepcopy(spec)
    # Schemas that others extend with $ref and unevaluatedProperties stay open.
    bases = set()

    def find_bases(node: Any) -> None:
        if isinstance(node, dict):
            if "$ref" in node and "unevaluatedProperties" in node:
                bases.add(node["$ref"].rsplit("/", 1)[-1])
            for value in node.values():
                find_bases(value)
        elif isinstance(node, list):
            for value in node:
                find_bases(value)

    def close(node: Any, name: str | None = None) -> None:
        if isinstance(node, dict):
            is_object = isinstance(node.get("properties"), dict)
            if (
                is_object
                and name not in bases
                and not {"additionalProperties", "unevaluatedProperties"} & set(node)
            ):
                node["additionalProperties"] = False
            for key, value in node.items():
                if key in ("example", "examples"):
                    continue  # values, not schemas
                children = (
                    value.values() if key == "properties" and isinstance(value, dict) else [value]
                )
                for child in children:
                    close(child)
        elif isinstance(node, list):
            for value in node:
                close(value)

    find_bases(strict)
    for name, schema in strict["components"]["schemas"].items():
        close(schema, name)
    close(strict["paths"])
    close({key: value for key, value in strict["components"].items() if key != "schemas"})
    return strict


def resolved(spec: dict[str, Any]):
    """A function following a local $ref in ``spec``."""

    def follow(item: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in item:
            node: Any = spec
            for part in item["$ref"].removeprefix("#/").split("/"):
                node = node[unescape(part)]
            item = node
        return item

    return follow


def examples_of(spec: dict[str, Any]):
    """(where, schema pointer, value) of every example beside a schema."""
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            if method not in METHODS:
                continue
            base = f"/paths/{escape(path)}/{method}"
            body = operation.get("requestBody", {}).get("content", {})
            for media, form in body.items():
                yield from _examples(f"{base}/requestBody/content/{escape(media)}", form)
            for index, parameter in enumerate(operation.get("parameters", [])):
                yield from _examples(f"{base}/parameters/{index}", parameter)
    for name, parameter in spec["components"]["parameters"].items():
        yield from _examples(f"/components/parameters/{name}", parameter)
    for name, answer in spec["components"]["responses"].items():
        for media, form in answer.get("content", {}).items():
            yield from _examples(f"/components/responses/{name}/content/{escape(media)}", form)
    for name, schema in spec["components"]["schemas"].items():
        if "example" in schema:
            yield f"/components/schemas/{name}", f"/components/schemas/{name}", schema["example"]


def _examples(pointer: str, holder: dict[str, Any]):
    if "schema" not in holder:
        return
    if "example" in holder:
        yield pointer, f"{pointer}/schema", holder["example"]
    for name, example in holder.get("examples", {}).items():
        yield f"{pointer}/examples/{name}", f"{pointer}/schema", example["value"]


def fill(path: str, values: dict[str, Any]) -> str:
    """``path`` with its ``{name}`` parts replaced by ``values`` (URL-quoted)."""
    return re.sub(r"{([^}]+)}", lambda m: quote(str(values[m[1]]), safe=""), path)


def openapi_path(rule: str) -> str:
    """A Flask rule as an OpenAPI path: ``<int(max=9):incident_id>`` becomes ``{incident_id}``."""
    return re.sub(r"<(?:[^<>:]+:)?([^<>:]+)>", r"{\1}", rule)


def escape(part: str) -> str:
    """A JSON Pointer token."""
    return part.replace("~", "~0").replace("/", "~1")


def unescape(token: str) -> str:
    """A JSON Pointer token as the key it names."""
    return token.replace("~1", "/").replace("~0", "~")


def named_field_failure(response: Any, name: str) -> str | None:
    """Why a 400 names neither the parameter that was wrong nor it in its message, or None.

    The message may name it beside another field ("give a point or grid_code, not both").
    """
    body = response.get_json()
    if isinstance(body, list):  # Open311: "<field>: <message>"
        field, message = body[0]["description"].split(":", 1)
    else:
        field, message = body["error"]["field"], body["error"]["message"]
    if field == name or re.search(rf"\b{re.escape(name)}\b", message):
        return None
    return f"400 names {field!r}, not {name!r}: {body}"
