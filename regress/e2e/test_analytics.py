"""
End-to-end cases for visit analytics (issue 15), through nginx and
MariaDB: what a redirect records (referer host, browser/OS/device from
real User-Agent strings, bots, countries from a small MaxMind DB the
test writes), GET /:id/visits with its paging and filters, bots never
using up a link, analytics switched off, bad input, and the schema's
version 4 with its in-place upgrade from version 3.
"""

import http.client
import json
import os
import subprocess
import time

import sys

import requests

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_features import (SCHEMA_V3, SCHEMA_VERSION,  # noqa: E402
                           _apply_schema, _create, _drop, _expect, _old_and_new, _owner_only_sub,
                           _parse_time, _refused, _rid, _show, _stats,
                           _user, _wait_visits)

FLUSH_WAIT = 15
CHROME_WIN = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
              "(KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36")
IPHONE = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_2 like Mac OS X) "
          "AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.2 "
          "Mobile/15E148 Safari/604.1")
GALAXY_TAB = ("Mozilla/5.0 (Linux; Android 13; SM-X700) AppleWebKit/537.36 "
              "(KHTML, like Gecko) SamsungBrowser/23.0 Chrome/115.0.0.0 "
              "Safari/537.36")
FIREFOX_MAC = ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10.15; rv:121.0) "
               "Gecko/20100101 Firefox/121.0")
GOOGLEBOT = ("Mozilla/5.0 (compatible; Googlebot/2.1; "
             "+http://www.google.com/bot.html)")
SLACKBOT = "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)"
FB_PREVIEW = ("facebookexternalhit/1.1 "
              "(+http://www.facebook.com/externalhit_uatext.php)")
CURL = "curl/8.5.0"

# (User-Agent, Referer) -> what GET /:id/visits shows:
# (referer, browser, os, device, bot)
VISITS = [
    ((CHROME_WIN, "https://www.Google.com/search?q=shortd&x=1"),
     ("www.google.com", "Chrome", "Windows", "desktop", False)),
    ((IPHONE, "https://t.co/AbC123"),
     ("t.co", "Safari", "iOS", "mobile", False)),
    ((GALAXY_TAB, "android-app://com.google.android.gm/"),
     ("com.google.android.gm", "Samsung Internet", "Android", "tablet",
      False)),
    ((FIREFOX_MAC, None),
     (None, "Firefox", "macOS", "desktop", False)),
    ((GOOGLEBOT, None), (None, "Googlebot", None, "bot", True)),
    ((SLACKBOT, "https://user:secret@slack.com:443/archives/x"),
     ("slack.com", "Slackbot", None, "bot", True)),
    ((CURL, None), (None, "curl", None, "bot", True)),
]
ITEM_KEYS = {"at", "referer", "country", "browser", "os", "device", "bot"}


def _get(s, i, ua, referer=None):
    h = {"User-Agent": ua}
    if referer is not None:
        h["Referer"] = referer
    return s.http("GET", "/" + i, headers=h)


def _visits(s, tok, i, query="", status=200):
    r = s.http("GET", "/%s/visits%s" % (i, query), token=tok)
    return _expect(r, status, "GET /%s/visits%s" % (i, query))


def _wait_records(s, tok, i, n, query=""):
    """All of i's visits once at least n are recorded (they come with
    the flush), else the last page seen."""
    deadline = time.time() + FLUSH_WAIT
    sep = "&" if "?" in query else "?"
    while True:
        got = _visits(s, tok, i, query + sep + "limit=1000")["items"]
        if len(got) >= n or time.time() > deadline:
            return got
        time.sleep(0.2)


def _shown(item):
    return (item["referer"], item["browser"], item["os"], item["device"],
            item["bot"])


