"""A small Meridian client over the HTTP gateway, written from docs/protocol.cddl.

It speaks HTTPS with a client certificate of the cluster CA and asks for
CBOR bodies (Accept: application/cbor), so every body it reads is a rule of
the schema: get-response, put-response or client-error. Needs only the
standard library and cbor2 (Debian: python3-cbor2).

    c = Client("https://127.0.0.1:7127", ca="certs/ca.pem",
               cert="certs/admin.pem", key="certs/admin-key.pem")
    c.put(b"greeting", b"hello")
    r = c.get(b"greeting")          # r.values, r.context
    c.put(b"greeting", b"merged", context=r.context)
    c.delete(b"greeting", context=c.get(b"greeting").context)
"""

import http.client
import ssl
import urllib.parse

import cbor2

CBOR = "application/cbor"

# Field names of each array rule, in schema order (docs/protocol.cddl).
RULES = {
    "envelope": ["v", "type", "id", "deadline", "trace", "payload"],
    "trace-context": ["traceparent", "tracestate"],
    "fragment": ["total", "data"],
    "error-payload": ["code", "message"],
    "client-error": ["code", "message", "quorum"],
    "get-request": ["v", "keyspace", "key", "consistency"],
    "sibling": ["value", "writer"],
    "get-response": ["v", "siblings", "context", "deleted", "acked"],
    "put-request": ["v", "keyspace", "key", "value", "delete", "context",
                    "consistency", "forwarded", "local-dc"],
    "put-response": ["v", "context", "siblings", "acked", "warning", "coordinator"],
    "status-request": ["v"],
    "node-status": ["id", "dc", "rack", "addr", "state", "rtt-ms",
                    "hints-pending", "hint-bytes", "read-gated"],
    "status-response": ["v", "node", "nodes"],
    "ring-request": ["v", "keyspace", "key"],
    "ring-response": ["v", "token", "replicas", "fallbacks", "short"],
    "inspect-request": ["v", "keyspace", "key"],
    "replica-state": ["node", "dc", "values", "deleted", "version", "dots", "error"],
    "inspect-response": ["v", "token", "replicas"],
    "repair-request": ["v", "keyspace", "regions", "bytes-per-second"],
    "repair-progress": ["pair", "pairs-done", "pairs-total", "ranges-done",
                        "ranges-total", "keys-compared", "keys-fixed", "bytes-sent",
                        "done", "elapsed-ms"],
    "repair-status-request": ["v", "keyspace"],
    "pair-repair-status": ["pair", "last-full-completed", "pass-fraction",
                           "keys-compared", "keys-fixed", "bytes-sent",
                           "next-window", "schedule"],
    "repair-status-response": ["v", "pairs"],
    "grant-request": ["v", "principal", "permission", "keyspace", "revoke"],
    "grant-response": ["node", "changed", "members", "reached", "warning",
                       "effect", "keyspace"],
    "grants-request": ["v", "principal"],
    "grant": ["principal", "keyspace", "permissions", "superuser"],
    "grants-response": ["node", "grants"],
    "reencrypt-request": ["v", "all"],
    "reencrypt-result": ["node", "active-key", "rewritten", "current", "by-key",
                         "unreadable", "error"],
    "reencrypt-response": ["v", "nodes"],
    "fence-request": ["v", "region", "millis"],
    "fence-response": ["v", "node", "dc", "region", "until", "peers"],
}

# Fields that hold a list of another rule, or one other rule.
NESTED_LIST = {
    ("get-response", "siblings"): "sibling",
    ("status-response", "nodes"): "node-status",
    ("inspect-response", "replicas"): "replica-state",
    ("repair-status-response", "pairs"): "pair-repair-status",
    ("grants-response", "grants"): "grant",
    ("reencrypt-response", "nodes"): "reencrypt-result",
}
NESTED_ONE = {("envelope", "trace"): "trace-context"}

# quorum-error is a map with integer keys.
QUORUM_KEYS = {1: "op", 2: "required", 3: "acked", 4: "total-required",
               5: "total-acked", 6: "cause"}


class ProtocolError(Exception):
    """A body that does not match its rule."""


def decode_rule(rule, item):
    """Turns a decoded CBOR item of an array rule into a dict by field name,
    refusing an array of another length (protocol.md, Versioning)."""
    if rule == "causal-vector":
        if not isinstance(item, dict):
            raise ProtocolError("causal-vector: want a map, got %r" % (item,))
        return item
    fields = RULES[rule]
    if not isinstance(item, list) or len(item) != len(fields):
        raise ProtocolError("%s: want an array of %d, got %r" % (rule, len(fields), item))
    out = dict(zip(fields, item))
    for name in fields:
        sub = NESTED_LIST.get((rule, name))
        if sub is not None:
            out[name] = [decode_rule(sub, x) for x in (out[name] or [])]
        sub = NESTED_ONE.get((rule, name))
        if sub is not None:
            out[name] = decode_rule(sub, out[name])
    if rule in ("sibling", "put-request") and out["value"] is None:
        out["value"] = b""  # bstr / null: null is the empty value
    if rule == "client-error" and out["quorum"] is not None:
        out["quorum"] = {QUORUM_KEYS.get(k, k): v for k, v in out["quorum"].items()}
    return out


