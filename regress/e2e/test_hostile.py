"""
Hostile input, end to end (issue 8): oversized bodies and headers,
truncated and garbage FastCGI records sent straight to a pool socket,
slow senders, invalid UTF-8 and NUL bytes in every field, deeply nested
and huge JSON, duplicate JSON keys, SQL metacharacters everywhere and
tokens of every malformed shape.

Each input must get a clear 4xx with a JSON body (or, for broken
FastCGI, a closed connection), never a 5xx; and afterwards the service
must still be correct: a canary user's login, links and redirects work
and are unchanged, and no worker died (the master logs every abnormal
exit) and no new sanitizer report appeared.

Each test_*(s) gets the shared running stack; the one that needs a
short read_timeout restarts shortd and puts it back.
"""

import base64
import hashlib
import hmac
import json
import random
import select
import socket
import string
import struct
import threading
import time
import urllib.parse

FORM = {"Content-Type": "application/x-www-form-urlencoded"}

# ------------------------------------------------------------------
# Checking answers
# ------------------------------------------------------------------


def _show(r):
    return "%d %s %r" % (r.status_code,
                         {k: v for k, v in r.headers.items()
                          if k in ("X-Error-Source", "Content-Type",
                                   "Location")},
                         r.content[:200])


def _json(r, what):
    ct = r.headers.get("Content-Type", "")
    assert ct.split(";")[0].strip() == "application/json", \
        "%s: Content-Type %r: %s" % (what, ct, _show(r))
    try:
        return json.loads(r.content)
    except ValueError:
        raise AssertionError("%s: body is not JSON: %s" % (what, _show(r)))


def _refused(r, what, codes=(400,), detail=None):
    """r is a clear client error: one of codes, a JSON error body."""
    assert r.status_code < 500, "%s: a 5xx: %s" % (what, _show(r))
    assert r.status_code in codes, "%s: want %s, got %s" % (
        what, "/".join(map(str, codes)), _show(r))
    b = _json(r, what)
    assert isinstance(b, dict) and isinstance(b.get("detail"), str) and \
        isinstance(b.get("message"), str) and b["message"], \
        "%s: not an error body: %s" % (what, _show(r))
    if detail is not None:
        assert b["detail"] == detail, "%s: detail %r, want %r" % (
            what, b["detail"], detail)
    return b


def _raw_http(s, data, timeout=10):
    """Send raw bytes to nginx; read one reply (headers, and a body of
    Content-Length bytes) -> the reply's bytes.  Does not wait for the
    close, which nginx may delay while it drains an unread body."""
    out = b""
    with socket.create_connection((s.host, s.port), timeout=timeout) as c:
        c.sendall(data)
        while True:
            head, sep, body = out.partition(b"\r\n\r\n")
            if sep:
                n = 0
                for line in head.split(b"\r\n")[1:]:
                    k, _, v = line.partition(b":")
                    if k.strip().lower() == b"content-length":
                        n = int(v)
                if len(body) >= n:
                    return out
            try:
                chunk = c.recv(65536)
            except socket.timeout:
                return out
            if not chunk:
                return out
            out += chunk


def _raw_status(reply):
    """Status code of a raw HTTP reply (bytes) and its body."""
    head, _, body = reply.partition(b"\r\n\r\n")
    line = head.split(b"\r\n", 1)[0].split()
    assert len(line) >= 2 and line[0].startswith(b"HTTP/"), \
        "not an HTTP reply: %r" % reply[:200]
    return int(line[1]), head, body


class _Canary:
    """A user with links, created before the hostile input and checked
    after it; also notes the shortd log and sanitizer reports so that
    a worker dying or a report appearing is blamed on the test that
    caused it."""

    def __init__(self, s, tag):
        self.s = s
        self.user, self.pw, self.token = s.new_user("can" + tag)
        self.links = {}
        for n in range(3):
            url = "https://example.org/%s/%d?q='x'&n=%d" % (self.user, n, n)
            self.links[s.shorten(self.token, url)] = url
        self.log_at = len(s.shortd_log())
        self.reports = s.sanitizer_reports()

    def check(self, what=""):
        s = self.s
        for i, url in self.links.items():
            r = s.http("GET", "/" + i)
            assert r.status_code == 301 and \
                r.headers.get("Location") == url, \
                "after %s: GET /%s: %s" % (what, i, _show(r))
        tok = s.login(self.user, self.pw)
        r = s.http("GET", "/", token=tok)
        assert r.status_code == 200, "after %s: GET /: %s" % (what,
                                                              _show(r))
        got = {it["id"]: it["value"] for it in r.json()["items"]}
        assert got == self.links, "after %s: links %r, want %r" % (
            what, got, self.links)
        url = "https://example.org/%s/after" % self.user
        self.links[s.shorten(tok, url)] = url
        log = s.shortd_log()[self.log_at:]
        died = [l for l in log.splitlines()
                if "killed by signal" in l or "exited with status" in l]
        assert not died, "after %s: workers died:\n%s" % (what,
                                                          "\n".join(died))
        rep = s.sanitizer_reports()
        assert rep == self.reports, "after %s: new sanitizer reports:\n%s" \
            % (what, rep[len(self.reports):][-6000:])


# ------------------------------------------------------------------
# A small FastCGI client
# ------------------------------------------------------------------

BEGIN, ABORT, END, PARAMS, STDIN, STDOUT, STDERR = 1, 2, 3, 4, 5, 6, 7
GET_VALUES, GET_VALUES_RESULT, UNKNOWN_TYPE = 9, 10, 11


def fcgi_record(rtype, rid, content=b"", padding=None, version=1):
    if padding is None:
        padding = (8 - len(content) % 8) % 8
    return struct.pack(">BBHHBx", version, rtype, rid, len(content),
                       padding) + content + b"\0" * padding


def _fcgi_len(n):
    return struct.pack("B", n) if n < 128 else struct.pack(">I",
                                                           n | 0x80000000)


