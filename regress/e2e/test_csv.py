"""
End-to-end cases for export and import (issue 16), through nginx and
MariaDB: GET /export streams the caller's links as RFC 4180 CSV with
its headers, for a token or a key, never anyone else's, in bounded
memory at 30,000 links; POST /import reads shortd's own export (a round
trip gives the same file back), YOURLS's and Bitly's, reports every
skipped row with its line, keeps or renames ids, refuses more than
100,000 rows, leaves nothing behind when the database fails midway, and
does not hold up other users' requests while it runs.
"""

import csv
import datetime
import hashlib
import io
import os
import secrets
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_keys import _expect, _key, _show  # noqa: E402

HEADER = "id,url,title,tags,created_at,expires_at,max_visits,visits"
DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")
CSV_TYPE = {"Content-Type": "text/csv"}


def _export(s, tok=None, headers=None):
    r = s.http("GET", "/export", token=tok, headers=headers, timeout=300)
    assert r.status_code == 200, "GET /export: %s" % _show(r)
    return r


def _records(body):
    """The records of a CSV body (bytes), header first."""
    text = body.decode("utf-8")
    return list(csv.reader(io.StringIO(text, newline="")))


def _import(s, tok, data, status=200, headers=None, timeout=300):
    h = dict(CSV_TYPE)
    h.update(headers or {})
    r = s.http("POST", "/import", raw=data, headers=h, token=tok,
               timeout=timeout)
    return _expect(r, status, "POST /import")


def _count(s, user):
    return s.sql("SELECT COUNT(*) FROM urls WHERE `user` = %s",
                 (user,))[0][0]


def _bulk_insert(s, user, ids, url_of, created0=1600000000000000):
    """Links of user straight into the database, fast."""
    rows = []
    for k, i in enumerate(ids):
        u = url_of(k)
        rows.append((i, user, u, hashlib.sha256(u.encode()).digest(),
                     created0 + k, created0 + k))
    conn = s.db_connect()
    try:
        with conn.cursor() as c:
            for k in range(0, len(rows), 2000):
                c.executemany(
                    "INSERT INTO urls (id, `user`, value, value_hash, "
                    "created_us, updated_us) VALUES (%s, %s, %s, %s, %s, "
                    "%s)", rows[k:k + 2000])
    finally:
        conn.close()


def _today():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d")


# ------------------------------------------------------------ export


def test_export_round_trip(s):
    user, pw, tok = s.new_user("csv")
    links = [
        {"value": "https://example.com/a?x=1,2", "title":
         'Caf\u00e9, "quoted" \u2615', "tags": ["work", "x-1", "a_b"],
         "expires_at": "2099-01-02T03:04:05Z", "max_visits": 5},
        {"value": "https://example.com/plain"},
        {"value": "https://example.com/t", "title": "\u65e5\u672c\u8a9e "
         "title, with \"\"double\"\" quotes", "tags": ["one"]},
        {"value": "https://example.com/expired", "id": "exp-" +
         secrets.token_hex(3)},
    ]
    ids = []
    for body in links:
        got = _expect(s.http("POST", "/", body, token=tok), 201, "create")
        ids.append(got["id"])
    # Visits: the limited link counts at once, the others in batches.
    for _ in range(3):
        r = s.http("GET", "/" + ids[0])
        assert r.status_code == 301, _show(r)
    r = s.http("GET", "/" + ids[1])
    assert r.status_code == 301, _show(r)
    deadline = time.time() + 15
    while s.sql("SELECT visits FROM urls WHERE id = %s",
                (ids[1],))[0][0] != 1:
        assert time.time() < deadline, "visits not flushed"
        time.sleep(0.2)
    # An expired link is exported (and imported back) as it is.
    s.sql("UPDATE urls SET expires_us = 1000000 WHERE id = %s", (ids[3],))

    r = _export(s, tok)
    assert r.headers["Content-Type"] == "text/csv; charset=utf-8", r.headers
    assert r.headers["Content-Disposition"] == \
        'attachment; filename="shortd-%s-%s.csv"' % (user, _today()), \
        r.headers
    assert r.headers["Cache-Control"] == "no-store", r.headers
    body = r.content
    assert body.startswith((HEADER + "\r\n").encode()), body[:100]
    # CRLF line ends only, and a quoted field for commas and quotes.
    assert body.count(b"\n") == body.count(b"\r\n") == len(links) + 1, body
    assert ('"Caf\u00e9, ""quoted"" \u2615"').encode() in body, body
    recs = _records(body)
    assert recs[0] == HEADER.split(","), recs[0]
    rows = {x[0]: x for x in recs[1:]}
    assert sorted(rows) == sorted(ids), (rows, ids)
    a = rows[ids[0]]
    assert a[1:4] == [links[0]["value"], links[0]["title"], "work|x-1|a_b"], a
    assert a[5:] == ["2099-01-02T03:04:05Z", "5", "3"], a
    assert a[4].endswith("Z") and a[4][:4] == _today()[:4], a
    assert rows[ids[1]][1:] == [links[1]["value"], "", "", rows[ids[1]][4],
                                "", "", "1"], rows[ids[1]]
    assert rows[ids[2]][2:4] == [links[2]["title"], "one"], rows[ids[2]]
    assert rows[ids[3]][5] == "1970-01-01T00:00:01Z", rows[ids[3]]
    # Oldest first.
    assert [x[0] for x in recs[1:]] == ids, recs

    # Everything gone, then imported back: the same file again.
    r = s.http("DELETE", "/", token=tok)
    assert r.status_code == 404 and r.json()["deleted"] == len(links), \
        _show(r)
    assert _count(s, user) == 0
    got = _import(s, tok, body)
    assert got == {"created": len(links), "format": "shortd",
                   "skipped": [], "renamed": []}, got
    again = _export(s, tok).content
    assert again == body, (again, body)
    r = s.http("GET", "/" + ids[2])
    assert r.status_code == 301 and r.headers["Location"] == \
        links[2]["value"], _show(r)
    # Tags are searchable again (url_tags rows came back too).
    got = _expect(s.http("GET", "/?tag=x-1", token=tok), 200, "?tag=")
    assert [x["id"] for x in got["items"]] == [ids[0]], got
    # Importing the same file twice changes nothing.
    got = _import(s, tok, body)
    assert got["created"] == 0 and got["renamed"] == [], got
    assert [(x["line"], x["id"], x["detail"]) for x in got["skipped"]] == \
        [(k + 2, i, "exists") for k, i in enumerate(ids)], got
    assert _export(s, tok).content == body


