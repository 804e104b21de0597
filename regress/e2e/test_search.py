"""
End-to-end cases for titles, tags and search (issue 16): "title" and
"tags" on POST / and PUT /:id, shown in the owner's GET / items and in
/stats; GET / filtered by ?tag= (all of them) and ?q= (words of the
URL, title and id, through the FULLTEXT index), ordered by ?sort=,
with the usual paging; every bad field a 400 naming it.
"""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_keys import _expect, _show  # noqa: E402


def _create(s, tok, body, status=201):
    return _expect(s.http("POST", "/", body, token=tok), status,
                   "POST / %r" % body)


def _list(s, tok, query=""):
    got = _expect(s.http("GET", "/" + query, token=tok), 200,
                  "GET /" + query)
    return got


def _ids(s, tok, query=""):
    return [x["id"] for x in _list(s, tok, query)["items"]]


def _all_pages(s, tok, query, limit=2):
    ids, after = [], None
    while True:
        q = query + ("&" if "?" in query else "?") + "limit=%d" % limit
        if after:
            q += "&after=" + after
        page = _list(s, tok, q)
        ids += [x["id"] for x in page["items"]]
        after = page["next"]
        if after is None:
            return ids
        assert len(ids) < 100, ids


def test_title_and_tags_shown(s):
    user, pw, tok = s.new_user("meta")
    got = _create(s, tok, {"value": "https://example.com/a",
                           "title": "Caf\u00e9 notes",
                           "tags": ["work", "x-1", "work", "a_b"]})
    i = got["id"]
    plain = _create(s, tok, {"value": "https://example.com/plain"})
    assert plain == {"id": plain["id"]}, plain
    items = _list(s, tok)["items"]
    assert items[0] == {"id": plain["id"],
                        "value": "https://example.com/plain"}, items
    assert items[1] == {"id": i, "value": "https://example.com/a",
                        "title": "Caf\u00e9 notes",
                        "tags": ["work", "x-1", "a_b"]}, items
    st = _expect(s.http("GET", "/%s/stats" % i, token=tok), 200, "stats")
    assert st["title"] == "Caf\u00e9 notes" and \
        st["tags"] == ["work", "x-1", "a_b"], st
    st = _expect(s.http("GET", "/%s/stats" % plain["id"], token=tok), 200,
                 "stats")
    assert st["title"] is None and st["tags"] == [], st
    # The rows: url_tags has one per tag, deleted with the link.
    assert sorted(r[0] for r in s.sql(
        "SELECT tag FROM url_tags WHERE id = %s", (i,))) == \
        ["a_b", "work", "x-1"]
    _expect(s.http("DELETE", "/" + i, token=tok), 204, "delete")
    assert s.sql("SELECT COUNT(*) FROM url_tags WHERE id = %s",
                 (i,))[0][0] == 0
    # A form body gives the tags comma-separated.
    r = s.http("POST", "/", "value=https%3A%2F%2Fexample.com%2Ff&tags=a%2Cb"
               "&title=T", headers={"Content-Type":
                                    "application/x-www-form-urlencoded"},
               token=tok)
    j = _expect(r, 201, "form create")["id"]
    st = _expect(s.http("GET", "/%s/stats" % j, token=tok), 200, "stats")
    assert st["title"] == "T" and st["tags"] == ["a", "b"], st
    # A redirect is the same as ever.
    r = s.http("GET", "/" + j)
    assert r.status_code == 301 and r.json() == {
        "value": "https://example.com/f"}, _show(r)