def test_visit_records(s):
    tok = _user(s, "anr")
    i = s.shorten(tok, "https://example.com/analytics/" + _rid())
    t0 = time.time()
    for (ua, ref), _ in VISITS:
        assert _get(s, i, ua, ref).status_code == 301
    humans = sum(1 for _, w in VISITS if not w[4])
    got = _wait_records(s, tok, i, len(VISITS))
    assert sorted(map(_shown, got), key=repr) == \
        sorted((w for _, w in VISITS), key=repr), got
    for it in got:
        assert set(it) == ITEM_KEYS and it["country"] is None, it
        assert t0 - 2 <= _at(it) <= time.time() + 1, it
    # Newest first.
    ats = [_at(it) for it in got]
    assert ats == sorted(ats, reverse=True), ats
    # Bots are recorded but never counted.
    st = _wait_visits(s, tok, i, humans)
    assert st["visits"] == humans, st
    time.sleep(1.5)
    assert _stats(s, tok, i)["visits"] == humans

    # Filters.
    only = _visits(s, tok, i, "?bots=only")["items"]
    assert sorted(map(_shown, only), key=repr) == sorted(
        (w for _, w in VISITS if w[4]), key=repr), only
    excl = _visits(s, tok, i, "?bots=exclude")["items"]
    assert [x["bot"] for x in excl] == [False] * humans, excl
    assert _visits(s, tok, i, "?bots=include")["items"] == got
    future = time.strftime("%Y-%m-%dT%H:%M:%SZ",
                           time.gmtime(time.time() + 3600))
    past = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t0 - 3600))
    assert _visits(s, tok, i, "?since=" + future)["items"] == []
    assert _visits(s, tok, i, "?until=" + past)["items"] == []
    assert _visits(s, tok, i, "?since=%s&until=%s" % (past, future))[
        "items"] == got
    # The period is [since, until): until at the newest visit's time
    # leaves it out.
    newest = got[0]["at"]
    assert got[0] not in _visits(s, tok, i, "?until=" + newest)["items"]

    # Pages of 3, each page's cursor leads to the next, nothing twice.
    seen, q = [], "?limit=3"
    while True:
        page = _visits(s, tok, i, q)
        assert len(page["items"]) <= 3, page
        seen += page["items"]
        if page["next"] is None:
            break
        assert isinstance(page["next"], str), page
        q = "?limit=3&cursor=" + page["next"]
    assert seen == got, (seen, got)
    # Paging with a filter keeps the filter.
    page = _visits(s, tok, i, "?limit=1&bots=only")
    page2 = _visits(s, tok, i, "?limit=5&bots=only&cursor=" + page["next"])
    assert page["items"] + page2["items"] == only and \
        page2["next"] is None, (page, page2)

    # Bad parameters: 400 naming the parameter.
    for q, word in (("?since=yesterday", "since"),
                    ("?until=2024-13-01T00:00:00Z", "until"),
                    ("?bots=maybe", "bots"), ("?bots=", None),
                    ("?cursor=%21%21%21", "cursor"),
                    ("?cursor=" + "A" * 300, "cursor"),
                    ("?cursor=MTIzLmFiYw", "cursor"),
                    ("?limit=0", "limit"), ("?limit=abc", "limit"),
                    ("?since=2030-01-01T00:00:00Z&until="
                     "2020-01-01T00:00:00Z", "since")):
        r = s.http("GET", "/%s/visits%s" % (i, q), token=tok)
        if word is None:
            _expect(r, 200, "GET /:id/visits" + q)
            continue
        body = _expect(r, 400, "GET /:id/visits" + q, "error")
        assert word in body["message"], (q, body)

    # Owner only, token first; 404 for an unknown id; GET and HEAD.
    _owner_only_sub(s, tok, i, "visits")

    # No address is stored: no column could hold one, no row has one,
    # and the log has none.
    cols = [c[0] for c in s.sql(
        "SELECT COLUMN_NAME FROM information_schema.COLUMNS WHERE "
        "TABLE_SCHEMA = 'shortd' AND TABLE_NAME = 'visits'")]
    assert sorted(cols) == sorted(["id", "at_ms", "uniq", "referer",
                                   "country", "browser", "os", "device"])
    rows = s.sql("SELECT * FROM visits WHERE id = %s", (i,))
    assert len(rows) == len(VISITS) and "127.0.0.1" not in repr(rows)
    assert "127.0.0.1" not in s.shortd_log()


def _at(item):
    return _parse_time(item["at"])


