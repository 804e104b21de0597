"""Check HTTP responses against docs/openapi.yaml.

regress/stack.py calls check() on every response its http() receives,
so each e2e case also proves that what shortd (and nginx in front of
it) answers is what the OpenAPI document says:

  - the path and method are found in the document (path templates such
    as /{id}/stats; literal paths like /users win over templates);
  - the status is listed for the operation (exactly, as 4XX/5XX, or as
    "default");
  - the Content-Type is one the response lists, and a response that
    lists none has no body;
  - a JSON body parses and validates against the response's schema
    (JSON Schema 2020-12, the dialect of OpenAPI 3.1, with date-time
    checked as RFC 3339).

An error status on a path or method the document does not have (a 404
for /a/b, a 405 for PATCH /) must still be an Error object; any other
undescribed response fails.  HEAD responses carry no body and are
checked for that only.

Needs Debian's python3-yaml and python3-jsonschema (make deps).
"""

import copy
import datetime
import json
import os
import re

import jsonschema
import yaml

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOCUMENT = os.path.join(TOP, "docs", "openapi.yaml")
METHODS = ("get", "head", "post", "put", "delete", "patch", "options",
           "trace")
RFC3339 = re.compile(r"^\d{4}-\d\d-\d\d[Tt]\d\d:\d\d:\d\d(\.\d+)?"
                     r"([Zz]|[+-]\d\d:\d\d)$")


class OpenAPIMismatch(AssertionError):
    """A response the document does not describe."""


def _date_time(v):
    if not isinstance(v, str):
        return True
    if not RFC3339.match(v):
        return False
    datetime.datetime.fromisoformat(v[:19])    # ValueError if impossible
    return True


class Checker:
    def __init__(self, path=DOCUMENT):
        with open(path) as f:
            self.doc = yaml.safe_load(f)
        self.path = path
        self.formats = jsonschema.FormatChecker(formats=())
        self.formats.checks("date-time", raises=ValueError)(_date_time)
        self._validators = {}
        routes = []
        for template, item in self.doc["paths"].items():
            rx = "^" + re.sub(r"\\\{[^/]+?\\\}", "[^/]+",
                              re.escape(template)) + "$"
            literal = "{" not in template
            routes.append((not literal, template, re.compile(rx), item))
        routes.sort(key=lambda r: (r[0], -len(r[1])))
        self.routes = routes
        # Fail now, not in the middle of a test, if a schema is broken.
        jsonschema.Draft202012Validator.check_schema(
            self._deref({"$ref": "#/components/schemas/Error"}))

    # ---------------------------------------------------------- schema

    def _pointer(self, ref):
        if not ref.startswith("#/"):
            raise ValueError("only local references: %r" % ref)
        node = self.doc
        for part in ref[2:].split("/"):
            node = node[part.replace("~1", "/").replace("~0", "~")]
        return node

    def _deref(self, node, depth=0):
        """node with every local $ref replaced by what it names."""
        if depth > 50:
            raise ValueError("$ref nesting too deep")
        if isinstance(node, dict):
            if "$ref" in node:
                target = self._deref(self._pointer(node["$ref"]), depth + 1)
                rest = {k: v for k, v in node.items() if k != "$ref"}
                if rest:
                    return {"allOf": [target, self._deref(rest, depth + 1)]}
                return target
            return {k: self._deref(v, depth + 1) for k, v in node.items()}
        if isinstance(node, list):
            return [self._deref(v, depth + 1) for v in node]
        return copy.deepcopy(node)

    def _validator(self, key, schema):
        v = self._validators.get(key)
        if v is None:
            v = jsonschema.Draft202012Validator(
                self._deref(schema), format_checker=self.formats)
            self._validators[key] = v
        return v

    # ---------------------------------------------------------- lookup

    def _route(self, path):
        for _, template, rx, item in self.routes:
            if rx.match(path):
                return template, item
        return None, None

    def _response(self, template, item, method, status):
        """(key, response object) the document gives, or (None, None)."""
        if item is None:
            return None, None
        op = item.get(method.lower())
        if op is None:
            return None, None
        responses = op.get("responses", {})
        for code in (str(status), "%dXX" % (status // 100), "default"):
            if code in responses:
                resp = responses[code]
                if "$ref" in resp:
                    resp = self._pointer(resp["$ref"])
                return (template, method.lower(), code), resp
        return None, None

    # ---------------------------------------------------------- check

    def check(self, method, url_path, status, content_type, body):
        """Raise OpenAPIMismatch if the response is not described."""
        path = url_path.split("?", 1)[0].split("#", 1)[0] or "/"
        what = "%s %s -> %d" % (method, path, status)
        ct = (content_type or "").split(";")[0].strip().lower()
        template, item = self._route(path)
        key, resp = self._response(template, item, method, status)
        if resp is None:
            if status < 400:
                raise OpenAPIMismatch(
                    "%s: not described in %s (add the path, method or "
                    "status)" % (what, os.path.relpath(self.path, TOP)))
            key = ("*", "error", status)
            resp = {"content": {"application/json": {
                "schema": {"$ref": "#/components/schemas/Error"}}}}
        if method.upper() == "HEAD" or status in (204, 304):
            if body:
                raise OpenAPIMismatch("%s: %d bytes of body where none "
                                      "may be" % (what, len(body)))
            return
        content = resp.get("content")
        if not content:
            if body:
                raise OpenAPIMismatch("%s: a body (%s) where the document "
                                      "describes none" % (what, ct))
            return
        if ct not in content:
            raise OpenAPIMismatch("%s: Content-Type %r, the document "
                                  "has %s" % (what, ct, sorted(content)))
        if ct != "application/json":
            return
        try:
            doc = json.loads(body)
        except ValueError as e:
            raise OpenAPIMismatch("%s: body is not JSON (%s): %r" % (
                what, e, body[:200]))
        schema = content[ct].get("schema")
        if schema is None:
            return
        errors = sorted(self._validator(key, schema).iter_errors(doc),
                        key=lambda e: list(e.absolute_path))
        if errors:
            e = errors[0]
            where = "/".join(str(p) for p in e.absolute_path) or "(top)"
            raise OpenAPIMismatch("%s: body does not match %s at %s: %s; "
                                  "body %r" % (what, os.path.relpath(
                                      self.path, TOP), where, e.message,
                                      body[:300]))

    def check_response(self, method, url_path, r):
        """check() for a requests.Response.  The web page's static files
        under /ui/ (HTML, CSS, JavaScript, served by nginx from www/) are
        not the API and are not described; everything else is."""
        if url_path.split("?")[0].startswith("/ui/"):
            return
        self.check(method, url_path, r.status_code,
                   r.headers.get("Content-Type"), r.content)