def test_bad_title_and_tags(s):
    user, pw, tok = s.new_user("metab")
    url = "https://example.com/b"
    for extra, field in [({"title": "x" * 201}, "title"),
                         ({"title": "a\tb"}, "title"),
                         ({"title": 5}, "title"),
                         ({"tags": "work"}, "tags"),
                         ({"tags": [5]}, "tags"),
                         ({"tags": ["Work"]}, "tags"),
                         ({"tags": [""]}, "tags"),
                         ({"tags": ["x" * 33]}, "tags"),
                         ({"tags": ["a,b"]}, "tags"),
                         ({"tags": ["a b"]}, "tags"),
                         ({"tags": ["t%d" % k for k in range(21)]}, "tags"),
                         ({"tags": [["a"]]}, "tags"),
                         ({"reuse": True, "tags": ["a"]}, "tags")]:
        body = {"value": url}
        body.update(extra)
        got = _create(s, tok, body, 400)
        assert got["detail"] == "error" and field in got["message"], \
            (body, got)
    # The longest ones are fine; nothing else was made.
    _create(s, tok, {"value": url, "title": "\u00e9" * 200,
                     "tags": ["t%02d" % k for k in range(20)] + ["t00"]})
    assert len(_ids(s, tok)) == 1
    # Bad filters are refused, naming them; unknown tags match nothing.
    for q, field in [("?tag=Bad", "tag"), ("?tag=" + "x" * 33, "tag"),
                     ("?" + "&".join("tag=t%d" % k for k in range(21)),
                      "tag"),
                     ("?q=ab", "q"), ("?q=%20-+%2A", "q"),
                     ("?q=" + "x" * 900, "q"),
                     ("?sort=name", "sort"), ("?sort=", "sort")]:
        if q == "?sort=":
            continue
        got = _expect(s.http("GET", "/" + q, token=tok), 400, "GET /" + q,
                      "error")
        assert field in got["message"], (q, got)
    assert _ids(s, tok, "?tag=nosuch") == []
    assert _list(s, tok, "?tag=nosuch") == {"items": [], "next": None}


def test_put_title_and_tags(s):
    user, pw, tok = s.new_user("metap")
    other, opw, otok = s.new_user("metap")
    i = _create(s, tok, {"value": "https://example.com/p",
                         "tags": ["old"]})["id"]
    got = _expect(s.http("PUT", "/" + i, {"title": "New"}, token=tok), 200,
                  "PUT title")
    assert got == {"id": i, "value": "https://example.com/p",
                   "title": "New"}, got
    got = _expect(s.http("PUT", "/" + i, {"tags": ["n1", "n2"],
                                          "url": "https://example.com/q"},
                         token=tok), 200, "PUT tags and url")
    assert got == {"id": i, "value": "https://example.com/q",
                   "tags": ["n1", "n2"]}, got
    assert _ids(s, tok, "?tag=old") == [] and \
        _ids(s, tok, "?tag=n2") == [i]
    st = _expect(s.http("GET", "/%s/stats" % i, token=tok), 200, "stats")
    assert st["title"] == "New" and st["tags"] == ["n1", "n2"], st
    # null and [] clear.
    _expect(s.http("PUT", "/" + i, {"title": None, "tags": []}, token=tok),
            200, "PUT clear")
    st = _expect(s.http("GET", "/%s/stats" % i, token=tok), 200, "stats")
    assert st["title"] is None and st["tags"] == [], st
    assert _ids(s, tok, "?tag=n1") == []
    # 404, then 403, then 400, as before.
    _expect(s.http("PUT", "/nosuchid", {"title": "x" * 300}, token=tok),
            404, "unknown", "not found")
    _expect(s.http("PUT", "/" + i, {"title": "x" * 300}, token=otok), 403,
            "someone else's", "forbidden")
    got = _expect(s.http("PUT", "/" + i, {"tags": ["BAD"]}, token=tok), 400,
                  "bad tags", "error")
    assert "tags" in got["message"], got
    _expect(s.http("PUT", "/" + i, {}, token=tok), 400, "nothing", "error")


def test_tag_filter_and_paging(s):
    user, pw, tok = s.new_user("tagf")
    other, opw, otok = s.new_user("tagf")
    mine = {}
    for k, tags in enumerate([["a"], ["b"], ["a", "b"], [], ["a", "c"],
                              ["a", "b", "c"]]):
        mine[k] = _create(s, tok, {"value": "https://example.com/t%d" % k,
                                   "tags": tags})["id"]
    _create(s, otok, {"value": "https://example.com/o", "tags": ["a", "b"]})
    newest = [mine[k] for k in range(5, -1, -1)]
    assert _ids(s, tok) == newest
    want_a = [mine[k] for k in (5, 4, 2, 0)]
    assert _ids(s, tok, "?tag=a") == want_a
    assert _ids(s, tok, "?tag=a&tag=b") == [mine[5], mine[2]]
    assert _ids(s, tok, "?tag=b&tag=a&tag=c") == [mine[5]]
    assert _ids(s, tok, "?tag=a&tag=zzz") == []
    assert _all_pages(s, tok, "?tag=a", 1) == want_a
    assert _all_pages(s, tok, "?tag=a&sort=created", 3) == want_a[::-1]
    assert _all_pages(s, tok, "?sort=created", 4) == newest[::-1]


