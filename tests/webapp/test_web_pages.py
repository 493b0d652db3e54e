"""The grid map page: languages, the area picker, error pages, and no asset from elsewhere."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

import pytest
from factories import tiny_city

from geogrid.users import add_user, issue_token
from web import i18n

BASE = "http://localhost/"


class AssetLinks(HTMLParser):
    """Every URL a page makes the browser fetch: scripts, stylesheets, images, icons."""

    def __init__(self) -> None:
        super().__init__()
        self.scripts: list[str] = []
        self.stylesheets: list[str] = []
        self.others: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "script" and values.get("src"):
            self.scripts.append(values["src"])
        elif tag == "link" and values.get("href"):
            rel = (values.get("rel") or "").lower()
            (self.stylesheets if "stylesheet" in rel else self.others).append(values["href"])
        elif tag in ("img", "iframe", "source", "embed") and values.get("src"):
            self.others.append(values["src"])


def links_of(html: str) -> AssetLinks:
    parser = AssetLinks()
    parser.feed(html)
    return parser


def fetch(client, url: str) -> tuple[int, bytes]:
    """Status and body of a GET, the response closed (files are streamed)."""
    with client.get(url) as response:
        return response.status_code, response.get_data()


def same_origin(url: str, base: str = BASE) -> bool:
    return urlsplit(urljoin(base, url))[:2] == urlsplit(base)[:2]


@pytest.fixture
def viewer(login_as):
    """An official of the tiny city's county, signed in: the grid map is for signed-in users."""
    return login_as("official", "370705")


@pytest.fixture
def administrator(db):
    """Authorization headers of an administrator, who needs no active generation to exist."""
    add_user(db, "admin-1", "administrator", created_by="tests")
    secret, _ = issue_token(db, "admin-1", purpose="tests")
    return {"Authorization": f"Bearer {secret}"}


def test_the_grid_map_is_in_chinese_by_default(viewer, city):
    response = viewer.get("/grids")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert '<html lang="zh-CN">' in html
    assert "网格地图" in html and f"第 {city.id} 版边界" in html
    assert "奎文区" in html  # the overview shows the county and its townships
    assert "English" in html  # the way to the other language


def test_english_on_request_and_remembered_in_a_cookie(viewer, city):
    response = viewer.get("/grids?lang=en")
    html = response.get_data(as_text=True)
    assert '<html lang="en">' in html
    assert "Grid map" in html and "网格地图" not in html
    assert "lang=en" in response.headers["Set-Cookie"]
    again = viewer.get("/grids").get_data(as_text=True)
    assert '<html lang="en">' in again
    back = viewer.get("/grids?lang=zh_CN").get_data(as_text=True)
    assert '<html lang="zh-CN">' in back


def test_the_browser_language_is_followed(viewer, city):
    english = viewer.get("/grids", headers={"Accept-Language": "en-GB,en;q=0.8"})
    assert '<html lang="en">' in english.get_data(as_text=True)
    chinese = viewer.get("/grids", headers={"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.5"})
    assert '<html lang="zh-CN">' in chinese.get_data(as_text=True)


def test_an_area_shows_its_levels_below_and_only_its_own_grids(viewer, city):
    html = viewer.get("/grids?area=370705001").get_data(as_text=True)
    assert "东关街道" in html
    script = html[html.index("L.map(") :]
    # No geometry in the page: each level is fetched from the layers endpoint.
    url = f"/api/layers/{city.id}/grid.geojson?within=370705001"
    assert f'"{url}"' in script
    assert "370705002" not in script
    codes = {f["properties"]["code"] for f in viewer.get(url).get_json()["features"]}
    assert codes == {"370705001001001", "370705001001002"}  # not another township's grids
    # The breadcrumb leads back up to the county; the child list down to the community.
    assert 'href="/grids?area=370705"' in html
    assert 'href="/grids?area=370705001001"' in html
    # The picker offers every area above the grid level, this one selected.
    assert re.search(r'<option value="370705001" selected>', html)
    assert '<option value="370705002001">' in html


def test_the_map_tooltips_show_code_and_name(viewer, city):
    html = viewer.get("/grids?area=370705001001").get_data(as_text=True)
    # 编码, 名称 as the page's script writes them (tojson sorts the keys).
    tooltip = (
        '"tooltip": {"aliases": ["\\u7f16\\u7801", "\\u540d\\u79f0"], "fields": ["code", "name"]}'
    )
    assert tooltip in html
    url = f"/api/layers/{city.id}/grid.geojson?within=370705001001"
    names = {f["properties"]["name"] for f in viewer.get(url).get_json()["features"]}
    assert "东关第1网格" in names