def test_bots_never_use_up_a_link(s):
    tok = _user(s, "anb")
    i = _create(s, tok, {"value": "https://example.com/two-visits",
                         "max_visits": 2})["id"]
    bots = (GOOGLEBOT, SLACKBOT, FB_PREVIEW, CURL)
    for ua in bots:
        r = _get(s, i, ua)
        assert r.status_code == 301, _show(r)
    # python-requests' own User-Agent is a script's too.
    r = requests.get(s.url + "/" + i, allow_redirects=False, timeout=30)
    assert r.status_code == 301, _show(r)
    assert _stats(s, tok, i)["visits"] == 0
    for _ in range(2):
        assert _get(s, i, IPHONE).status_code == 301
    _expect(_get(s, i, CHROME_WIN), 410, "a third human visit", "expired")
    st = _stats(s, tok, i)
    assert st["visits"] == 2 and st["state"] == "expired", st
    got = _wait_records(s, tok, i, len(bots) + 3)
    assert sorted(x["bot"] for x in got) == [False] * 2 + [True] * 5, got
    assert {x["browser"] for x in got if x["bot"]} == {
        "Googlebot", "Slackbot", "facebookexternalhit", "curl",
        "python-requests"}, got

    # A link without a limit: bots are recorded, not counted.
    j = s.shorten(tok, "https://example.com/counted/" + _rid())
    for ua in (GOOGLEBOT, CURL, IPHONE, SLACKBOT):
        assert _get(s, j, ua).status_code == 301
    assert len(_wait_records(s, tok, j, 4)) == 4
    assert _wait_visits(s, tok, j, 1)["visits"] == 1
    time.sleep(1.5)
    assert _stats(s, tok, j)["visits"] == 1
    st = _stats(s, tok, j)
    assert st["last_visit_at"] is not None, st


def test_bot_only_link_keeps_no_last_visit(s):
    """A link only bots visited has visits 0 and no last visit."""
    tok = _user(s, "anl")
    i = s.shorten(tok, "https://example.com/bots-only/" + _rid())
    for ua in (GOOGLEBOT, CURL):
        assert _get(s, i, ua).status_code == 301
    assert len(_wait_records(s, tok, i, 2)) == 2
    st = _stats(s, tok, i)
    assert st["visits"] == 0 and st["last_visit_at"] is None, st


def test_hostile_headers(s):
    """A huge or binary Referer or User-Agent is cut or left out, never
    a 5xx."""
    tok = _user(s, "anh")
    i = s.shorten(tok, "https://example.com/hostile/" + _rid())
    host = "a" * 300 + ".example"
    cases = [
        ({"User-Agent": "Mozilla/5.0 " + "x" * 6000 + " Googlebot/2.1",
          "Referer": "https://%s/path" % host}),
        ({"User-Agent": IPHONE, "Referer": "https://\u00e9t\u00e9.example/"
          .encode("utf-8").decode("latin-1")}),
        ({"User-Agent": "\x01\x02\x7f\xff".encode("latin-1")
          .decode("latin-1"), "Referer": "javascript:alert(1)"}),
        ({"User-Agent": "", "Referer": ""}),
    ]
    for h in cases:
        r = s.http("GET", "/" + i, headers=h)
        assert r.status_code == 301, (h, _show(r))
    got = _wait_records(s, tok, i, len(cases))
    assert len(got) == len(cases), got
    refs = sorted((x["referer"] or "") for x in got)
    # The long host is cut to 255 bytes; the others are no host.
    assert refs == ["", "", "", host[:255]], refs
    # Only the first KiB of a User-Agent is looked at.
    assert all(not x["bot"] for x in got), got


def test_analytics_off(s):
    """analytics = no: nothing is recorded and every GET counts, as
    before."""
    tok = _user(s, "anf")
    i = s.shorten(tok, "https://example.com/off/" + _rid())
    try:
        s.restart_shortd({"analytics": "no"})
        for ua in (CURL, IPHONE):
            assert _get(s, i, ua).status_code == 301
        assert _wait_visits(s, tok, i, 2)["visits"] == 2
        assert _visits(s, tok, i)["items"] == []
    finally:
        s.restart_shortd({})
    assert s.sql("SELECT COUNT(*) FROM visits WHERE id = %s", (i,)) == \
        ((0,),)


# ------------------------------------------------------------------
# Countries
# ------------------------------------------------------------------