def test_export_key_head_and_owner_only(s):
    user, pw, tok = s.new_user("csvk")
    other, opw, otok = s.new_user("csvo")
    mine = s.shorten(tok, "https://example.com/mine")
    theirs = s.shorten(otok, "https://example.com/theirs")
    k = _key(s, tok, "export bot")
    r = _export(s, headers={"X-Api-Key": k["key"]})
    recs = _records(r.content)
    assert [x[0] for x in recs[1:]] == [mine], recs
    assert theirs not in r.text
    r = _export(s, tok=k["key"])
    assert [x[0] for x in _records(r.content)[1:]] == [mine]
    # HEAD: the headers of GET, no body.
    r = s.http("HEAD", "/export", token=tok)
    assert r.status_code == 200 and r.content == b"", _show(r)
    assert r.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert r.headers["Content-Disposition"].startswith(
        'attachment; filename="shortd-'), r.headers
    # An empty account: the header row alone.
    e, epw, etok = s.new_user("csve")
    assert _export(s, etok).content == (HEADER + "\r\n").encode()
    # Credentials first, like every owner route.
    for h in ({}, {"Authorization": "garbage"},
              {"X-Api-Key": "sk_AAAAAAAAAAAA_" + "A" * 43}):
        r = s.http("GET", "/export", headers=h)
        _expect(r, 403, "GET /export %r" % h, "forbidden")
        r = s.http("POST", "/import", raw=HEADER + "\r\n", headers=h)
        _expect(r, 403, "POST /import %r" % h, "forbidden")
    r = s.http("POST", "/export", token=tok)
    _expect(r, 405, "POST /export")
    assert r.headers["Allow"] == "GET, HEAD"
    r = s.http("GET", "/import", token=tok)
    _expect(r, 405, "GET /import")
    assert r.headers["Allow"] == "POST"


def _worker_hwm_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    raise AssertionError("no VmHWM for %d" % pid)