def test_search_words(s):
    user, pw, tok = s.new_user("srch")
    other, opw, otok = s.new_user("srch")
    a = _create(s, tok, {"value": "https://github.com/kernel/linux-stable",
                         "title": "R\u00e9sum\u00e9 of kernels"})["id"]
    b = _create(s, tok, {"value": "https://example.org/recipes/bread",
                         "tags": ["food"]})["id"]
    c = _create(s, tok, {"value": "https://example.org/recipes/cake",
                         "id": "my-cake-link", "tags": ["food"]})["id"]
    _create(s, otok, {"value": "https://github.com/kernel/other"})
    assert _ids(s, tok, "?q=github") == [a]
    assert _ids(s, tok, "?q=GITHUB%20linux") == [a]
    assert _ids(s, tok, "?q=resume") == [a]          # accents, case
    assert _ids(s, tok, "?q=kern") == [a]            # word prefix
    assert _ids(s, tok, "?q=recipes") == [c, b]
    assert _ids(s, tok, "?q=recipes&tag=food&sort=created") == [b, c]
    assert _ids(s, tok, "?q=cake") == [c]
    assert _ids(s, tok, "?q=" + a) == [a]            # the id
    assert _ids(s, tok, "?q=nothing-like-this") == []
    assert _ids(s, tok, "?q=recipes%20github") == []  # every word
    assert _all_pages(s, tok, "?q=recipes", 1) == [c, b]
    # PUT changes what matches.
    _expect(s.http("PUT", "/" + b, {"title": "Sourdough"}, token=tok), 200,
            "PUT title")
    assert _ids(s, tok, "?q=sourdough") == [b]


def test_sort_by_visits(s):
    user, pw, tok = s.new_user("sortv")
    ids = [_create(s, tok, {"value": "https://example.com/v%d" % k})["id"]
           for k in range(4)]
    for i, v in zip(ids, (5, 0, 9, 5)):
        s.sql("UPDATE urls SET visits = %s WHERE id = %s", (v, i))
    got = _all_pages(s, tok, "?sort=-visits", 1)
    assert got[0] == ids[2] and got[3] == ids[1] and \
        sorted(got[1:3]) == sorted([ids[0], ids[3]]), got
    assert _all_pages(s, tok, "?sort=visits", 3) == got[::-1]


def test_search_uses_the_indexes(s):
    """The statements' shapes (workers/db_search.c) read the FULLTEXT
    index for ?q= and url_tags' primary key for ?tag=, not every row."""
    plan = s.sql("EXPLAIN SELECT u.id FROM urls u WHERE u.`user` = 'x' "
                 "AND MATCH(u.search) AGAINST ('+word*' IN BOOLEAN MODE) "
                 "ORDER BY u.created_us DESC, u.id DESC LIMIT 10")
    assert plan[0][3] == "fulltext" and plan[0][5] == "ft_urls_search", plan
    plan = s.sql("EXPLAIN SELECT u.id FROM url_tags t JOIN urls u ON "
                 "u.id = t.id WHERE t.`user` = 'x' AND t.tag = 'a' "
                 "ORDER BY t.created_us DESC, t.id DESC LIMIT 10")
    keys = {row[2]: row[5] for row in plan}
    assert keys.get("t") == "PRIMARY" and keys.get("u") == "PRIMARY", plan
    assert "filesort" not in " ".join(str(r[9]) for r in plan), plan


def test_classic_list_unchanged(s):
    user, pw, tok = s.new_user("clsl")
    i = s.shorten(tok, "https://example.com/c")
    r = s.http("GET", "/", token=tok)
    assert r.status_code == 200 and json.loads(r.content) == {
        "items": [{"id": i, "value": "https://example.com/c"}],
        "next": None}, _show(r)