MMDB_WRITER = r"""
use strict; use warnings;
use MaxMind::DB::Writer::Tree;
my ($out, @pairs) = @ARGV;
my %types = (country => 'map', iso_code => 'utf8_string');
my $tree = MaxMind::DB::Writer::Tree->new(
    ip_version => 6, record_size => 24,
    database_type => 'shortd-test-Country', languages => ['en'],
    description => { en => 'shortd test countries' },
    map_key_type_callback => sub { $types{ $_[0] } },
    remove_reserved_networks => 0, alias_ipv6_to_ipv4 => 1,
);
while (@pairs) {
    my ($net, $cc) = splice(@pairs, 0, 2);
    $tree->insert_network($net, { country => { iso_code => $cc } });
}
open my $fh, '>:raw', $out or die "$out: $!";
$tree->write_tree($fh);
close $fh or die "$out: $!";
"""


def _mmdb(s, name, pairs):
    """A MaxMind DB of networks -> country codes, written by Debian's
    libmaxmind-db-writer-perl."""
    path = os.path.join(s.root, name)
    args = ["perl", "-e", MMDB_WRITER, path]
    for net, cc in pairs:
        args += [net, cc]
    r = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=120)
    assert r.returncode == 0, r.stdout.decode(errors="replace")
    return path


def _get_from(s, source, i, ua=IPHONE):
    """GET /i from the loopback address source (nginx's remote_addr)."""
    c = http.client.HTTPConnection(s.host, s.port, timeout=30,
                                   source_address=(source, 0))
    try:
        c.request("GET", "/" + i, headers={"User-Agent": ua})
        return c.getresponse().status
    finally:
        c.close()


def test_countries(s):
    tok = _user(s, "anc")
    i = s.shorten(tok, "https://example.com/countries/" + _rid())
    db = _mmdb(s, "countries.mmdb", [("127.0.0.2/32", "DE"),
                                     ("127.0.0.3/32", "JP")])
    try:
        s.restart_shortd({"geoip_db": db})
        for src in ("127.0.0.2", "127.0.0.3", "127.0.0.3", "127.0.0.4"):
            assert _get_from(s, src, i) == 301
        got = _wait_records(s, tok, i, 4)
        assert sorted((x["country"] or "") for x in got) == \
            ["", "DE", "JP", "JP"], got
    finally:
        s.restart_shortd({})
    assert "127.0.0.2" not in s.shortd_log()
    assert "127.0.0.2" not in repr(s.sql("SELECT * FROM visits"))


def test_geoip_db_refused(s):
    """A geoip_db that is missing or no MaxMind DB stops shortd at
    start-up, and shortd -t says so; a good one passes."""
    good = _mmdb(s, "good.mmdb", [("192.0.2.0/24", "NL")])
    bad = os.path.join(s.root, "corrupt.mmdb")
    with open(bad, "wb") as f:
        f.write(os.urandom(4096))
    missing = os.path.join(s.root, "missing-%s.mmdb" % _rid())
    for path, why in ((missing, "cannot be read"),
                      (bad, "not a MaxMind DB file")):
        r = s.shortd_check({"geoip_db": path})
        assert r.returncode != 0, (path, r.stderr)
        assert "geoip_db" in r.stderr and path in r.stderr and \
            why in r.stderr, r.stderr
        assert "test failed" in r.stderr, r.stderr
    r = s.shortd_check({"geoip_db": good})
    assert r.returncode == 0 and "geoip_db = " + good in r.stdout, (
        r.stdout, r.stderr)
    # analytics off: the file is not read, so not checked.
    r = s.shortd_check({"geoip_db": missing, "analytics": "no"})
    assert r.returncode == 0, r.stderr
    try:
        before = len(s.shortd_log())
        try:
            s.restart_shortd({"geoip_db": bad})
        except Exception:
            pass
        assert s.wait_shortd(30) not in (None, 0)
        assert "geoip_db" in s.shortd_log()[before:]
    finally:
        s.restart_shortd({})


# ------------------------------------------------------------------
# Schema version 4
# ------------------------------------------------------------------