def test_export_streams_in_bounded_memory(s):
    """30,000 links of ~1 KB URLs make a ~33 MB file.  A worker that
    built it in memory would grow by at least that (a buffer that
    doubles: up to 64 MB); streamed page by page (1,000 links, ~1 MB,
    held once in the page's rows and once in its CSV) its peak RSS
    grows by a few MB.  The bound, 12 MB, is well under a third of the
    file.  One static worker serves it, with ASan's quarantine of freed
    memory kept small (by default it holds up to 256 MB of freed blocks,
    which would count every page ever read)."""
    n = 30000
    user, pw, tok = s.new_user("csvbig")
    pad = "p" * 1000
    ids = ["big%05d%s" % (k, secrets.token_hex(2)) for k in range(n)]
    _bulk_insert(s, user, ids,
                 lambda k: "https://example.com/%d/%s" % (k, pad))
    env = {"ASAN_OPTIONS": "detect_leaks=1:abort_on_error=0:"
           "quarantine_size_mb=1:log_path=" + os.path.join(s.root, "asan")}
    s.restart_shortd({"shortener_workers": 1}, env)
    s.wait_workers("shortener", 1)
    pids = s.workers("shortener")
    assert len(pids) == 1, pids
    # Warm up: the worker's first export sets up what every one needs.
    w, wpw, wtok = s.new_user("csvwarm")
    s.shorten(wtok, "https://example.com/warm")
    _export(s, wtok)
    before = _worker_hwm_kib(pids[0])
    t0 = time.time()
    r = _export(s, tok)
    secs = time.time() - t0
    after = _worker_hwm_kib(pids[0])
    assert s.workers("shortener") == pids, "the worker was replaced"
    assert "Content-Length" not in r.headers, r.headers
    assert len(r.content) > n * 1000, len(r.content)
    recs = _records(r.content)
    assert len(recs) == n + 1, len(recs)
    assert [x[0] for x in recs[1:]] == ids
    assert recs[-1][1] == "https://example.com/%d/%s" % (n - 1, pad)
    grew = (after - before) / 1024.0
    print("#   export of %d links (%.1f MB) in %.1f s; worker peak RSS "
          "grew %.1f MB" % (n, len(r.content) / 1e6, secs, grew))
    assert grew < 12, "peak RSS grew by %.1f MB" % grew


# ------------------------------------------------------------ import


def test_import_skips_with_lines(s):
    user, pw, tok = s.new_user("csvs")
    p = "s" + secrets.token_hex(3)
    other, opw, otok = s.new_user("csvs2")
    taken = _expect(s.http("POST", "/", {"value": "https://example.com/o",
                                         "id": p + "-taken"}, token=otok),
                    201, "other's link")["id"]
    mine = _expect(s.http("POST", "/", {"value": "https://example.com/m",
                                        "id": p + "-mine"}, token=tok),
                   201, "own link")["id"]
    same = _expect(s.http("POST", "/", {"value": "https://example.com/s",
                                        "id": p + "-same"}, token=tok),
                   201, "own link")["id"]
    lines = [
        HEADER,                                                   # 1
        "%s-a,https://example.com/1,,,,,," % p,                   # 2 ok
        "bad id!,https://example.com/2,,,,,,",                    # 3
        "users,https://example.com/3,,,,,,",                      # 4
        ",not a url,,,,,,",                                       # 5
        "%s-a,https://example.com/dup,,,,,," % p,                 # 6
        "%s-b,https://example.com/4,," % p,                       # 7
        'x"y,https://example.com/5,,,,,,',                        # 8
        '"%s-c\nsecond line",https://example.com/6,,,,,,' % p,    # 9-10
        ',https://example.com/7,"Title, with ""comma""",a|b,'
        '2020-01-01T00:00:00Z,2030-01-01T00:00:00Z,3,7',          # 11 ok
        ",https://example.com/8,,,,,0,",                          # 12
        ",https://example.com/9,,,,,,-1",                         # 13
        ",https://example.com/10,,BAD TAG,,,,",                   # 14
        ",https://example.com/11,,,yesterday,,,",                 # 15
        ",https://example.com/12,\"bad\ttitle\",,,,,",            # 16
        "%s,https://example.com/13,,,,,," % taken,                # 17 ren.
        "%s,https://example.com/other,,,,,," % mine,              # 18 ren.
        "%s,https://example.com/s,,,,,," % same,                  # 19 exists
        "",                                                       # blank
        "\"%s-d\",https://example.com/14,,,,,," % p,              # 21 ok
    ]
    got = _import(s, tok, "\r\n".join(lines) + "\r\n")
    skipped = [(x["line"], x["id"], x["detail"]) for x in got["skipped"]]
    assert skipped == [
        (3, "bad id!", "invalid id"),
        (4, "users", "reserved"),
        (5, None, "invalid url"),
        (6, p + "-a", "duplicate"),
        (7, None, "malformed"),
        (8, None, "malformed"),
        (9, p + "-c\nsecond line", "invalid id"),
        (12, None, "invalid max_visits"),
        (13, None, "invalid visits"),
        (14, None, "invalid tags"),
        (15, None, "invalid created_at"),
        (16, None, "invalid title"),
        (19, same, "exists"),
    ], got
    assert all(x["message"] for x in got["skipped"]), got
    assert got["created"] == 5, got
    ren = {x["id"]: x for x in got["renamed"]}
    assert sorted(ren) == sorted([taken, mine]), got
    assert ren[taken]["line"] == 17 and ren[mine]["line"] == 18, got
    for old, url in ((taken, "https://example.com/13"),
                     (mine, "https://example.com/other")):
        new = ren[old]["new_id"]
        assert new != old and len(new) == 7, ren
        r = s.http("GET", "/" + new)
        assert r.headers.get("Location") == url, _show(r)
    # The other user's link and the caller's own are untouched.
    assert s.http("GET", "/" + taken).headers["Location"] == \
        "https://example.com/o"
    assert s.http("GET", "/" + mine).headers["Location"] == \
        "https://example.com/m"
    assert _count(s, user) == 2 + 5
    row = s.sql("SELECT title, tags, created_us, expires_us, max_visits, "
                "visits FROM urls WHERE `user` = %s AND value = %s",
                (user, "https://example.com/7"))
    assert row == (('Title, with "comma"', "a|b", 1577836800000000,
                    1893456000000000, 3, 7),), row
    assert s.http("GET", "/" + p + "-a").headers["Location"] == \
        "https://example.com/1"
    assert s.http("GET", "/" + p + "-d").status_code == 301


