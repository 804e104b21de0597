#!/usr/bin/python3
"""Write the seed corpus of fuzz_fcgi: regress/fuzz/corpus/fcgi/.

Each seed is one byte choosing how fuzz_fcgi cuts the input into feeds
(0: all at once, n: chunks of 1..n bytes), then a FastCGI byte stream
as a front end (nginx) would send it.  Run it again after changing the
seeds; the files are committed.
"""
import os
import struct
import sys

BEGIN, ABORT, END, PARAMS, STDIN, STDOUT = 1, 2, 3, 4, 5, 6
DATA, GET_VALUES = 8, 9
RESPONDER, AUTHORIZER = 1, 2
KEEP_CONN = 1


def record(rtype, rid, content=b"", pad=None):
    if pad is None:
        pad = -len(content) % 8
    return (struct.pack(">BBHHBx", 1, rtype, rid, len(content), pad)
            + content + b"\0" * pad)


def length(n):
    return bytes([n]) if n < 128 else struct.pack(">I", n | 0x80000000)


def pairs(items):
    out = b""
    for name, value in items:
        name, value = name.encode(), value.encode()
        out += length(len(name)) + length(len(value)) + name + value
    return out


def begin(rid, role=RESPONDER, flags=0):
    return record(BEGIN, rid, struct.pack(">HB5x", role, flags))


def nginx_params(method, uri, body=b"", extra=()):
    path, _, query = uri.partition("?")
    items = [
        ("QUERY_STRING", query),
        ("REQUEST_METHOD", method),
        ("CONTENT_TYPE", "application/json" if body else ""),
        ("CONTENT_LENGTH", str(len(body)) if body else ""),
        ("SCRIPT_NAME", path),
        ("REQUEST_URI", uri),
        ("DOCUMENT_URI", path),
        ("DOCUMENT_ROOT", "/usr/share/nginx/html"),
        ("SERVER_PROTOCOL", "HTTP/1.1"),
        ("REQUEST_SCHEME", "http"),
        ("GATEWAY_INTERFACE", "CGI/1.1"),
        ("SERVER_SOFTWARE", "nginx/1.22.1"),
        ("REMOTE_ADDR", "127.0.0.1"),
        ("REMOTE_PORT", "51234"),
        ("SERVER_ADDR", "127.0.0.1"),
        ("SERVER_PORT", "5003"),
        ("SERVER_NAME", "localhost"),
        ("REDIRECT_STATUS", "200"),
        ("HTTP_HOST", "localhost:5003"),
        ("HTTP_USER_AGENT", "python-requests/2.28.1"),
        ("HTTP_ACCEPT", "*/*"),
    ] + list(extra)
    return pairs(items)


def request(rid, method, uri, body=b"", flags=0, extra=(), split=None):
    """A whole request; split cuts the PARAMS stream into records."""
    p = nginx_params(method, uri, body, extra)
    out = begin(rid, RESPONDER, flags)
    cuts = [0] + (split or []) + [len(p)]
    for a, b in zip(cuts, cuts[1:]):
        out += record(PARAMS, rid, p[a:b])
    out += record(PARAMS, rid)
    for i in range(0, len(body), 4000):
        out += record(STDIN, rid, body[i:i + 4000])
    out += record(STDIN, rid)
    return out


def seeds():
    login = b'{"username": "alice", "password": "correct horse"}'
    token = "Bearer " + "eyJhbGciOiJIUzI1NiJ9." + "x" * 150 + ".sig"
    yield "nginx_get", 0, request(1, "GET", "/aB3dE9z")
    yield "nginx_post_login", 7, request(
        1, "POST", "/users/login", login, KEEP_CONN, split=[100, 101])
    yield "long_values", 0, request(
        1, "PUT", "/aB3dE9z", b'{"url": "https://example.org/"}',
        extra=[("HTTP_AUTHORIZATION", token), ("X" * 130, "y" * 300)],
        split=[350, 600])
    yield "get_values", 0, record(GET_VALUES, 0, pairs([
        ("FCGI_MAX_CONNS", ""), ("FCGI_MAX_REQS", ""),
        ("FCGI_MPXS_CONNS", "")]))
    yield "keep_conn_pair", 0, (
        request(1, "GET", "/?limit=10&after=abc", flags=KEEP_CONN)
        + request(1, "DELETE", "/aB3dE9z", flags=KEEP_CONN,
                  extra=[("HTTP_AUTHORIZATION", token)]))
    yield "keep_conn_pair_chunked", 3, (
        request(1, "HEAD", "/aB3dE9z", flags=KEEP_CONN)
        + request(2, "POST", "/users", login))
    # a request cut after its first PARAMS record
    post = b'{"value": "http://a.b/"}'
    half = (begin(1) + record(PARAMS, 1, nginx_params("POST", "/", post)[:50]))
    rest = request(1, "POST", "/", post, split=[50])[len(half):]
    yield "abort", 1, half + record(ABORT, 1) + request(2, "GET", "/health")
    yield "cant_mpx", 0, half + request(2, "GET", "/x") + rest
    yield "unknown_role_type", 0, (
        begin(1, AUTHORIZER) + record(PARAMS, 1) + record(STDIN, 1)
        + record(99, 0, b"mgmt") + record(DATA, 1, b"data")
        + request(1, "GET", "/"))
    yield "body_too_large", 5, request(
        1, "POST", "/", b"z" * 9000, KEEP_CONN)


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        here, "corpus", "fcgi")
    os.makedirs(out, exist_ok=True)
    for name, mode, data in seeds():
        with open(os.path.join(out, name), "wb") as f:
            f.write(bytes([mode]) + data)


if __name__ == "__main__":
    main()