def _visit_tables(s, db):
    """The two tables of version 4, as sql/schema.sql describes them."""
    pk = [x[0] for x in s.sql(
        "SELECT COLUMN_NAME FROM information_schema.KEY_COLUMN_USAGE "
        "WHERE TABLE_SCHEMA = %s AND TABLE_NAME = 'visits' AND "
        "CONSTRAINT_NAME = 'PRIMARY' ORDER BY ORDINAL_POSITION", (db,))]
    assert pk == ["id", "at_ms", "uniq"], pk
    pk = [x[0] for x in s.sql(
        "SELECT COLUMN_NAME FROM information_schema.KEY_COLUMN_USAGE "
        "WHERE TABLE_SCHEMA = %s AND TABLE_NAME = 'visits_daily' AND "
        "CONSTRAINT_NAME = 'PRIMARY' ORDER BY ORDINAL_POSITION", (db,))]
    assert pk == ["id", "day"], pk
    fks = sorted(tuple(x) for x in s.sql(
        "SELECT TABLE_NAME, REFERENCED_TABLE_NAME, DELETE_RULE FROM "
        "information_schema.REFERENTIAL_CONSTRAINTS WHERE "
        "CONSTRAINT_SCHEMA = %s AND TABLE_NAME LIKE 'visits%%'", (db,)))
    assert fks == [("visits", "urls", "CASCADE"),
                   ("visits_daily", "urls", "CASCADE")], fks
    # No secondary index: the primary key serves every read.
    idx = {x[0] for x in s.sql(
        "SELECT INDEX_NAME FROM information_schema.STATISTICS WHERE "
        "TABLE_SCHEMA = %s AND TABLE_NAME = 'visits'", (db,))}
    assert idx == {"PRIMARY"}, idx


def test_schema_v4(s):
    _visit_tables(s, "shortd")
    # A link's visits go with it.
    tok = _user(s, "ans")
    i = s.shorten(tok, "https://example.com/deleted/" + _rid())
    assert _get(s, i, IPHONE).status_code == 301
    assert len(_wait_records(s, tok, i, 1)) == 1
    assert s.http("DELETE", "/" + i, token=tok).status_code == 204
    assert s.sql("SELECT COUNT(*) FROM visits WHERE id = %s", (i,)) == \
        ((0,),)


def test_schema_upgrade_from_v3(s):
    assert "VALUES (1), (2), (3)" in SCHEMA_V3 and "owner" not in SCHEMA_V3
    old, new, conn = _old_and_new(s, "shortd_v3_", SCHEMA_V3)
    try:
        with conn.cursor() as c:
            c.execute("INSERT INTO users VALUES ('cy', 'x', 1, 1)")
            c.execute("INSERT INTO urls (id, `user`, value, value_hash, "
                      "created_us, updated_us, visits) VALUES ('cy-a', "
                      "'cy', 'https://example.com/cy', "
                      "UNHEX(SHA2('https://example.com/cy', 256)), 1, 1, 4)")
        _refused(s, old, "schema version 3", "needs %d" % SCHEMA_VERSION,
                 "apply sql/schema.sql")
        for db in (old, old, new):
            _apply_schema(s, db)
        for db in (old, new):
            _visit_tables(s, db)
            assert s.sql("SELECT MAX(version) FROM %s.shortd_schema" %
                         db)[0][0] == SCHEMA_VERSION
        assert s.sql("SELECT visits FROM %s.urls" % old) == ((4,),)
        s.restart_shortd({"db_name": old})
        assert _get(s, "cy-a", IPHONE).status_code == 301
        s.restart_shortd({})
        assert s.sql("SELECT visits FROM %s.urls" % old) == ((5,),)
        assert s.sql("SELECT browser, os, device FROM %s.visits" % old) == \
            ((3, 3, 2),)
    finally:
        _drop(s, conn, (old, new))


# ------------------------------------------------------------------
# Summaries: GET /:id/stats and GET /stats
# ------------------------------------------------------------------

SUMMARY_KEYS = {"since", "until", "by_day", "bots", "referers", "countries",
                "browsers", "os", "devices"}


def _named(entries):
    """[{"name","visits"}] -> {name: visits}, each name once."""
    out = {}
    for e in entries:
        assert set(e) == {"name", "visits"} and e["visits"] > 0, e
        assert e["name"] not in out, entries
        out[e["name"]] = e["visits"]
    return out


def _today():
    return time.strftime("%Y-%m-%d", time.gmtime())


def _days(by_day):
    """by_day -> {date: (visits, bots)}; the dates follow each other."""
    out = {}
    prev = None
    for d in by_day:
        assert set(d) == {"date", "visits", "bots"}, d
        t = time.mktime(time.strptime(d["date"], "%Y-%m-%d"))
        if prev is not None:
            assert round((t - prev) / 86400) == 1, by_day
        prev = t
        out[d["date"]] = (d["visits"], d["bots"])
    return out