def test_import_refusals(s):
    user, pw, tok = s.new_user("csvr")
    # Empty, or a header with no URL column: which columns are wanted.
    for data in ("", "\r\n", "foo,bar\r\n1,2\r\n"):
        got = _import(s, tok, data, 400)
        assert got["detail"] == "error" and "long_url" in got["message"] \
            and "keyword" in got["message"], got
    # A quote left open runs to the end: refused, naming its line.
    got = _import(s, tok, HEADER + "\r\n,https://example.com/1,,,,,,\r\n"
                  ',https://example.com/2,"open title,,,,,\r\n'
                  ",https://example.com/3,,,,,,\r\n", 400)
    assert "line 3" in got["message"], got
    got = _import(s, tok, "url,\"title\r\n", 400)
    assert "line 1" in got["message"], got
    got = _import(s, tok, 'ur"l,title\r\n', 400)
    assert "line 1" in got["message"], got
    got = _import(s, tok, HEADER + "\r\n", headers={
        "Content-Type": "multipart/form-data; boundary=x"}, status=400)
    assert "text/csv" in got["message"], got
    # A header alone imports nothing, happily.
    got = _import(s, tok, HEADER + "\r\n")
    assert got == {"created": 0, "format": "shortd", "skipped": [],
                   "renamed": []}, got
    # Binary junk is malformed records, never a 5xx.
    junk = bytes(range(256)) * 4
    got = _import(s, tok, b"url\n" + junk)
    assert got["created"] == 0 and got["skipped"], got
    assert _count(s, user) == 0


def test_import_yourls_and_bitly(s):
    user, pw, tok = s.new_user("csvy")
    with open(os.path.join(DATA, "yourls-export.csv"), "rb") as f:
        got = _import(s, tok, f.read())
    assert got["format"] == "YOURLS", got
    assert got["created"] == 4, got
    assert [(x["line"], x["id"], x["detail"]) for x in got["skipped"]] == [
        (5, "1", "invalid id"), (6, "bad", "invalid url")], got
    row = s.sql("SELECT value, title, created_us, visits FROM urls "
                "WHERE id = 'ozh'")
    assert row == (("http://ozh.org/", "Ozh RICHARD \u00b7 Blog",
                    1245593208000000, 158),), row
    assert s.http("GET", "/yourls").headers["Location"] == \
        "https://yourls.org/"

    user2, pw2, tok2 = s.new_user("csvb")
    with open(os.path.join(DATA, "bitly-export.csv"), "rb") as f:
        got = _import(s, tok2, f.read())
    assert got["format"] == "Bitly", got
    assert got["created"] == 3 and got["skipped"] == [], got
    row = s.sql("SELECT value, title, tags, created_us FROM urls "
                "WHERE id = '3xKpQ7n'")
    assert row == (("https://www.example.org/spring-sale?utm_source=tw",
                    "Spring sale, 20% off", "marketing|q2-launch",
                    1612783025000000),), row
    got = _expect(s.http("GET", "/?tag=q2-launch", token=tok2), 200, "tag")
    assert sorted(x["id"] for x in got["items"]) == ["3xKpQ7n", "4bRt9Zz"]