def decode(rule, data):
    return decode_rule(rule, cbor2.loads(data))


def encode_put_request(keyspace, key, value, delete=False, context="", consistency=""):
    """A put-request, as the schema lays it out (a client sends forwarded
    false and local-dc ""; a delete's value as null)."""
    value = None if delete and not value else bytes(value)
    return cbor2.dumps([0, keyspace, bytes(key), value, bool(delete),
                        context or "", consistency or "", False, ""])


def encode_get_request(keyspace, key, consistency=""):
    return cbor2.dumps([0, keyspace, bytes(key), consistency or ""])


class MeridianError(Exception):
    """A refusal: code is the protocol's error code (protocol.md, Errors)."""

    def __init__(self, status, code, message, quorum=None):
        super().__init__("%s (%d): %s" % (code, status, message))
        self.status, self.code, self.message, self.quorum = status, code, message, quorum


class GetResult:
    def __init__(self, values, writers, context, deleted, acked):
        self.values, self.writers = values, writers
        self.context, self.deleted, self.acked = context, deleted, acked


class PutResult:
    def __init__(self, context, siblings, acked, warning, coordinator):
        self.context, self.siblings, self.acked = context, siblings, acked
        self.warning, self.coordinator = warning, coordinator


class Client:
    def __init__(self, url, ca, cert, key, keyspace="default", timeout=10.0):
        u = urllib.parse.urlsplit(url)
        if u.scheme != "https":
            raise ValueError("the gateway speaks HTTPS only: %s" % url)
        self.host, self.port = u.hostname, u.port or 443
        self.keyspace, self.timeout = keyspace, timeout
        self.tls = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=ca)
        self.tls.minimum_version = ssl.TLSVersion.TLSv1_3
        self.tls.load_cert_chain(cert, key)

    def _path(self, key, keyspace, consistency):
        path = "/v1/kv/%s/%s" % (urllib.parse.quote(keyspace or self.keyspace, safe=""),
                                 urllib.parse.quote(bytes(key), safe=""))
        if consistency:
            path += "?" + urllib.parse.urlencode({"consistency": consistency}, safe="=,")
        return path

    def _do(self, method, path, body=None, headers=None):
        conn = http.client.HTTPSConnection(self.host, self.port, context=self.tls, timeout=self.timeout)
        try:
            h = {"Accept": CBOR}
            h.update(headers or {})
            conn.request(method, path, body=body, headers=h)
            res = conn.getresponse()
            return res.status, res.getheaders(), res.read(), res
        finally:
            conn.close()

    @staticmethod
    def _refusal(status, body, res):
        if res.getheader("Content-Type") != CBOR:
            raise MeridianError(status, "internal", "unexpected %s body: %r" % (res.getheader("Content-Type"), body[:200]))
        e = decode("client-error", body)
        raise MeridianError(status, e["code"], e["message"], e["quorum"])

    def get(self, key, keyspace=None, consistency=None):
        """Every value of the key: values is empty when it does not exist
        or is deleted, longer than one after concurrent writes."""
        status, _, body, res = self._do("GET", self._path(key, keyspace, consistency))
        if status == 200:
            return GetResult([body], [res.getheader("X-Meridian-Writer")],
                             res.getheader("X-Meridian-Context", ""), False, None)
        # A refusal carries X-Meridian-Error; a 404 without it is a key
        # without a value.
        if status in (300, 404) and res.getheader("X-Meridian-Error") is None:
            g = decode("get-response", body)
            return GetResult([s["value"] for s in g["siblings"]], [s["writer"] for s in g["siblings"]],
                             g["context"], g["deleted"], g["acked"])
        self._refusal(status, body, res)

    def put(self, key, value, context=None, keyspace=None, consistency=None):
        """Writes value over what context (from a get) covers; without a
        context the write becomes one more sibling."""
        ks = keyspace or self.keyspace
        body = encode_put_request(ks, key, value, context=context, consistency=consistency)
        return self._write("PUT", self._path(key, ks, None), body, {"Content-Type": CBOR})

    def delete(self, key, context=None, keyspace=None, consistency=None):
        h = {"X-Meridian-Context": context} if context else {}
        return self._write("DELETE", self._path(key, keyspace, consistency), None, h)

    def _write(self, method, path, body, headers):
        status, _, out, res = self._do(method, path, body, headers)
        if status != 200:
            self._refusal(status, out, res)
        p = decode("put-response", out)
        return PutResult(p["context"], p["siblings"], p["acked"], p["warning"], p["coordinator"])
