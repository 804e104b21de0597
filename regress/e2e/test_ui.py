"""The web page's front door, through nginx: /ui/ serves www/ with a
same-origin-only CSP and revalidation; a browser's GET / without a
token goes there; API clients keep the classic answers.  (The page
itself is driven in Chromium by `make check-ui`.)"""

import os
import re

TOP = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
WWW = os.path.join(TOP, "www")

# What Chromium and Firefox send for a navigation.
BROWSER_ACCEPT = ("text/html,application/xhtml+xml,application/xml;q=0.9,"
                  "image/avif,image/webp,*/*;q=0.8")
CSP_RE = re.compile(r"^default-src 'self';")


def _json_error(r, status):
    assert r.status_code == status, (r.status_code, r.text)
    assert r.headers["Content-Type"].startswith("application/json")
    return r.json()


def test_browser_get_root_redirects_to_ui(s):
    for method in ("GET", "HEAD"):
        r = s.http(method, "/", headers={"Accept": BROWSER_ACCEPT})
        assert r.status_code == 302, (method, r.status_code, r.text)
        assert r.headers["Location"] == "/ui/", r.headers
        vary = [v.strip().lower() for v in r.headers["Vary"].split(",")]
        assert "accept" in vary and "authorization" in vary, vary
    # The query string does not change that.
    r = s.http("GET", "/?limit=5", headers={"Accept": "text/html"})
    assert r.status_code == 302 and r.headers["Location"] == "/ui/"


def test_api_clients_keep_classic_root(s):
    # curl, requests, fetch(): */* or JSON, no token -> the 403 of old.
    for accept in (None, "*/*", "application/json",
                   "application/json, text/plain, */*"):
        h = {} if accept is None else {"Accept": accept}
        body = _json_error(s.http("GET", "/", headers=h), 403)
        assert body["detail"] == "forbidden", (accept, body)
    # A token wins over an HTML Accept: the list, as JSON.
    _, _, tok = s.new_user("ui")
    link = s.shorten(tok, "https://example.org/ui-root")
    r = s.http("GET", "/", headers={"Accept": BROWSER_ACCEPT}, token=tok)
    assert r.status_code == 200, r.text
    assert [i["id"] for i in r.json()["items"]] == [link]
    # A bad token with an HTML Accept: still the API's 403, not a page.
    r = s.http("GET", "/", headers={"Accept": BROWSER_ACCEPT},
               token="Bearer not.a.token")
    assert _json_error(r, 403)["detail"] == "forbidden"
    # Other methods are never redirected.
    r = s.http("POST", "/", {"value": "https://example.org/"},
               headers={"Accept": BROWSER_ACCEPT})
    assert _json_error(r, 403)["detail"] == "forbidden"
    r = s.http("DELETE", "/", headers={"Accept": BROWSER_ACCEPT})
    assert _json_error(r, 403)["detail"] == "forbidden"
    # Nor are short links, whatever the browser asks for.
    r = s.http("GET", "/" + link, headers={"Accept": BROWSER_ACCEPT})
    assert r.status_code == 301
    assert r.headers["Location"] == "https://example.org/ui-root"


def test_ui_serves_www_with_csp_and_revalidation(s):
    r = s.http("GET", "/ui")
    assert r.status_code == 301 and r.headers["Location"] == "/ui/"
    types = {"": "text/html", "index.html": "text/html",
             "app.js": "text/javascript", "app.css": "text/css",
             "icon.svg": "image/svg+xml"}
    for name, ctype in types.items():
        r = s.http("GET", "/ui/" + name)
        assert r.status_code == 200, (name, r.status_code)
        assert r.headers["Content-Type"].split(";")[0] == ctype, (
            name, r.headers["Content-Type"])
        with open(os.path.join(WWW, name or "index.html"), "rb") as f:
            assert r.content == f.read(), name
        csp = r.headers.get("Content-Security-Policy", "")
        assert CSP_RE.match(csp), (name, csp)
        # Nothing but this origin, and no inline code.
        assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
        assert not re.search(r"https?:|\*|data:", csp), csp
        assert "frame-ancestors 'none'" in csp
        assert r.headers["X-Content-Type-Options"] == "nosniff"
        assert r.headers["Cache-Control"] == "no-cache", name
        # Text goes out compressed to clients that take it.
        if ctype != "image/svg+xml" or len(r.content) > 200:
            assert r.headers.get("Content-Encoding") == "gzip", name
        etag = r.headers["ETag"]
        again = s.http("GET", "/ui/" + name, headers={"If-None-Match": etag})
        assert again.status_code == 304, (name, again.status_code)
        assert CSP_RE.match(again.headers["Content-Security-Policy"])


def test_ui_unknown_file_is_a_json_404(s):
    for path in ("/ui/nope.html", "/ui/../etc/passwd", "/ui/.git/config"):
        r = s.http("GET", path)
        assert r.status_code in (400, 404), (path, r.status_code)
        assert r.headers["Content-Type"].startswith("application/json")
        assert "root:" not in r.text


def test_www_has_no_inline_code_or_third_party_assets(s):
    """What the CSP would refuse must not be there to begin with."""
    seen = []
    for name in sorted(os.listdir(WWW)):
        path = os.path.join(WWW, name)
        if not os.path.isfile(path):
            continue
        with open(path, encoding="utf-8") as f:
            text = f.read()
        seen.append(name)
        # Any absolute URL other than the SVG namespace would be a
        # third-party fetch (or a link the page does not need).
        urls = [u for u in re.findall(r"https?://[^\s\"'<>)]+", text)
                if not u.startswith("http://www.w3.org/2000/svg")
                and "example.org" not in u]
        assert urls == [], (name, urls)
        # No protocol-relative or other-scheme references either.
        refs = re.findall(r"\b(?:src|href)=\"([^\"]*)\"", text)
        assert [u for u in refs if u.startswith("//") or ":" in u] == [], \
            (name, refs)
        if name.endswith(".html"):
            assert re.search(r"<script(?![^>]*\bsrc=)", text) is None, \
                "inline <script> in " + name
            assert "<style" not in text, name
            assert re.search(r"\sstyle=", text) is None, name
            assert re.search(r"\son[a-z]+=", text) is None, \
                "inline event handler in " + name
        if name.endswith(".js"):
            # Text goes in through textContent; innerHTML would also
            # be refused by the CSP's Trusted Types.
            assert not re.search(r"\.(inner|outer)HTML\s*=|"
                                 r"insertAdjacentHTML|document\.write|"
                                 r"\beval\(|new Function", text), name
    assert {"index.html", "app.js", "app.css"} <= set(seen), seen