def _rows_file(n, prefix, ids=True):
    out = io.StringIO()
    out.write(HEADER + "\r\n")
    for k in range(n):
        out.write("%s,https://example.com/%s/%d,,t%d,,,,\r\n" % (
            "%s%06d" % (prefix, k) if ids else "", prefix, k, k % 7))
    return out.getvalue().encode()


def test_import_100k(s):
    user, pw, tok = s.new_user("csv100k")
    prefix = "h" + secrets.token_hex(3)
    data = _rows_file(100000, prefix)
    t0 = time.time()
    got = _import(s, tok, data)
    secs = time.time() - t0
    assert got["created"] == 100000 and got["skipped"] == [] and \
        got["renamed"] == [], {k: got[k] for k in ("created",)}
    print("#   import of 100,000 rows (%.1f MB): %.1f s, %.0f rows/s" % (
        len(data) / 1e6, secs, 100000 / secs))
    assert _count(s, user) == 100000
    for k in (0, 1, 4242, 55555, 99999):
        r = s.http("GET", "/%s%06d" % (prefix, k))
        assert r.status_code == 301 and r.headers["Location"] == \
            "https://example.com/%s/%d" % (prefix, k), _show(r)
    assert s.sql("SELECT COUNT(*) FROM url_tags WHERE `user` = %s",
                 (user,))[0][0] == 100000
    # One row more: refused whole.
    user2, pw2, tok2 = s.new_user("csv100k1")
    got = _import(s, tok2, _rows_file(100001, "i" + secrets.token_hex(3)),
                  413)
    assert got["detail"] == "too large" and "100000" in got["message"], got
    assert _count(s, user2) == 0


def test_import_rolls_back_on_database_failure(s):
    user, pw, tok = s.new_user("csvfail")
    prefix = "f" + secrets.token_hex(3)
    bad = "%s%06d" % (prefix, 1990)
    s.sql("CREATE TRIGGER csv_test_fail BEFORE INSERT ON urls FOR EACH ROW "
          "BEGIN IF NEW.id = '%s' THEN SIGNAL SQLSTATE '45000' SET "
          "MESSAGE_TEXT = 'test failure'; END IF; END" % bad)
    try:
        got = _import(s, tok, _rows_file(2000, prefix), 503)
        assert got["detail"] == "unavailable", got
    finally:
        s.sql("DROP TRIGGER csv_test_fail")
    assert _count(s, user) == 0
    assert s.sql("SELECT COUNT(*) FROM url_tags WHERE `user` = %s",
                 (user,))[0][0] == 0
    # And the same file goes in once the database behaves.
    got = _import(s, tok, _rows_file(2000, prefix))
    assert got["created"] == 2000, got


def test_import_does_not_block_others(s):
    """A 100k import stopped midway (the test holds the importing
    user's row locked, which its first INSERT must wait for) while
    another user redirects and creates: both are answered while the
    import is still running, then the import completes."""
    user, pw, tok = s.new_user("csvlong")
    other, opw, otok = s.new_user("csvquick")
    known = s.shorten(otok, "https://example.com/quick")
    data = _rows_file(100000, "l" + secrets.token_hex(3), ids=False)
    lock = s.db_connect(autocommit=False)
    result = {}

    def run():
        try:
            result["got"] = _import(s, tok, data)
        except BaseException as e:  # reported below
            result["error"] = e

    try:
        with lock.cursor() as c:
            c.execute("BEGIN")
            c.execute("SELECT username FROM users WHERE username = %s "
                      "FOR UPDATE", (user,))
        t = threading.Thread(target=run)
        t.start()
        # Wait for the import's first INSERT, which waits for the lock
        # (the foreign key's shared lock on the user's row); the lock
        # is held for less than shortd's 10 s statement timeout.
        deadline = time.time() + 60
        while not s.sql("SELECT COUNT(*) FROM information_schema."
                        "PROCESSLIST WHERE INFO LIKE 'INSERT INTO urls "
                        "(id, `user`, value, value_hash, created_us, "
                        "%'")[0][0]:
            assert t.is_alive(), result
            assert time.time() < deadline, "the import never waited"
            time.sleep(0.05)
        for k in range(6):
            r = s.http("GET", "/" + known, timeout=10)
            assert r.status_code == 301, _show(r)
            i = s.shorten(otok, "https://example.com/quick/%d" % k)
            assert s.http("GET", "/" + i).status_code == 301
        assert t.is_alive() and "got" not in result, \
            "the import ended before the others were answered"
    finally:
        lock.rollback()
        lock.close()
    t.join(120)
    assert not t.is_alive(), "the import did not finish"
    assert "error" not in result, result.get("error")
    assert result["got"]["created"] == 100000, result["got"]["created"]
