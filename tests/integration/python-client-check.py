"""Runs inside a real jail (test_broker.c): the Python client against the
real broker.  Prints one line per check; exits non-zero on a failure."""
import sys

sys.path.insert(0, sys.argv[1])
from agentjail_client import FetchError, fetch  # noqa: E402

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
    check("code is denied", e.code == "denied")
    check("rule names the profile", e.rule is not None and "no 'fetch allow' rule" in e.rule)
    check("message names the URL", "https://example.org/secret" in e.message)

try:
    fetch("http://a b/")
    check("bad url raises", False)
except FetchError as e:
    check("bad url is bad_request", e.code == "bad_request")

try:
    fetch("https://x.example/", method="POST", data=b"x" * 100000)
    check("post with a body raises", False)
except FetchError as e:
    check("post with a 100 kB body is denied", e.code == "denied")

try:
    fetch("https://x.example/", fd=9999)
    check("no broker raises", False)
except FetchError as e:
    check("a bad fd is broker_unavailable", e.code == "broker_unavailable")

sys.exit(1 if failures else 0)
