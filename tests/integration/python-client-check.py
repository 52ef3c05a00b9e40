"""Runs inside a real jail (test_broker.c): the Python client against the
real broker.  Prints one line per check; exits non-zero on a failure."""
import io
import sys

sys.path.insert(0, sys.argv[1])
from agentjail_client import (AgentjailError, BadRequest, BrokerUnavailable,  # noqa: E402
                              Client, Denied, FetchError, fetch)

failures = 0


def check(what, ok):
    global failures
    print("%s %s" % ("ok" if ok else "FAIL", what))
    if not ok:
        failures += 1


try:
    fetch("https://example.org/secret", headers={"Accept": "text/html"})
    check("denied fetch raises", False)
except FetchError as e:
    check("denied fetch raises FetchError", True)
    check("denied is the Denied subclass", isinstance(e, Denied) and isinstance(e, AgentjailError))
    check("code is denied", e.code == "denied")
    check("rule names the profile", e.rule is not None and "no 'fetch allow' rule" in e.rule)
    check("message names the URL", "https://example.org/secret" in e.message)
    check("no status before a response", e.status is None)

try:
    fetch("http://a b/")
    check("bad url raises", False)
except FetchError as e:
    check("bad url is bad_request", e.code == "bad_request" and isinstance(e, BadRequest))

try:
    fetch("https://x.example/", method="POST", data=b"x" * 100000)
    check("post with a body raises", False)
except FetchError as e:
    check("post with a 100 kB body is denied", e.code == "denied")

try:
    fetch("https://x.example/", method="PUT", data=io.BytesIO(b"y" * 300000), timeout=30)
    check("put from a file raises", False)
except Denied:
    check("put with a 300 kB body from a file is denied", True)

try:
    fetch("https://x.example/", stream=True)
    check("denied stream raises", False)
except Denied:
    check("a denied stream raises at once", True)

# One channel, many requests: a refusal does not end the channel.
with Client() as c:
    codes = []
    for url, data in [("https://x.example/1", None), ("http://a b/", None),
                      ("https://x.example/2", b"z" * 200000), ("https://x.example/3", None)]:
        try:
            c.fetch(url, method="POST" if data else "GET", data=data)
            codes.append("response")
        except AgentjailError as e:
            codes.append(e.code)
    check("one channel serves several requests",
          codes == ["denied", "bad_request", "denied", "denied"])

try:
    fetch("https://x.example/", fd=9999)
    check("no broker raises", False)
except FetchError as e:
    check("a bad fd is broker_unavailable", e.code == "broker_unavailable"
          and isinstance(e, BrokerUnavailable))

sys.exit(1 if failures else 0)
