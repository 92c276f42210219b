"""The reading page at /ui (serving/http/static/, served by akhbar.serving.http.ui).

* The page's files name no outside URL (fast, no server).
* Over HTTP, against a live ``akhbar serve`` with the tiny bundle and a token: /ui loads
  without the token, as RTL Arabic, with a same-origin-only CSP; the API still needs it.
* In a real browser (Debian's ``chromium``, installed by ``make setup``, driven headless by
  Playwright with no browser download): the sample article and two claims, Analyze, the
  highlights against the API's answer, the API's 400 message beside the text box, and a
  503 and a network failure that keep the input. It saves a screenshot of the result to the
  test's tmp folder, and to docs/ui.png (the README's) when AKHBAR_UPDATE_SCREENSHOT=1.
"""

from __future__ import annotations

import os
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path

import httpx
import pytest
from serving_support import live_server

from akhbar.serving.core.articles import SAMPLE_ARTICLE
from akhbar.serving.http import ui

REPO = Path(__file__).resolve().parents[2]
SCREENSHOT = REPO / "docs" / "ui.png"
TOKEN = "ui-token"
NEW_CLAIM = "ارتفعت أسهم البنوك بعد إعلان القرار"
# A scheme followed by //, or a protocol-relative //host in an attribute, url() or string.
OUTSIDE = re.compile(r"(?i)\b[a-z][a-z0-9+.-]*://|[\"'(=]\s*//[^/\s]|@import")


class _Refs(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.refs: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.refs += [
            v for k, v in attrs if k in ("src", "href", "action", "srcset", "poster", "data") and v
        ]


def test_page_references_no_external_url():
    files = sorted(ui.STATIC.iterdir())
    assert {f.name for f in files} == {"index.html", "ui.css", "ui.js"}
    for path in files:
        found = OUTSIDE.findall(path.read_text(encoding="utf-8"))
        assert not found, f"{path.name} refers outside the service: {found}"
    parser = _Refs()
    parser.feed((ui.STATIC / "index.html").read_text(encoding="utf-8"))
    # Only the page's own assets and in-page anchors.
    assert parser.refs and all(r.startswith(("/ui/", "#")) for r in parser.refs), parser.refs


@pytest.fixture(scope="module")
def server(tiny_bundle, tmp_path_factory):
    with live_server(tiny_bundle, tmp_path_factory.mktemp("ui"), AKHBAR_API_TOKEN=TOKEN) as server:
        yield server


@pytest.mark.slow
def test_page_loads_without_the_token_and_the_api_still_needs_it(server):
    page = httpx.get(server.url + "/ui", timeout=10)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert '<html lang="ar" dir="rtl">' in page.text
    assert "default-src 'none'" in page.headers["content-security-policy"]
    for asset in ("/ui/", "/ui/ui.css", "/ui/ui.js"):
        assert httpx.get(server.url + asset, timeout=10).status_code == 200, asset
    assert httpx.get(server.url + "/ui/nothing.js", timeout=10).status_code == 404
    config = httpx.get(server.url + "/ui/page.json", timeout=10).json()
    assert config == {"token_required": True, "sample": SAMPLE_ARTICLE}
    assert (
        httpx.post(
            server.url + "/analyze", json={"articles": [{"text": "نص"}]}, timeout=30
        ).status_code
        == 401
    )
    assert server.post("/analyze", {"articles": [{"text": "نص"}]}).status_code == 200


def _chromium() -> str:
    path = shutil.which("chromium")
    if not path:  # fail, not skip: make setup installs it (Makefile, target browser)
        pytest.fail(
            "Debian's chromium is not on PATH; the reading-page test needs it. "
            "Run `make browser` (as root it runs apt-get install chromium)."
        )
    return path


@pytest.mark.slow
def test_reading_page_in_a_real_browser(server, tmp_path):
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:  # fail, not skip: it is in the dev extra
        pytest.fail("playwright is not installed; run `make setup` (the dev extra has it).")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=_chromium(), args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1000, "height": 800}, locale="ar")
            page.set_default_timeout(20_000)
            requests: list[str] = []
            page.on("request", lambda r: requests.append(r.url))
            _analyze_the_sample(page, server, tmp_path)
            _errors_keep_the_input(page)
            _narrow_screen(page, tmp_path)
            assert requests and all(u.startswith(server.url + "/") for u in requests), requests
        finally:
            browser.close()


