"""Checks meridian.py: it decodes every golden vector by the rule the index
names (and re-encodes the requests it sends to the same bytes), then, given
a gateway, puts, reads siblings, resolves them with the context, deletes,
and reads a refusal.

    /usr/bin/python3 test_meridian.py --golden ../../api/testdata/golden \
        [--url https://127.0.0.1:7127 --url2 https://127.0.0.1:7130 \
         --ca certs/ca.pem --cert certs/admin.pem --key certs/admin-key.pem]

Exits non-zero, saying what failed, on the first failure.
"""

import argparse
import base64
import os
import re
import sys
import uuid

import cbor2

import meridian


def check(cond, what):
    if not cond:
        raise SystemExit("FAIL: " + what)


def golden(dir):
    index = open(os.path.join(dir, "README.md")).read()
    vectors = re.findall(r"^## (\S+\.cbor)\n\nRule `([a-z-]+)`", index, re.M)
    check(len(vectors) >= 30, "the index lists %d vectors" % len(vectors))
    decoded = {}
    for name, rule in vectors:
        data = open(os.path.join(dir, name), "rb").read()
        decoded[name] = meridian.decode(rule, data)
    # Spot checks against what the vectors say they hold.
    env = decoded["envelope-get.cbor"]
    check(env["v"] == 1 and env["type"] == 16 and env["id"] == 7, "envelope-get header: %r" % env)
    check(env["trace"]["traceparent"].startswith("00-4bf92f35"), "envelope-get trace: %r" % env)
    check(meridian.decode_rule("get-request", env["payload"])["key"] == b"greeting", "envelope-get payload")
    g = decoded["get-response.cbor"]
    check([s["value"] for s in g["siblings"]] == [b"hello", b"hola"], "get-response siblings: %r" % g)
    vec = decoded["causal-context.cbor"]
    raw = open(os.path.join(dir, "causal-context.cbor"), "rb").read()
    check(g["context"] == base64.urlsafe_b64encode(raw).rstrip(b"=").decode(), "the context string is base64url of causal-context.cbor")
    check(vec == {"east-1~1": 3, "west-2~1": 1}, "causal-vector: %r" % vec)
    q = decoded["client-error-quorum.cbor"]
    check(q["code"] == "quorum" and q["quorum"]["required"] == {"east": 2} and q["quorum"]["acked"] == {"east": 1}, "quorum error: %r" % q)
    check(decoded["get-response-deleted.cbor"]["deleted"] is True, "deleted get-response")
    check(decoded["status-response.cbor"]["nodes"][1]["rtt-ms"] == 40.5, "status rtt")
    # The requests this client sends encode to the golden bytes.
    p = decoded["put-request.cbor"]
    again = meridian.encode_put_request(p["keyspace"], p["key"], p["value"], p["delete"], p["context"], p["consistency"])
    check(again == open(os.path.join(dir, "put-request.cbor"), "rb").read(), "put-request re-encodes to its vector")
    d = decoded["delete-request.cbor"]
    again = meridian.encode_put_request(d["keyspace"], d["key"], d["value"], d["delete"], d["context"], d["consistency"])
    check(again == open(os.path.join(dir, "delete-request.cbor"), "rb").read(), "delete-request re-encodes to its vector")
    r = decoded["get-request.cbor"]
    check(meridian.encode_get_request(r["keyspace"], r["key"], r["consistency"]) == open(os.path.join(dir, "get-request.cbor"), "rb").read(), "get-request re-encodes")
    # An array of another length is refused, as the schema says.
    try:
        meridian.decode("get-request", cbor2.dumps([0, "default", b"k", "", "extra"]))
        check(False, "a get-request with an extra field decoded")
    except meridian.ProtocolError:
        pass
    print("golden: %d vectors decoded" % len(vectors))


def live(a):
    c1 = meridian.Client(a.url, a.ca, a.cert, a.key)
    c2 = meridian.Client(a.url2 or a.url, a.ca, a.cert, a.key)
    key = ("py-" + uuid.uuid4().hex).encode() + b"/\x00\xff"
    c1.put(key, b"hello", consistency="ALL")
    r = c2.get(key, consistency="ALL")
    check(r.values == [b"hello"] and r.context, "get after put: %r" % r.values)
    c2.put(key, b"hola", consistency="ALL")  # blind: a sibling
    r = c1.get(key, consistency="ALL")
    check(sorted(r.values) == [b"hello", b"hola"], "siblings: %r" % r.values)
    w = c1.put(key, b"hello, hola", context=r.context, consistency="ALL")
    check(w.siblings == 1 and w.context, "resolving put: %d siblings" % w.siblings)
    r = c2.get(key, consistency="ALL")
    check(r.values == [b"hello, hola"], "after resolving: %r" % r.values)
    c1.delete(key, context=r.context, consistency="ALL")
    r = c2.get(key, consistency="ALL")
    check(r.values == [] and r.deleted, "after delete: %r deleted=%r" % (r.values, r.deleted))
    try:
        c1.get(key, keyspace="nope")
        check(False, "unknown keyspace answered")
    except meridian.MeridianError as e:
        check(e.status == 404 and e.code == "unknown_keyspace", "unknown keyspace: %s" % e)
    try:
        c1.put(key, b"v", consistency="east=99")
        check(False, "impossible consistency answered")
    except meridian.MeridianError as e:
        check(e.status == 400 and e.code == "bad_consistency", "impossible consistency: %s" % e)
    print("live: put, siblings, resolve, delete and refusals against %s" % a.url)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--golden", required=True)
    p.add_argument("--url")
    p.add_argument("--url2")
    p.add_argument("--ca")
    p.add_argument("--cert")
    p.add_argument("--key")
    a = p.parse_args()
    golden(a.golden)
    if a.url:
        live(a)
    print("ok")


if __name__ == "__main__":
    sys.exit(main())