def fcgi_pairs(pairs):
    out = b""
    for k, v in pairs:
        k = k.encode() if isinstance(k, str) else k
        v = v.encode() if isinstance(v, str) else v
        out += _fcgi_len(len(k)) + _fcgi_len(len(v)) + k + v
    return out


def fcgi_stream(rtype, rid, data):
    """data as records of at most 32 KiB, then the empty one."""
    out = b""
    for i in range(0, len(data), 32768):
        out += fcgi_record(rtype, rid, data[i:i + 32768])
    return out + fcgi_record(rtype, rid)


def fcgi_begin(rid=1, role=1, keep=False):
    return fcgi_record(BEGIN, rid, struct.pack(">HB5x", role,
                                               1 if keep else 0))


def fcgi_params(method="GET", uri="/", body=b"", extra=()):
    path, _, query = uri.partition("?")
    p = [("REQUEST_METHOD", method), ("REQUEST_URI", uri),
         ("QUERY_STRING", query), ("DOCUMENT_URI", path),
         ("CONTENT_LENGTH", str(len(body)) if body else ""),
         ("CONTENT_TYPE", ""), ("REMOTE_ADDR", "127.0.0.1"),
         ("SERVER_PROTOCOL", "HTTP/1.1")]
    return p + list(extra)


def fcgi_request(method="GET", uri="/", body=b"", extra=(), rid=1,
                 keep=False, params=None):
    """The bytes of one complete request, as nginx would send it."""
    if params is None:
        params = fcgi_params(method, uri, body, extra)
    return (fcgi_begin(rid, keep=keep) +
            fcgi_stream(PARAMS, rid, fcgi_pairs(params)) +
            fcgi_stream(STDIN, rid, body))


class FcgiConn:
    def __init__(self, path, timeout=15):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(path)
        self.buf = b""
        self.closed = False

    def send(self, data, eof=False):
        try:
            self.sock.sendall(data)
            if eof:
                self.sock.shutdown(socket.SHUT_WR)
        except (BrokenPipeError, ConnectionResetError):
            self.closed = True

    def _fill(self):
        try:
            chunk = self.sock.recv(65536)
        except ConnectionResetError:
            chunk = b""
        if not chunk:
            self.closed = True
        self.buf += chunk
        return chunk

    def record(self):
        """The next record (type, id, content), or None at EOF."""
        while len(self.buf) < 8:
            if self.closed or not self._fill():
                return None
        ver, rtype, rid, clen, plen = struct.unpack(">BBHHBx",
                                                    self.buf[:8])
        assert ver == 1, "worker sent version %d: %r" % (ver, self.buf)
        while len(self.buf) < 8 + clen + plen:
            if self.closed or not self._fill():
                raise AssertionError("record cut short: %r" % self.buf)
        content = self.buf[8:8 + clen]
        self.buf = self.buf[8 + clen + plen:]
        return rtype, rid, content

    def response(self, rid=1):
        """Read one response -> (status, headers dict, body bytes)."""
        out = b""
        while True:
            rec = self.record()
            assert rec is not None, "connection closed before END_REQUEST;" \
                " got %r" % out[:300]
            rtype, got, content = rec
            assert got == rid, "record for id %d, want %d" % (got, rid)
            if rtype == STDOUT:
                out += content
            elif rtype == END:
                break
        head, _, body = out.partition(b"\r\n\r\n")
        headers = {}
        for line in head.split(b"\r\n"):
            k, _, v = line.partition(b":")
            headers[k.strip().decode().lower()] = v.strip().decode()
        status = int(headers.get("status", "200").split()[0])
        return status, headers, body

    def wait_closed(self, timeout):
        """True if the peer closes within timeout (data is discarded)."""
        deadline = time.time() + timeout
        while time.time() < deadline and not self.closed:
            r, _, _ = select.select([self.sock], [], [],
                                    max(0, deadline - time.time()))
            if r:
                self._fill()
        return self.closed

    def is_open(self):
        """Still open, without waiting (a closed peer reads EOF)."""
        r, _, _ = select.select([self.sock], [], [], 0)
        if r:
            self._fill()
        return not self.closed

    def close(self):
        self.sock.close()


def _fcgi_error(status, headers, body, what, codes):
    assert status in codes, "%s: status %d, want %s: %r" % (
        what, status, codes, body[:200])
    assert headers.get("content-type", "").startswith("application/json"), \
        "%s: %r" % (what, headers)
    b = json.loads(body)
    assert isinstance(b.get("detail"), str) and b.get("message"), \
        "%s: %r" % (what, body)


# ------------------------------------------------------------------
# Oversized bodies and headers (through nginx)
# ------------------------------------------------------------------

def test_oversized_bodies_and_headers(s):
    c = _Canary(s, "big")
    tok = c.token
    big = b'{"value":"https://example.org/' + b"a" * 70000 + b'"}'
    for method, path in (("POST", "/"), ("POST", "/users"),
                         ("POST", "/users/login"), ("PUT", "/users"),
                         ("PUT", "/" + next(iter(c.links)))):
        r = s.http(method, path, raw=big, token=tok)
        _refused(r, "%s %s with a 70 KB body" % (method, path), (413,))

    # Chunked, so nginx cannot refuse it from the headers alone.
    def chunks():
        for _ in range(20):
            yield b" " * 5000
    r = s.http("POST", "/users/login", raw=chunks())
    _refused(r, "chunked 100 KB login body", (413,))

    # A Content-Length announcing 10 MB is refused before the body.
    reply = _raw_http(
        s,
        b"POST /users/login HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
        b"Content-Length: 10485760\r\n\r\n" + b"{" * 1000)
    st, head, body = _raw_status(reply)
    assert st == 413 and json.loads(body)["detail"] == "too large", reply

    # Exactly at the limit is fine: a 65536-byte body is parsed.
    url = "https://example.org/exact/" + c.user
    doc = json.dumps({"value": url}).encode()
    r = s.http("POST", "/", raw=doc + b" " * (65536 - len(doc)), token=tok)
    assert r.status_code == 201, "a 65536-byte body: %s" % _show(r)
    c.links[r.json()["id"]] = url

    # Headers: one line too long for nginx's buffers, all of them too
    # many bytes, a request line too long.
    r = s.http("GET", "/", token=tok, headers={"X-Big": "b" * 10000})
    _refused(r, "a 10 KB header", (431,))
    r = s.http("GET", "/", token=tok,
               headers={"X-H%d" % n: "h" * 7000 for n in range(6)})
    _refused(r, "42 KB of headers", (431,))
    r = s.http("GET", "/" + "u" * 10000)
    _refused(r, "a 10 KB request line", (414,))
    r = s.http("GET", "/?limit=" + "9" * 9000, token=tok)
    _refused(r, "a 9 KB query", (414, 400))
    # Within nginx's limits but too many for shortd's FastCGI params
    # (512): shortd answers 431 itself.
    r = s.http("GET", "/", token=tok,
               headers={"X-P%d" % n: "1" for n in range(700)})
    _refused(r, "700 headers", (431,))
    assert "X-Error-Source" not in r.headers, "700 headers: %s" % _show(r)
    # A 7 KB Authorization is just a bad token.
    r = s.http("GET", "/", token="Bearer " + "A" * 7000)
    _refused(r, "a 7 KB token", (403,), "forbidden")
    c.check("oversized bodies and headers")