def _analyze_the_sample(page, server, tmp_path) -> None:
    from playwright.sync_api import expect

    page.goto(server.url + "/ui")
    page.locator("#token").wait_for(state="visible")  # the service has a token: the page asks

    page.click("#sample")
    assert page.input_value("#text") == SAMPLE_ARTICLE["text"]
    assert page.locator("#claims input").count() == 2
    # Remove the second claim, add another: still two claims.
    page.click("#claims li:nth-child(2) button.remove")
    page.click("#add-claim")
    page.locator("#claims li:nth-child(2) input").fill(NEW_CLAIM)
    claims = [SAMPLE_ARTICLE["claims"][0], NEW_CLAIM]
    assert [page.input_value(f"#claims li:nth-child({i}) input") for i in (1, 2)] == claims

    # Without the token: the API's 401 message beside the token field.
    with page.expect_response("**/analyze") as answer:
        page.click("#analyze")
    assert answer.value.status == 401
    expect(page.locator("#token-error")).to_contain_text("Bearer")

    page.fill("#token", TOKEN)
    with page.expect_response("**/analyze") as answer:
        page.click("#analyze")
    assert answer.value.status == 200
    [result] = answer.value.json()["results"]
    page.locator("#result").wait_for(state="visible")
    assert page.locator("#token").input_value() == TOKEN  # in memory, in the page
    assert (
        page.evaluate("Object.keys(localStorage).length + Object.keys(sessionStorage).length") == 0
    )

    # Summary: as many highlighted sentences as the API returned, each the API's own text.
    marked = page.eval_on_selector_all(
        "#article-text mark.sum",
        "ms => { const by = {}; ms.forEach(m => by[m.dataset.sum] = (by[m.dataset.sum] || '') + "
        "m.textContent); return by; }",
    )
    assert len(marked) == len(result["summary"]["sentences"]) >= 1
    assert [marked[str(i)] for i in range(len(marked))] == result["summary"]["sentences"]
    text = page.evaluate(
        "(() => { const t = document.getElementById('article-text').cloneNode(true);"
        " t.querySelectorAll('.ev-tag').forEach(n => n.remove()); return t.textContent; })()"
    )
    assert (
        text == SAMPLE_ARTICLE["text"]
    )  # the article's own text, whole, in order (less the claim tags)

    # Each claim: its label, a confidence bar, its evidence in the claim's colour.
    cards = page.locator("#stances > li")
    assert cards.count() == 2
    for i, stance in enumerate(result["stances"]):
        card = cards.nth(i)
        assert card.locator(".stance-label code").text_content() == stance["label"]
        assert card.locator(".confidence .bar .fill").count() == 1
        evidence = page.locator(f'#article-text .ev[data-claims~="{i}"]')
        assert (evidence.count() > 0) == bool(stance["evidence"])
    # Focus claim 1 (keyboard): only its evidence stays marked.
    cards.nth(0).focus()
    shown = page.eval_on_selector_all(
        "#article-text [data-claims]:not(.off)", "ns => ns.map(n => n.dataset.claims)"
    )
    assert all("0" in c.split() for c in shown)
    if result["stances"][0]["evidence"]:
        assert shown
    page.locator("#text").focus()  # blur: every claim's evidence again

    # Topic: a bar per label; model versions in small print.
    assert page.locator("#topic-bars li").count() == len(result["topic"]["scores"])
    assert result["topic"]["label"] in page.text_content("#topic-label")
    versions = page.text_content("#versions")
    assert all(v in versions for v in result["model_versions"].values())
    assert page.locator("#warnings").is_hidden() == (not result["warnings"])

    page.screenshot(path=str(tmp_path / "ui-page.png"), full_page=True)
    shot = tmp_path / "ui.png"  # the result, as the README shows it
    page.locator("#result").screenshot(path=str(shot))
    if os.environ.get("AKHBAR_UPDATE_SCREENSHOT") == "1":
        SCREENSHOT.parent.mkdir(exist_ok=True)
        shutil.copyfile(shot, SCREENSHOT)


def _errors_keep_the_input(page) -> None:
    from playwright.sync_api import expect

    # 503 (busy) and a network failure: said plainly, the input stays.
    page.route(
        "**/analyze",
        lambda route: route.fulfill(
            status=503,
            headers={"retry-after": "5", "content-type": "application/json"},
            body='{"error": "the service is busy"}',
        ),
    )
    page.click("#analyze")
    expect(page.locator("#status")).to_contain_text("503")
    assert "the service is busy" in page.text_content("#status")
    page.unroute("**/analyze")
    page.route("**/analyze", lambda route: route.abort())
    page.click("#analyze")
    expect(page.locator("#status")).to_contain_text("الشبكة")
    page.unroute("**/analyze")
    assert page.input_value("#text") == SAMPLE_ARTICLE["text"]
    assert page.locator("#claims input").count() == 2

    # An empty article: the API's own message beside the text box.
    page.fill("#text", "")
    with page.expect_response("**/analyze") as answer:
        page.click("#analyze")
    assert answer.value.status == 400
    [problem] = [
        d for d in answer.value.json()["detail"] if d["loc"][:3] == ["articles", 0, "text"]
    ]
    expect(page.locator("#text-error")).to_have_text(problem["msg"])
    assert page.get_attribute("#text", "aria-invalid") == "true"
    assert "text-error" in page.get_attribute("#text", "aria-describedby")
    assert page.locator("#claims input").count() == 2  # the rest of the input is kept


def _narrow_screen(page, tmp_path) -> None:
    page.set_viewport_size({"width": 360, "height": 740})
    assert page.evaluate(
        "document.documentElement.scrollWidth <= window.innerWidth + 1"
    )  # no sideways scroll
    page.screenshot(path=str(tmp_path / "ui-narrow.png"), full_page=True)
