"""``/vendor/<path>``: the map libraries installed from npm at set-up, served by the app.

Pages must work with no internet, so Leaflet and its plugins come from
``web/assets/node_modules`` (see ``web/assets/package.json``), never from a CDN.
Only the packages listed here are served, and only files a browser needs.
``geogrid/...`` paths are geogrid's own stand-ins for files that are not on npm.

URLs carry the package's version (``?v=1.9.4``), so a response can be cached for a
year: an upgrade changes every URL.
"""

from __future__ import annotations

import hashlib
import json
import re
from functools import cache
from pathlib import Path

from flask import Blueprint, Response, abort, current_app, request, send_from_directory, url_for
from werkzeug.security import safe_join

bp = Blueprint("vendor", __name__, url_prefix="/vendor")

#: The npm packages pages may load (``web/assets/package.json``).
PACKAGES = frozenset(
    {
        "leaflet",
        "jquery",
        "bootstrap",
        "bootstrap3",
        "@fortawesome/fontawesome-free",
        "leaflet.awesome-markers",
        "leaflet.heat",
        "leaflet.markercluster",
    }
)
#: geogrid's own stand-ins for assets that npm does not publish.
OWN_PACKAGE = "geogrid"
OWN_ROOT = Path(__file__).resolve().parent / "static" / "vendor"
#: What a browser fetches: scripts, styles, fonts and images; not READMEs or package.json.
SUFFIXES = frozenset(
    {".js", ".css", ".map", ".png", ".svg", ".gif", ".woff", ".woff2", ".ttf", ".eot"}
)
YEAR = 365 * 24 * 3600
#: For files a stylesheet links without a version (fonts, marker images).
DAY = 24 * 3600

#: Built from a package file rather than copied: Bootstrap 3's glyphicon rules alone.
GLYPHICONS = "bootstrap3/dist/css/glyphicons.css"
_GLYPHICONS_SOURCE = "bootstrap3/dist/css/bootstrap.css"


def asset_url(path: str) -> str:
    """The URL of a vendored file, e.g. ``leaflet/dist/leaflet.js``, with its version."""
    package, _ = split_package(path)
    return url_for("vendor.asset", path=path, v=_version(package, path))


@bp.get("/<path:path>")
def asset(path: str) -> Response:
    """One vendored file, cached for a year when asked for by its current version."""
    package, _ = split_package(path)
    if package not in PACKAGES and package != OWN_PACKAGE:
        abort(404)
    if Path(path).suffix not in SUFFIXES:
        abort(404)
    current = request.args.get("v") == _version(package, path)
    max_age = YEAR if current else DAY
    if path == GLYPHICONS:
        response = Response(_glyphicons_css(_vendor_root()), mimetype="text/css")
        response.cache_control.public = True
        response.cache_control.max_age = max_age
    else:
        root = OWN_ROOT if package == OWN_PACKAGE else _vendor_root()
        relative = path.removeprefix(f"{OWN_PACKAGE}/") if package == OWN_PACKAGE else path
        response = send_from_directory(root, relative, max_age=max_age)
    if current:
        response.cache_control.immutable = True
    return response


def split_package(path: str) -> tuple[str, str]:
    """``@scope/name/rest`` or ``name/rest`` as (package, rest)."""
    parts = path.split("/")
    size = 2 if parts[0].startswith("@") else 1
    return "/".join(parts[:size]), "/".join(parts[size:])


def _vendor_root() -> Path:
    return Path(current_app.config["VENDOR_ROOT"])


def _version(package: str, path: str) -> str:
    if package == OWN_PACKAGE:
        return _file_digest(OWN_ROOT, path.removeprefix(f"{OWN_PACKAGE}/"))
    return _package_version(_vendor_root(), package)


@cache
def _package_version(root: Path, package: str) -> str:
    manifest = safe_join(str(root), package, "package.json")
    if manifest is None or not Path(manifest).is_file():
        return "missing"
    return str(json.loads(Path(manifest).read_text(encoding="utf-8")).get("version", "0"))


@cache
def _file_digest(root: Path, relative: str) -> str:
    target = safe_join(str(root), relative)
    if target is None or not Path(target).is_file():
        return "missing"
    return hashlib.sha256(Path(target).read_bytes()).hexdigest()[:12]


_COMMENT = re.compile(r"/\*.*?\*/", re.DOTALL)
_RULE = re.compile(r"([^{}]+)\{([^{}]*)\}")


@cache
def _glyphicons_css(root: Path) -> str:
    """The @font-face and ``.glyphicon*`` rules of Bootstrap 3, without the rest of it.

    Folium links Bootstrap 3.0's separate glyphicons stylesheet, which npm does not
    have; loading all of Bootstrap 3 would restyle the Bootstrap 5 page around the map.
    Relative font URLs keep working because this file sits beside the original.
    """
    source = (root / _GLYPHICONS_SOURCE).read_text(encoding="utf-8")
    kept = [f"/* The glyphicon rules of {_GLYPHICONS_SOURCE}, extracted by geogrid. */"]
    for selector, body in _RULE.findall(_COMMENT.sub("", source)):
        selector = selector.strip()
        is_font = selector == "@font-face" and "Glyphicons Halflings" in body
        is_icon = all(part.strip().startswith(".glyphicon") for part in selector.split(","))
        if is_font or is_icon:
            kept.append(f"{selector} {{{body}}}")
    return "\n".join(kept) + "\n"