def test_stats_summaries(s):
    name, _, tok = s.new_user("ans")
    i = s.shorten(tok, "https://example.com/summary/" + _rid())
    j = s.shorten(tok, "https://example.com/summary-j/" + _rid())
    for (ua, ref), _ in VISITS:
        assert _get(s, i, ua, ref).status_code == 301
    for _ in range(2):
        assert _get(s, i, CHROME_WIN, "https://www.google.com/").status_code \
            == 301
    assert _get(s, j, IPHONE, "https://t.co/x").status_code == 301
    assert len(_wait_records(s, tok, i, len(VISITS) + 2)) == len(VISITS) + 2
    assert len(_wait_records(s, tok, j, 1)) == 1
    _wait_visits(s, tok, i, 6)

    st = _stats(s, tok, i)
    assert SUMMARY_KEYS <= set(st), st
    # The last 30 days by default: 31 dates, today last.
    days = _days(st["by_day"])
    assert len(days) == 31 and st["by_day"][-1]["date"] == _today(), days
    assert days[_today()] == (6, 3), days
    assert sum(v for v, _ in days.values()) == 6 and st["bots"] == 3, st
    assert _parse_time(st["until"]) - _parse_time(st["since"]) == \
        30 * 86400, st
    assert _named(st["referers"]) == {"www.google.com": 3, "t.co": 1,
                                      "com.google.android.gm": 1,
                                      None: 1}, st["referers"]
    assert _named(st["countries"]) == {None: 6}, st
    assert _named(st["browsers"]) == {"Chrome": 3, "Safari": 1,
                                      "Samsung Internet": 1,
                                      "Firefox": 1}, st["browsers"]
    assert _named(st["os"]) == {"Windows": 3, "iOS": 1, "Android": 1,
                                "macOS": 1}, st["os"]
    assert _named(st["devices"]) == {"desktop": 4, "mobile": 1,
                                     "tablet": 1}, st["devices"]
    # Tops are sorted, most visits first.
    assert st["referers"][0] == {"name": "www.google.com", "visits": 3}
    assert st["visits"] == 6

    # A period of its own: every day of it, zeros included.
    old = _stats_q(s, tok, i, "?since=2020-01-01T00:00:00Z&until="
                   "2020-01-04T00:00:00Z")
    assert old["by_day"] == [{"date": "2020-01-0%d" % d, "visits": 0,
                              "bots": 0} for d in (1, 2, 3)], old
    assert old["referers"] == [] and old["bots"] == 0, old
    for q, word in (("?since=soon", "since"), ("?until=1", "until"),
                    ("?since=1990-01-01T00:00:00Z", "since"),
                    ("?since=2030-01-01T00:00:00Z&until="
                     "2020-01-01T00:00:00Z", "since")):
        r = s.http("GET", "/%s/stats%s" % (i, q), token=tok)
        body = _expect(r, 400, "GET /:id/stats" + q, "error")
        assert word in body["message"], (q, body)

    # More than ten referers: the top ten and "other".
    k = s.shorten(tok, "https://example.com/many-referers/" + _rid())
    for n in range(12):
        assert _get(s, k, IPHONE, "https://r%02d.example/" % n) \
            .status_code == 301
    assert _get(s, k, IPHONE, "https://r05.example/again").status_code == 301
    assert len(_wait_records(s, tok, k, 13)) == 13
    refs = _stats(s, tok, k)["referers"]
    assert len(refs) == 11 and refs[0] == {"name": "r05.example",
                                           "visits": 2}, refs
    assert refs[-1] == {"name": "other", "visits": 2}, refs
    assert sum(x["visits"] for x in refs) == 13

    # All of the caller's links.
    r = s.http("GET", "/stats", token=tok)
    us = _expect(r, 200, "GET /stats")
    assert set(us) == SUMMARY_KEYS | {"user", "visits"}, us
    assert us["user"] == name and us["visits"] == 6 + 1 + 13 and \
        us["bots"] == 3, us
    assert _days(us["by_day"])[_today()] == (20, 3), us
    assert _named(us["referers"])["t.co"] == 2, us
    assert _named(us["browsers"]) == {"Chrome": 3, "Safari": 15,
                                      "Samsung Internet": 1, "Firefox": 1}
    other = _user(s, "anz")
    us = _expect(s.http("GET", "/stats", token=other), 200, "GET /stats")
    assert us["visits"] == 0 and us["referers"] == [] and \
        len(us["by_day"]) == 31, us
    _expect(s.http("GET", "/stats"), 403, "GET /stats without a token",
            "forbidden")
    r = s.http("HEAD", "/stats", token=tok)
    assert r.status_code == 200 and r.content == b"", _show(r)
    for method in ("POST", "PUT", "DELETE"):
        r = s.http(method, "/stats", token=tok)
        _expect(r, 405, "%s /stats" % method)
    r = s.http("GET", "/stats?bots=x&since=x", token=tok)
    assert "since" in _expect(r, 400, "GET /stats?since=x")["message"]