def test_oversized_in_shortd(s):
    """Past nginx's limits, shortd's own: a smaller max_body and
    max_params give 413 and 431 from shortd (no X-Error-Source)."""
    c = _Canary(s, "lim")
    try:
        s.restart_shortd({"max_body": 2048, "max_params": 4096})
        r = s.http("POST", "/", raw=b'{"value":"https://e.org/' +
                   b"a" * 3000 + b'"}', token=c.token)
        _refused(r, "3 KB body with max_body 2048", (413,))
        assert "X-Error-Source" not in r.headers, _show(r)
        r = s.http("GET", "/", token=c.token, headers={"X-A": "a" * 5000})
        _refused(r, "5 KB header with max_params 4096", (431,))
        assert "X-Error-Source" not in r.headers, _show(r)
    finally:
        s.restart_shortd()
    c.check("shortd's own limits")


# ------------------------------------------------------------------
# Broken FastCGI, straight to the pools' sockets
# ------------------------------------------------------------------

def _sock_of(s, pool):
    return s.auth_sock if pool == "auth" else s.shortener_sock


def test_fastcgi_garbage_and_truncation(s):
    c = _Canary(s, "fcgi")
    rnd = random.Random(8)
    noise = bytes(rnd.randrange(256) for _ in range(4096))
    valid = fcgi_request("GET", "/" + next(iter(c.links)))
    broken = [
        ("an HTTP request", b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
        ("random bytes", b"\x00" + noise),
        ("version 2", fcgi_record(BEGIN, 1, b"\0\1\0\0\0\0\0\0",
                                  version=2)),
        ("3 bytes of a header", valid[:3]),
        ("a header announcing 65535 bytes, 100 sent",
         fcgi_record(PARAMS, 1, b"x" * 100)[:8].replace(
             b"\x00\x64", b"\xff\xff", 1) + b"x" * 100),
        ("BEGIN_REQUEST of 16 bytes",
         fcgi_record(BEGIN, 1, b"\0\1" + b"\0" * 14)),
        ("BEGIN_REQUEST twice for one id", fcgi_begin(1) + fcgi_begin(1)),
        ("params cut inside a pair",
         fcgi_begin(1) + fcgi_record(PARAMS, 1, b"\x0eREQUEST_METHOD")),
        ("a params stream whose pair runs past its end",
         fcgi_begin(1) + fcgi_record(PARAMS, 1, b"\x7f\x7fab") +
         fcgi_record(PARAMS, 1)),
        ("a 4-byte name length of 2 GB",
         fcgi_begin(1) + fcgi_record(PARAMS, 1, b"\xff\xff\xff\xff\x01ab") +
         fcgi_record(PARAMS, 1)),
        ("half of a valid request", valid[:len(valid) // 2]),
        ("a valid request less its last byte", valid[:-1]),
        ("STDIN with no request", fcgi_record(STDIN, 7, b"data")),
        ("padding without content",
         fcgi_begin(1) + fcgi_record(PARAMS, 1, b"", padding=255)[:100]),
    ]
    for pool in ("shortener", "auth"):
        # A whole request, kept open, then junk: the response, then
        # the connection is dropped.
        f = FcgiConn(_sock_of(s, pool))
        try:
            f.send(fcgi_request("GET", "/" + next(iter(c.links)),
                                keep=True) + b"\0" * 64)
            status, headers, body = f.response(1)
            assert status in (301, 404), "%s pool: %d" % (pool, status)
            assert f.wait_closed(10), "%s pool: open after junk" % pool
        finally:
            f.close()
        for what, data in broken:
            f = FcgiConn(_sock_of(s, pool))
            try:
                f.send(data, eof=True)
                # No half response and no hang: the worker drops the
                # connection (what it may send first is whole records
                # of a protocol answer, never a response to a request
                # that did not arrive whole).
                assert f.wait_closed(10), \
                    "%s pool, %s: connection still open after 10 s" % (
                        pool, what)
                assert b"Status:" not in f.buf, \
                    "%s pool, %s: answered %r" % (pool, what, f.buf[:200])
            finally:
                f.close()

    # The protocol's own answers to records it does not serve.
    f = FcgiConn(s.shortener_sock)
    try:
        f.send(fcgi_begin(1, role=2))           # AUTHORIZER
        rtype, rid, content = f.record()
        assert (rtype, rid) == (END, 1) and content[4] == 3, \
            "unknown role: %r" % ((rtype, rid, content),)
        f.send(fcgi_record(99, 0, b"\0" * 8))   # an unknown type
        rtype, rid, content = f.record()
        assert (rtype, rid, content[0]) == (UNKNOWN_TYPE, 0, 99), \
            "unknown type: %r" % ((rtype, rid, content),)
        f.send(fcgi_record(GET_VALUES, 0, fcgi_pairs(
            [("FCGI_MPXS_CONNS", ""), ("NOPE" * 30, "")])))
        rtype, rid, content = f.record()
        assert rtype == GET_VALUES_RESULT and b"FCGI_MPXS_CONNS" in content \
            and b"NOPE" not in content, "get values: %r" % content
        # A second request id while one is active: CANT_MPX_CONN.
        f.send(fcgi_begin(1, keep=True) + fcgi_begin(2))
        rtype, rid, content = f.record()
        assert (rtype, rid) == (END, 2) and content[4] == 1, \
            "second id: %r" % ((rtype, rid, content),)
        # ... and request 1 is still served on the same connection.
        i = next(iter(c.links))
        f.send(fcgi_stream(PARAMS, 1, fcgi_pairs(fcgi_params(
            "GET", "/" + i))) + fcgi_stream(STDIN, 1, b""))
        status, headers, body = f.response(1)
        assert status == 301 and headers.get("location") == c.links[i], \
            "request after CANT_MPX: %d %r" % (status, headers)
    finally:
        f.close()

    # Requests that arrive whole but are wrong: a 4xx, then the kept
    # connection serves the next one.
    f = FcgiConn(s.shortener_sock)
    try:
        bad = [
            ("no REQUEST_METHOD", [("REQUEST_URI", "/")], (400,)),
            ("a URI without /", fcgi_params("GET", "http://x/"), (400,)),
            ("a NUL in the path", fcgi_params("GET", "/ab%00cd"), (400,)),
            ("a bad escape in the path", fcgi_params("GET", "/%zz"),
             (400,)),
            ("raw bytes in the path", fcgi_params("GET", "/\xff\xfe"),
             (404, 400)),
            ("a NUL in a param value",
             fcgi_params("GET", "/", extra=[("HTTP_AUTHORIZATION",
                                             b"Bearer a\0b")]), (403,)),
            ("a NUL in a param name",
             fcgi_params("GET", "/", extra=[(b"HTTP_\0X", "1")]), (403,)),
            ("600 params", fcgi_params("GET", "/", extra=[
                ("HTTP_X_%d" % n, "1") for n in range(600)]), (431,)),
            ("70 KB of params", fcgi_params("GET", "/", extra=[
                ("HTTP_X_BIG", "b" * 70000)]), (431,)),
        ]
        for n, (what, params, codes) in enumerate(bad):
            f.send(fcgi_request(rid=n + 1, keep=True, params=params))
            status, headers, body = f.response(n + 1)
            _fcgi_error(status, headers, body, what, codes)
        body = b'{"value":"https://e.org/' + b"a" * 70000 + b'"}'
        f.send(fcgi_request("POST", "/", body, rid=99, keep=True))
        status, headers, body = f.response(99)
        _fcgi_error(status, headers, body, "a 70 KB STDIN", (413,))
        # CONTENT_LENGTH that lies: the STDIN stream is the body.
        f.send(fcgi_request("POST", "/", b'{"value":1}', rid=100, keep=True,
                            extra=[("CONTENT_LENGTH", "999999")]))
        status, headers, body = f.response(100)
        _fcgi_error(status, headers, body, "a lying CONTENT_LENGTH",
                    (403,))
        # An ABORT_REQUEST mid-request ends it; the next one is served.
        f.send(fcgi_begin(5, keep=True) + fcgi_record(ABORT, 5))
        rtype, rid, content = f.record()
        assert (rtype, rid) == (END, 5), "abort: %r" % ((rtype, rid),)
        i = next(iter(c.links))
        f.send(fcgi_request("HEAD", "/" + i, rid=6, keep=True))
        status, headers, body = f.response(6)
        assert status == 301 and body == b"", "HEAD after abort: %d %r" % (
            status, body)
    finally:
        f.close()
    c.check("broken FastCGI")


# ------------------------------------------------------------------
# Slow senders
# ------------------------------------------------------------------

def test_slow_senders_are_dropped(s):
    """Connections that stall, trickle or never send are closed after
    read_timeout, and meanwhile the single worker of each pool serves
    everyone else (a worker stops accepting while a request arrives,
    but only for the first 100 ms of it).  Slow HTTP clients never
    reach shortd: nginx buffers each request whole."""
    c = _Canary(s, "slow")
    i, url = next(iter(c.links.items()))
    timeout = 6
    conns, https = [], []
    stop = threading.Event()
    th = None
    try:
        s.restart_shortd({"read_timeout": timeout, "auth_workers": 1,
                          "shortener_workers": 1})
        t0 = time.time()
        req = fcgi_request("GET", "/" + i)
        for pool in ("shortener", "auth"):
            path = _sock_of(s, pool)
            half = FcgiConn(path, timeout=30)
            half.send(req[:len(req) // 2])
            conns.append(("%s: half a request" % pool, half))
            hdr = FcgiConn(path, timeout=30)
            hdr.send(req[:5])
            conns.append(("%s: half a header" % pool, hdr))
            for n in range(5):
                conns.append(("%s: silent #%d" % (pool, n),
                              FcgiConn(path, timeout=30)))
        trickle = FcgiConn(s.shortener_sock, timeout=30)

        def drip():
            # One byte every 0.2 s: a request that would take minutes.
            for b in req:
                if stop.wait(0.2) or trickle.closed:
                    return
                trickle.send(bytes([b]))
        th = threading.Thread(target=drip, daemon=True)
        th.start()
        conns.append(("trickle", trickle))
        # Slow HTTP clients: half a body each, then nothing.
        for n in range(10):
            h = socket.create_connection((s.host, s.port), timeout=30)
            h.sendall(b"POST / HTTP/1.1\r\nHost: x\r\n"
                      b"Authorization: " + c.token.encode() + b"\r\n"
                      b"Content-Length: 100\r\n\r\n{\"value\":")
            https.append(h)

        # Served meanwhile, by the same single workers, while every
        # slow connection is still held open.
        for n in range(2):
            r = s.http("GET", "/" + i, timeout=10)
            assert r.status_code == 301 and \
                r.headers.get("Location") == url, \
                "GET with %d stalled connections: %s" % (len(conns),
                                                         _show(r))
            r = s.http("POST", "/users/login", {"username": "x",
                                                "password": "y"},
                       timeout=10)
            _refused(r, "login while stalled", (403,), "forbidden")
        served_at = time.time() - t0
        still = [what for what, f in conns if f.is_open()]
        assert len(still) == len(conns), \
            "only %d of %d slow connections open %.1f s after they " \
            "began (read_timeout %d)" % (len(still), len(conns),
                                         served_at, timeout)
        assert served_at < timeout, \
            "serving 4 requests took %.1f s: nothing shows they were " \
            "served while the slow ones were held" % served_at

        # All of them dropped once read_timeout has passed (generous
        # bound: the machine may be loaded).
        for what, f in conns:
            assert f.wait_closed(timeout + 15 - (time.time() - t0)), \
                "%s: still open %.1f s after it began (read_timeout %d)" \
                % (what, time.time() - t0, timeout)
            assert b"Status:" not in f.buf, "%s: %r" % (what, f.buf[:100])
        took = time.time() - t0
        assert took >= timeout - 0.5, \
            "dropped after %.1f s, before read_timeout %d" % (took, timeout)
        r = s.http("GET", "/" + i)
        assert r.status_code == 301, "after the drops: %s" % _show(r)
    finally:
        for h in https:
            h.close()
        stop.set()
        if th is not None:
            th.join(5)
        for _, f in conns:
            f.close()
        s.restart_shortd()
    c.check("slow senders")


# ------------------------------------------------------------------
# Invalid UTF-8 and NUL bytes in every field
# ------------------------------------------------------------------

# JSON string literals (raw bytes of the body) that are no valid value.
BAD_JSON_STRINGS = [
    b'"\\u0000"', b'"ab\\u0000cd"', b'"\xff"', b'"ab\xfe\xffcd"',
    b'"\xc0\x80"', b'"\xed\xa0\x80"', b'"\\ud800"', b'"\\udc00x"',
    b'"\xf4\x90\x80\x80"', b'"a\x00b"', b'"a\x01b"', b'"\xe2\x82"',
]
BAD_FORM_VALUES = ["%00", "ab%00cd", "%FF", "%C0%80", "%ED%A0%80",
                   "%E2%82", "%F8%88%80%80%80"]


def _json_body(fields):
    """A JSON object from {name: raw literal bytes}."""
    return b"{" + b",".join(json.dumps(k).encode() + b":" + v
                            for k, v in fields.items()) + b"}"


def test_invalid_utf8_and_nul_everywhere(s):
    c = _Canary(s, "utf")
    tok = c.token
    i = next(iter(c.links))
    lit = lambda v: json.dumps(v).encode()  # noqa: E731
    calls = [
        ("POST", "/users", None,
         {"username": lit(s.unique("u8")), "password": lit("pw")}),
        ("POST", "/users/login", None,
         {"username": lit(c.user), "password": lit(c.pw)}),
        ("PUT", "/users", None,
         {"username": lit(c.user), "password": lit(c.pw),
          "new_password": lit("new")}),
        ("POST", "/", tok, {"value": lit("https://example.org/")}),
        ("PUT", "/" + i, tok, {"url": lit("https://example.org/")}),
    ]
    n = 0
    for method, path, token, fields in calls:
        for name in fields:
            for bad in BAD_JSON_STRINGS:
                body = _json_body(dict(fields, **{name: bad}))
                r = s.http(method, path, raw=body, token=token)
                _refused(r, "%s %s with %s=%r" % (method, path, name, bad),
                         (400,), "error")
                n += 1
            for bad in BAD_FORM_VALUES:
                form = "&".join(
                    "%s=%s" % (k, bad if k == name else
                               urllib.parse.quote(json.loads(v)))
                    for k, v in fields.items())
                r = s.http(method, path, raw=form, token=token,
                           headers=FORM)
                _refused(r, "form %s %s with %s=%s" % (method, path, name,
                                                       bad), (400,), "error")
                n += 1
            # Raw non-UTF-8 bytes straight in a form body.
            form = "&".join("%s=%s" % (k, urllib.parse.quote(json.loads(v)))
                            for k, v in fields.items() if k != name)
            r = s.http(method, path, raw=form.encode() + b"&" +
                       name.encode() + b"=\xff\xfe", token=token,
                       headers=FORM)
            _refused(r, "raw bytes in form field %s of %s %s" % (
                name, method, path), (400,), "error")
    assert n > 100

    # The path, the query and the headers.
    for path in ("/%00", "/abc%00def", "/%ff", "/%C0%80", "/%", "/%zz",
                 "/\xff\xfe".encode("latin-1").decode("latin-1")):
        r = s.http("GET", path)
        _refused(r, "GET %r" % path, (400, 404))
    for q in ("limit=%00", "limit=1%00", "after=%FF", "after=%00abc",
              "limit=%C0%B1", "after=" + "%ff" * 50):
        r = s.http("GET", "/?" + q, token=tok)
        _refused(r, "GET /?%s" % q, (400,), "error")
    for auth in (b"Bearer \xff\xfe", b"\xc0\x80", b"Bearer a\xffb.c.d"):
        r = s.http("GET", "/", headers={"Authorization": auth})
        _refused(r, "Authorization %r" % auth, (403,), "forbidden")
    r = s.http("POST", "/", raw=json.dumps({"value": "https://e.org/"}),
               token=tok, headers={"Content-Type": b"\xff\xfe/\x80"})
    assert r.status_code == 201, "odd Content-Type bytes: %s" % _show(r)
    c.links[r.json()["id"]] = "https://e.org/"
    # nginx refuses a NUL or a raw control byte in the request itself.
    for raw in (b"GET /\x00 HTTP/1.1\r\nHost: x\r\n\r\n",
                b"GET / HTTP/1.1\r\nHost: x\r\nAuthorization: a\x00b\r\n\r\n",
                b"G\xffT / HTTP/1.1\r\nHost: x\r\n\r\n",
                b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03"):
        st, head, body = _raw_status(_raw_http(s, raw))
        assert st == 400 and json.loads(body)["detail"] == "error", \
            "raw %r: %d %r" % (raw, st, body)

    # Valid UTF-8 is not caught by any of this: a password with
    # accents, CJK and an emoji works.
    u, pw = s.unique("u8ok"), "p\u00e4ss w\u00f6rd \u6f22\u5b57 \U0001F600"
    s.register(u, pw)
    t2 = s.login(u, pw)
    url = "https://example.org/caf\u00e9/\u6f22"
    r = s.http("POST", "/", {"value": url}, token=t2)
    if r.status_code == 201:
        g = s.http("GET", "/" + r.json()["id"])
        assert g.status_code == 301, _show(g)
    else:
        _refused(r, "non-ASCII URL", (400,), "error")
    c.check("invalid UTF-8 and NUL bytes")


# ------------------------------------------------------------------
# Deep, huge and duplicated JSON
# ------------------------------------------------------------------

def test_deep_and_huge_json(s):
    c = _Canary(s, "deep")
    tok = c.token
    bodies = [
        ("60000 [", b"[" * 60000),
        ("60000 {\"a\":", b'{"a":' * 12000),
        ("nested value", b'{"value":' + b"[" * 30000 + b"]" * 30000 + b"}"),
        ("nested object value",
         b'{"value":' + b'{"a":' * 6000 + b"1" + b"}" * 6000 + b"}"),
        ("5000 keys", b"{" + b",".join(b'"k%d":%d' % (n, n)
                                       for n in range(5000)) + b"}"),
        ("5000 array items", b'{"value":[' + b",".join(
            b"1" for _ in range(5000)) + b"]}"),
        ("a 60 KB URL", b'{"value":"https://example.org/' + b"a" * 60000 +
         b'"}'),
        ("a 60 KB key", b'{"' + b"k" * 60000 + b'":"https://e.org/"}'),
        ("a huge number", b'{"value":' + b"9" * 60000 + b"}"),
        ("1e999999", b'{"value":1e999999}'),
        ("60 KB of whitespace", b" " * 60000),
        ("an empty body", b""),
        ("a lone {", b"{"),
        ("an unterminated string", b'{"value":"https://e.org/'),
        ("two objects", b'{"value":"https://e.org/"}{"value":"x"}'),
        ("a trailing comma", b'{"value":"https://e.org/",}'),
        ("single quotes", b"{'value':'https://e.org/'}"),
        ("a BOM", b'\xef\xbb\xbf{"value":"https://e.org/"}'),
        ("a 60 KB escape run", b'{"value":"' + b"\\u0041" * 10000 + b'"}'),
        ("value an object", b'{"value":{"value":"https://e.org/"}}'),
        ("value an array", b'{"value":["https://e.org/"]}'),
        ("value null", b'{"value":null}'),
        ("value true", b'{"value":true}'),
        ("value a number", b'{"value":12}'),
    ]
    before = c.s.sql("SELECT COUNT(*) FROM urls")[0][0]
    for what, body in bodies:
        for method, path in (("POST", "/"), ("POST", "/users"),
                             ("POST", "/users/login"), ("PUT", "/users")):
            r = s.http(method, path, raw=body, token=tok)
            _refused(r, "%s %s: %s" % (method, path, what), (400,), "error")
    for what, body in bodies[:4]:
        r = s.http("POST", "/", raw=body, token=tok, headers=FORM)
        _refused(r, "as a form: %s" % what, (400,), "error")
    # A URL of exactly 2048 bytes is the longest accepted.
    u2048 = "https://example.org/" + "b" * (2048 - 20)
    r = s.http("POST", "/", {"value": u2048}, token=tok)
    assert r.status_code == 201, "2048-byte URL: %s" % _show(r)
    c.links[r.json()["id"]] = u2048
    _refused(s.http("POST", "/", {"value": u2048 + "b"}, token=tok),
             "2049-byte URL", (400,), "error")
    assert c.s.sql("SELECT COUNT(*) FROM urls")[0][0] == before + 1
    c.check("deep and huge JSON")


def test_duplicate_keys(s):
    c = _Canary(s, "dup")
    tok = c.token
    i = next(iter(c.links))
    a, b = s.unique("dupa"), s.unique("dupb")
    cases = [
        ("POST", "/users", b'{"username":"%s","username":"%s",'
         b'"password":"p"}' % (a.encode(), b.encode())),
        ("POST", "/users", b'{"username":"%s","password":"p",'
         b'"password":"q"}' % a.encode()),
        ("POST", "/users/login", b'{"username":"%s","password":"x",'
         b'"password":"%s"}' % (c.user.encode(), c.pw.encode())),
        ("POST", "/users/login", b'{"username":"nobody-here",'
         b'"username":"%s","password":"%s"}' % (c.user.encode(),
                                                 c.pw.encode())),
        ("PUT", "/users", b'{"username":"%s","password":"%s",'
         b'"new_password":"n1","new_password":"n2"}' % (
             c.user.encode(), c.pw.encode())),
        ("PUT", "/users", b'{"username":"%s","password":"%s",'
         b'"old_password":"%s","new_password":"n1"}' % (
             c.user.encode(), c.pw.encode(), c.pw.encode())),
        ("PUT", "/users", b'{"username":"%s","password":"%s",'
         b'"new_password":"n1","new-password":"n2"}' % (
             c.user.encode(), c.pw.encode())),
        ("POST", "/", b'{"value":"https://a.org/","value":"https://b.org/"}'),
        ("PUT", "/" + i, b'{"url":"https://a.org/","url":"https://b.org/"}'),
        ("PUT", "/" + i, b'{"url":"https://a.org/","value":"https://b.org/"}'),
    ]
    for method, path, body in cases:
        r = s.http(method, path, raw=body, token=tok)
        _refused(r, "%s %s %r" % (method, path, body), (400,), "error")
        r = s.http(method, path, raw=body, token=tok, headers=FORM)
        assert 400 <= r.status_code < 500, "%s as a form: %s" % (
            body, _show(r))
    for form in ("username=%s&username=%s&password=p" % (a, b),
                 "username=%s&password=x&password=%s" % (c.user, c.pw)):
        for path in ("/users", "/users/login"):
            r = s.http("POST", path, raw=form, headers=FORM)
            _refused(r, "form %s %s" % (path, form), (400,), "error")
    # Nothing was created or changed.
    for u in (a, b):
        _refused(s.http("POST", "/users/login", {"username": u,
                                                 "password": "p"}),
                 "login as %s" % u, (403,), "forbidden")
    # Unknown keys repeated are only ignored.
    r = s.http("POST", "/", raw=b'{"x":1,"x":2,"value":"https://d.org/"}',
               token=tok)
    assert r.status_code == 201, "repeated unknown key: %s" % _show(r)
    c.links[r.json()["id"]] = "https://d.org/"
    c.check("duplicate keys")


# ------------------------------------------------------------------
# SQL metacharacters
# ------------------------------------------------------------------

SQLISH = ["'", "\"", "' OR '1'='1", "'; DROP TABLE users; --", "\\",
          "\\'", "%", "_", "/*", "*/", "--", ";", "`", "0x27", "%27",
          "' UNION SELECT password FROM users --", "\\0", "'||'"]


def test_sql_metacharacters(s):
    c = _Canary(s, "sql")
    tok = c.token
    users_before = s.sql("SELECT COUNT(*) FROM users")[0][0]
    # Passwords are bytes to hash: anything goes, byte-exact.
    pws = SQLISH[:8]
    for n, pw in enumerate(pws):
        u = s.unique("sq%d" % n)
        s.register(u, pw + "x")
        assert s.login(u, pw + "x")
        for wrong in ("' OR '1'='1", pw):
            r = s.http("POST", "/users/login", {"username": u,
                                                "password": wrong})
            _refused(r, "login %s with %r" % (u, wrong), (403,),
                     "forbidden")
    # Usernames: the charset refuses every metacharacter ...
    for bad in SQLISH:
        if not set(bad) - set(string.ascii_letters + string.digits +
                              "._@-"):
            continue
        for path in ("/users", "/users/login"):
            r = s.http("POST", path, {"username": "a" + bad,
                                      "password": "p"})
            _refused(r, "%s as %r" % (path, "a" + bad), (400, 403))
    # ... and "_" and "." are literal, never wildcards.
    base = s.unique("wc")
    s.register(base + "_x", "pw")
    for other in (base + "ax", base + "%x", base + "__", base + "_"):
        r = s.http("POST", "/users/login", {"username": other,
                                            "password": "pw"})
        _refused(r, "login as %r" % other, (400, 403))
    # URLs keep their metacharacters byte-exact.
    kept = 0
    for n, bad in enumerate(SQLISH):
        url = "https://example.org/%d/%s?q=%s#%s" % (
            n, urllib.parse.quote(bad, safe="'%;*-`|"), bad.replace(
                " ", "+").replace("\\", "%5C").replace('"', "%22"),
            urllib.parse.quote(bad, safe=""))
        r = s.http("POST", "/", {"value": url}, token=tok)
        if r.status_code == 400:
            continue
        assert r.status_code == 201, "URL %r: %s" % (url, _show(r))
        i = r.json()["id"]
        c.links[i] = url
        kept += 1
        g = s.http("GET", "/" + i)
        assert g.status_code == 301 and g.headers.get("Location") == url, \
            "URL %r came back as %s" % (url, _show(g))
    assert kept >= len(SQLISH) // 2, "only %d URLs with metacharacters " \
        "accepted" % kept
    # Ids, cursors and limits.
    for bad in SQLISH:
        q = urllib.parse.quote(bad, safe="")
        for method in ("GET", "PUT", "DELETE"):
            r = s.http(method, "/a" + q, {"url": "https://e.org/"},
                       token=tok)
            _refused(r, "%s /a%s" % (method, q), (404,))
        _refused(s.http("GET", "/?after=" + q, token=tok),
                 "?after=%s" % q, (400,), "error")
        _refused(s.http("GET", "/?limit=1" + q, token=tok),
                 "?limit=1%s" % q, (400,), "error")
        _refused(s.http("GET", "/", token=bad), "token %r" % bad, (403,),
                 "forbidden")
    # A validly signed token whose sub is an injection attempt.
    for sub in ("x' OR '1'='1", "%", c.user + "' --", c.user + "%"):
        t = _token(s.jwt_secret, {"alg": "HS256", "typ": "JWT"},
                   {"sub": sub, "iat": int(time.time()),
                    "exp": int(time.time()) + 600})
        _refused(s.http("GET", "/", token=t), "sub %r" % sub, (403,),
                 "forbidden")
        _refused(s.http("DELETE", "/", token=t), "DELETE / as %r" % sub,
                 (403,), "forbidden")
    assert s.sql("SELECT COUNT(*) FROM users")[0][0] == \
        users_before + len(pws) + 1
    c.check("SQL metacharacters")


# ------------------------------------------------------------------
# Malformed tokens
# ------------------------------------------------------------------

def _b64(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def _token(key, header, payload, raw_header=None, raw_payload=None,
           alg=hashlib.sha256):
    h = raw_header if raw_header is not None else _b64(
        json.dumps(header, separators=(",", ":")).encode())
    p = raw_payload if raw_payload is not None else _b64(
        json.dumps(payload, separators=(",", ":")).encode())
    sig = hmac.new(key, (h + "." + p).encode(), alg).digest()
    return h + "." + p + "." + _b64(sig)


def test_malformed_tokens(s):
    c = _Canary(s, "tok")
    key, now, sub = s.jwt_secret, int(time.time()), c.user
    hs = {"alg": "HS256", "typ": "JWT"}
    good = {"sub": sub, "iat": now, "exp": now + 600}
    genuine = _token(key, hs, good)
    h, p, sig = genuine.split(".")
    tokens = [
        ("empty", ""), ("Bearer", "Bearer"),
        ("Bearer and spaces", "Bearer   "), ("one part", "abc"),
        ("two parts", h + "." + p), ("four parts", genuine + ".x"),
        ("dots", "..."), ("empty middle", h + ".." + sig),
        ("padded", genuine + "=="), ("standard base64", genuine.replace(
            "-", "+").replace("_", "/") + "+/"),
        ("bad characters", h + "." + p + "." + sig[:-2] + "!*"),
        ("truncated signature", genuine[:-4]),
        ("a byte of signature more", genuine + "A"),
        ("flipped signature bit", h + "." + p + "." + _b64(bytes(
            [base64.urlsafe_b64decode(sig + "==")[0] ^ 1]) +
            base64.urlsafe_b64decode(sig + "==")[1:])),
        ("tampered sub", h + "." + _b64(json.dumps(dict(
            good, sub=sub + "x")).encode()) + "." + sig),
        ("wrong key", _token(b"k" * 48, hs, good)),
        ("alg none", _b64(b'{"alg":"none","typ":"JWT"}') + "." + p + "."),
        ("alg none signed", _token(key, {"alg": "none"}, good)),
        ("alg HS512", _token(key, {"alg": "HS512"}, good,
                             alg=hashlib.sha512)),
        ("alg RS256 with the HMAC key", _token(key, {"alg": "RS256"},
                                               good)),
        ("alg hs256", _token(key, {"alg": "hs256"}, good)),
        ("no alg", _token(key, {"typ": "JWT"}, good)),
        ("alg twice", _token(key, None, good, raw_header=_b64(
            b'{"alg":"none","alg":"HS256"}'))),
        ("header not JSON", _token(key, None, good, raw_header=_b64(
            b"not json"))),
        ("header an array", _token(key, None, good, raw_header=_b64(
            b'["HS256"]'))),
        ("payload not JSON", _token(key, hs, None, raw_payload=_b64(
            b"{sub:1}"))),
        ("payload an array", _token(key, hs, None, raw_payload=_b64(
            b"[1,2]"))),
        ("payload invalid UTF-8", _token(key, hs, None, raw_payload=_b64(
            b'{"sub":"\xff","iat":%d,"exp":%d}' % (now, now + 600)))),
        ("payload NUL in sub", _token(key, hs, None, raw_payload=_b64(
            b'{"sub":"%s\\u0000x","iat":%d,"exp":%d}' % (
                sub.encode(), now, now + 600)))),
        ("payload deep", _token(key, hs, None, raw_payload=_b64(
            b"[" * 2000 + b"]" * 2000))),
        ("sub twice", _token(key, hs, None, raw_payload=_b64(
            b'{"sub":"nobody","sub":"%s","iat":%d,"exp":%d}' % (
                sub.encode(), now, now + 600)))),
        ("expired", _token(key, hs, dict(good, iat=now - 7200,
                                         exp=now - 3600))),
        ("issued in the future", _token(key, hs, dict(
            good, iat=now + 3600, exp=now + 7200))),
        ("no exp", _token(key, hs, {"sub": sub, "iat": now})),
        ("no sub", _token(key, hs, {"iat": now, "exp": now + 600})),
        ("no iat", _token(key, hs, {"sub": sub, "exp": now + 600})),
        ("sub a number", _token(key, hs, dict(good, sub=12))),
        ("sub empty", _token(key, hs, dict(good, sub=""))),
        ("sub too long", _token(key, hs, dict(good, sub="a" * 65))),
        ("sub of nobody", _token(key, hs, dict(good, sub=s.unique("gh")))),
        ("exp a string", _token(key, hs, dict(good, exp=str(now + 600)))),
        ("exp a float", _token(key, hs, dict(good, exp=now + 600.5))),
        ("exp 1e30", _token(key, hs, dict(good, exp=1e30))),
        ("exp 2^63", _token(key, hs, dict(good, exp=2 ** 63))),
        ("exp -2^63", _token(key, hs, dict(good, exp=-2 ** 63))),
        ("iat -1", _token(key, hs, dict(good, iat=-1))),
        ("iat 2^64", _token(key, hs, dict(good, iat=2 ** 64))),
        ("7 KB token", "A" * 3500 + "." + "B" * 3500 + ".C"),
        ("Basic scheme", "Basic " + base64.b64encode(b"a:b").decode()),
        ("Bearer twice", "Bearer Bearer " + genuine),
        ("genuine with junk after", genuine + " junk"),
        ("genuine with a comma", genuine + ",x"),
    ]
    for what, t in tokens:
        for method, path, body in (("GET", "/", None),
                                   ("POST", "/", {"value": "https://e.org/"}),
                                   ("DELETE", "/", None),
                                   ("PUT", "/" + next(iter(c.links)),
                                    {"url": "https://evil.example/"})):
            r = s.http(method, path, body, token=t)
            _refused(r, "%s %s with %s token %r" % (method, path, what,
                                                    t[:80]),
                     (403,), "forbidden")
    # Header shapes a client library will not send.  Two
    # Authorization headers: nginx refuses the request itself.
    for raw, code, detail in (
            (b"Authorization:    \t \r\n", 403, "forbidden"),
            (b"Authorization: \r\n", 403, "forbidden"),
            (b"Authorization: Bearer\r\nAuthorization: " +
             genuine.encode() + b"\r\n", 400, "error")):
        req = b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
        st, head, body = _raw_status(_raw_http(s, req + raw + b"\r\n"))
        assert st == code and json.loads(body)["detail"] == detail, \
            "raw %r: %d %r" % (raw, st, body)
    # The genuine token, in the spellings the contract allows, works.
    for t in (genuine, "Bearer " + genuine, "bearer " + genuine,
              "BEARER\t" + genuine + " "):
        r = s.http("GET", "/", token=t)
        assert r.status_code == 200, "token %r: %s" % (t[:20], _show(r))
    c.check("malformed tokens")
