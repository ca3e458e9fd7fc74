"""The web client as nginx serves it (no browser): every file of ui/ with
the type a browser needs, the strict Content-Security-Policy, and nothing
in ui/ that would need more than that policy allows (inline code, files
from other origins)."""
from __future__ import annotations

import http.client
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
UI = REPO / "ui"

TYPES = {".html": "text/html", ".css": "text/css",
         ".js": "text/javascript", ".svg": "image/svg+xml"}

UI_FILES = sorted(p for p in UI.rglob("*") if p.is_file()
                  and p.suffix in TYPES)


def fetch(edge, method, path, body=None):
    """(response, body) of one request; unlike Edge.https it does not need
    the connection to stay open (nginx closes it after a 400)."""
    conn = http.client.HTTPSConnection("127.0.0.1", edge.https_port,
                                       timeout=5, context=edge.tls_context())
    try:
        conn.request(method, path, body=body)
        resp = conn.getresponse()
        return resp, resp.read()
    finally:
        conn.close()


def csp_of(resp) -> dict[str, list[str]]:
    policy = resp.getheader("Content-Security-Policy") or ""
    out = {}
    for part in policy.split(";"):
        words = part.split()
        if words:
            out[words[0]] = words[1:]
    return out


@pytest.mark.parametrize("path", UI_FILES,
                         ids=[str(p.relative_to(UI)) for p in UI_FILES])
def test_every_ui_file_is_served_with_its_type(edge, path):
    url = "/" + str(path.relative_to(UI))
    resp, data, _, _ = edge.https("GET", url)
    assert resp.status == 200
    assert resp.getheader("Content-Type").split(";")[0] == \
        TYPES[path.suffix]
    assert data == path.read_bytes()
    assert resp.getheader("X-Content-Type-Options") == "nosniff"
    # revalidated, so a new version is never mixed with an old one
    assert "no-cache" in resp.getheader("Cache-Control", "")


def test_root_is_the_app(edge):
    resp, data, _, _ = edge.https("GET", "/")
    assert resp.status == 200
    assert resp.getheader("Content-Type") == "text/html; charset=utf-8"
    assert data == (UI / "index.html").read_bytes()


def test_policy_allows_only_this_origin_and_its_wss(edge):
    resp, _, _, _ = edge.https("GET", "/")
    csp = csp_of(resp)
    origin = f"localhost:{edge.https_port}"
    assert csp["default-src"] == ["'none'"]
    assert csp["script-src"] == ["'self'"]
    assert csp["style-src"] == ["'self'"]
    assert csp["img-src"] == ["'self'"]
    assert csp["connect-src"] == ["'self'", f"wss://{origin}"]
    assert csp["frame-ancestors"] == ["'none'"]
    assert csp["base-uri"] == ["'none'"]
    assert resp.getheader("Referrer-Policy") == "no-referrer"
    joined = " ".join(" ".join(v) for v in csp.values())
    assert "unsafe" not in joined and "*" not in joined


@pytest.mark.parametrize("path", ["/api/v1/health", "/nope.html",
                                  "/api/v1/no-such-thing"])
def test_policy_is_on_every_answer(edge, path):
    resp, _, _, _ = edge.https("GET", path)
    assert csp_of(resp).get("default-src") == ["'none'"]


@pytest.mark.parametrize("path", ["/.git/config", "/js/.hidden",
                                  "/../config/topology.json",
                                  "/js/", "/index.html/"])
def test_nothing_but_the_app_files(edge, path):
    resp, data = fetch(edge, "GET", path)
    assert resp.status in (400, 403, 404)
    assert b"topology" not in data and b"Index of" not in data


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE"])
def test_static_files_only_answer_get(edge, method):
    resp, _ = fetch(edge, method, "/index.html", body=b"x")
    assert resp.status in (403, 405)


def test_ui_sources_need_nothing_the_policy_forbids():
    """No inline script, style or handler, and no URL of another origin:
    the policy would block them (and no CDN may be used)."""
    html = (UI / "index.html").read_text()
    for m in re.finditer(r"<script\b([^>]*)>(.*?)</script>", html, re.S):
        assert "src=" in m.group(1) and not m.group(2).strip(), m.group(0)
    assert not re.search(r"<style\b", html)
    assert not re.search(r"\sstyle=", html)
    assert not re.search(r"\son[a-z]+=", html)
    for p in UI_FILES:
        text = p.read_text()
        urls = re.findall(r"(?:https?:|wss?:)?//[A-Za-z0-9.-]+\.[a-z]{2,}",
                          text)
        # the SVG namespace is a name, never fetched
        urls = [u for u in urls if u != "http://www.w3.org"]
        assert not urls, f"{p}: {urls}"
        if p.suffix == ".js":
            assert ".innerHTML" not in text, f"{p}: use dom.js h()"
            assert "eval(" not in text and "new Function" not in text