def test_the_whole_city_page_carries_no_geometry(viewer, city):
    html = viewer.get("/grids").get_data(as_text=True)
    for level in ("county", "township", "community", "grid"):
        assert f'"/api/layers/{city.id}/{level}.geojson"' in html
    assert "coordinates" not in html


def test_a_scoped_user_sees_only_areas_of_their_scope(login_as, city):
    worker = login_as("grid_worker", "370705001001001")
    assert worker.get("/grids?area=370705002").status_code == 403
    html = worker.get("/grids").get_data(as_text=True)
    assert '<option value="370705001">' in html and '<option value="370705002">' not in html
    url = f"/api/layers/{city.id}/grid.geojson"
    codes = {f["properties"]["code"] for f in worker.get(url).get_json()["features"]}
    assert codes == {"370705001001001"}
    townships = worker.get(f"/api/layers/{city.id}/township.geojson").get_json()["features"]
    assert [f["properties"]["code"] for f in townships] == ["370705001"]  # the one holding it


def test_the_grid_map_asks_visitors_to_sign_in(client, city):
    response = client.get("/grids")
    assert response.status_code == 302 and "/login" in response.location


@pytest.mark.parametrize(
    ("area", "status", "heading"),
    [("37", 400, "编码无效"), ("370705009", 404, "未找到")],
)
def test_a_bad_area_is_an_error_page(viewer, city, area, status, heading):
    response = viewer.get(f"/grids?area={area}")
    assert response.status_code == status
    assert response.mimetype == "text/html"
    html = response.get_data(as_text=True)
    assert heading in html and "字段：area" in html
    assert "Traceback" not in html


def test_no_active_generation_is_explained_on_the_page(client, administrator):
    response = client.get("/grids?lang=en", headers=administrator)
    assert response.status_code == 404
    html = response.get_data(as_text=True)
    assert "not_found" not in html.split("<h1>")[1][:40]  # the heading is words, not a code
    assert "geogrid demo build" in html


def test_a_generation_with_no_areas_still_renders(client, administrator, make_generation):
    make_generation(tiny_city().iloc[:0], description="empty")
    response = client.get("/grids", headers=administrator)
    assert response.status_code == 200
    assert "没有可显示的区域。" in response.get_data(as_text=True)


def test_the_home_page_is_the_grid_map(client):
    response = client.get("/")
    assert response.status_code == 302 and response.location.endswith("/grids")


def test_every_asset_the_page_loads_is_served_here(viewer, city):
    html = viewer.get("/grids?area=370705").get_data(as_text=True)
    links = links_of(html)
    urls = links.scripts + links.stylesheets + links.others
    assert any("leaflet.js" in url for url in links.scripts)
    assert [url for url in urls if not same_origin(url)] == []
    fetched = set()
    for url in urls:
        assert fetch(viewer, url)[0] == 200, url
        fetched.add(url)
    # Fonts and images the stylesheets pull in are local too, and present.
    for sheet in links.stylesheets:
        css = fetch(viewer, sheet)[1].decode()
        for ref in re.findall(r"url\(\s*['\"]?([^'\")]+)['\"]?\s*\)", css):
            if ref.startswith("data:"):
                continue
            absolute = urljoin(urljoin(BASE, sheet), ref)
            assert same_origin(absolute), (sheet, ref)
            path = urlsplit(absolute).path
            if path not in fetched:
                assert fetch(viewer, path)[0] == 200, (sheet, ref)
                fetched.add(path)
    assert any(path.endswith(".woff2") for path in fetched)


def test_every_message_in_the_templates_has_a_chinese_translation():
    from pathlib import Path

    templates = Path(i18n.__file__).parent / "templates"
    used = set()
    for template in templates.rglob("*.html"):
        used |= set(re.findall(r"""_\(\s*["']([^"']+)["']""", template.read_text(encoding="utf-8")))
    chinese = i18n.CATALOGUES["zh_CN"]
    assert used and used <= set(chinese), used - set(chinese)
    from web.errors import _HTTP_CODES, STATUS_BY_CODE

    for code in [*STATUS_BY_CODE, *_HTTP_CODES.values(), "internal_error", "http_error"]:
        assert code in chinese


def test_security_settings(app):
    assert app.config["SECRET_KEY"] == "test-secret"
    assert app.config["SESSION_COOKIE_HTTPONLY"] is True
    assert app.config["SESSION_COOKIE_SAMESITE"] == "Lax"
    assert app.config["MAX_CONTENT_LENGTH"] > 0
    with app.test_client().get("/vendor/leaflet/dist/leaflet.css") as response:
        assert response.headers["X-Content-Type-Options"] == "nosniff"