def _stats_q(s, tok, i, q):
    return _expect(s.http("GET", "/%s/stats%s" % (i, q), token=tok), 200,
                   "GET /%s/stats%s" % (i, q))


def _metric(s, name):
    r = s.http("GET", "/metrics", timeout=10)
    assert r.status_code == 200, _show(r)
    for line in r.text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError("no %s in /metrics:\n%s" % (name, r.text[-2000:]))


def test_orphan_visits_in_metrics(s):
    before = _metric(s, "shortd_orphan_visits_total")
    for _ in range(3):
        r = s.http("GET", "/nolink" + _rid())
        _expect(r, 404, "GET of an unknown id", "not found")
    # HEAD and other paths are not visits.
    assert s.http("HEAD", "/nolink" + _rid()).status_code == 404
    assert _metric(s, "shortd_orphan_visits_total") == before + 3


# ------------------------------------------------------------------
# Retention
# ------------------------------------------------------------------

def test_retention_rolls_up_old_visits(s):
    """Rows older than visits_keep_days are deleted by the pool and their
    counts survive per day in visits_daily, so by_day still shows them;
    newer rows stay."""
    tok = _user(s, "anr")
    i = s.shorten(tok, "https://example.com/retention/" + _rid())
    day_ms = 86400000
    today = int(time.time() * 1000) // day_ms * day_ms
    old = today - 400 * day_ms + 3600000          # 400 days ago, 01:00
    recent = today - 2 * day_ms + 7200000
    rows = [(old + k, 0x100 + k, 1 if k < 3 else 4) for k in range(5)]
    rows += [(recent, 7, 2)]
    conn = s.db_connect()
    try:
        with conn.cursor() as c:
            for at, u, dev in rows:
                c.execute("INSERT INTO visits (id, at_ms, uniq, referer, "
                          "country, browser, os, device) VALUES "
                          "(%s, %s, %s, 't.co', NULL, 1, 1, %s)",
                          (i, at, u, dev))
        conn.commit()
    finally:
        conn.close()
    before = _stats_q(s, tok, i, "?since=%s&until=%s" % (
        _iso(old - day_ms), _iso(old + 2 * day_ms)))
    assert _days(before["by_day"])[_date(old)] == (3, 2), before
    # A pass begins a few seconds after the workers start.
    s.restart_shortd({})
    deadline = time.time() + 30
    while time.time() < deadline and s.sql(
            "SELECT COUNT(*) FROM visits WHERE id = %s AND at_ms < %s",
            (i, today - 365 * day_ms))[0][0] > 0:
        time.sleep(0.3)
    assert s.sql("SELECT at_ms FROM visits WHERE id = %s", (i,)) == \
        ((recent,),), "old rows still there after 30 s"
    assert s.sql("SELECT day, visits, bots FROM visits_daily WHERE "
                 "id = %s", (i,))[0][1:] == (3, 2)
    after = _stats_q(s, tok, i, "?since=%s&until=%s" % (
        _iso(old - day_ms), _iso(old + 2 * day_ms)))
    assert after["by_day"] == before["by_day"] and after["bots"] == 2, (
        before, after)
    # The tops come from the rows kept: the rolled-up days have none.
    assert after["referers"] == [], after
    assert "rolled up into per-day counts" in s.shortd_log()
    # Deleting the link deletes its per-day counts too.
    assert s.http("DELETE", "/" + i, token=tok).status_code == 204
    assert s.sql("SELECT COUNT(*) FROM visits_daily WHERE id = %s",
                 (i,)) == ((0,),)


def _iso(ms):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ms / 1000))


def _date(ms):
    return time.strftime("%Y-%m-%d", time.gmtime(ms / 1000))
