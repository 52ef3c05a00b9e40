#!/usr/bin/python3
"""Check an agentjail event stream (docs/EVENTS.md): one run's JSON lines.

    check-events.py EVENTS-FILE

Every line must be a JSON object of a known type carrying the common fields
(type, jail, seq, time); all lines share one jail id; seq counts 1, 2, 3...;
the first event is "start" and the last "exit"; each type has its fields;
and the violation counts add up: full "violation" events plus the counts of
"violation_repeated" equal exit.violations and exit.violation_counts.

Exit status: 0 valid, 1 invalid (one message naming the line), 2 usage.
Standard library only, so it runs wherever python3 does.
"""
import json
import re
import sys

TYPES = ("start", "violation", "violation_repeated", "broker_exit", "file_replaced", "exit")
JAIL_ID = re.compile(r"^[0-9a-f]{32}$")
SHA256 = re.compile(r"^[0-9a-f]{64}$")
TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")


class Invalid(Exception):
    pass


def is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def is_num(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def need(ev, key, check, what):
    if key not in ev:
        raise Invalid("%s event without %r" % (ev.get("type"), key))
    if not check(ev[key]):
        raise Invalid("%s event: %r is not %s: %r" % (ev.get("type"), key, what, ev[key]))
    return ev[key]


def check_start(ev):
    prof = need(ev, "profile", lambda v: isinstance(v, dict), "an object")
    for key in ("name", "path"):
        need(prof, key, lambda v: isinstance(v, str) and v, "a non-empty string")
    need(prof, "sha256", lambda v: isinstance(v, str) and SHA256.match(v), "64 hex digits")
    need(ev, "version", lambda v: isinstance(v, str) and v, "a non-empty string")
    need(ev, "namespaces", lambda v: isinstance(v, list) and all(isinstance(n, str) for n in v),
         "a list of names")
    need(ev, "ids", lambda v: isinstance(v, dict), "an object")
    pids = need(ev, "pids", lambda v: isinstance(v, dict), "an object")
    for key in ("supervisor", "broker", "init"):
        need(pids, key, lambda v: is_int(v) and v > 0, "a pid")
    viol = need(ev, "violations", lambda v: isinstance(v, dict), "an object")
    need(viol, "reported", lambda v: isinstance(v, bool), "a boolean")
    need(viol, "on_violation", lambda v: v in ("deny", "kill"), "deny or kill")
    need(ev, "missing", lambda v: isinstance(v, list), "a list")
    need(ev, "command", lambda v: isinstance(v, list) and v and all(isinstance(a, str) for a in v),
         "a non-empty list of strings")
    need(ev, "cwd", lambda v: v is None or (isinstance(v, str) and v.startswith("/")),
         "an absolute path or null")


def check_violation(ev):
    need(ev, "syscall", lambda v: isinstance(v, str) and v, "a non-empty string")
    need(ev, "nr", is_int, "an integer")
    need(ev, "summary", lambda v: isinstance(v, str) and v, "a non-empty string")
    need(ev, "args", lambda v: isinstance(v, dict), "an object")
    need(ev, "pid", lambda v: is_int(v) and v > 0, "a pid")
    need(ev, "comm", lambda v: isinstance(v, str), "a string")
    need(ev, "exe", lambda v: isinstance(v, str), "a string")
    need(ev, "action", lambda v: v in ("deny", "kill"), "deny or kill")


def check_repeated(ev):
    need(ev, "summary", lambda v: isinstance(v, str) and v, "a non-empty string")
    count = need(ev, "count", lambda v: is_int(v) and v > 0, "a positive integer")
    need(ev, "total", lambda v: is_int(v) and v >= count, "an integer >= count")


def check_broker_exit(ev):
    need(ev, "how", lambda v: isinstance(v, str) and v, "a non-empty string")
    need(ev, "status", is_int, "an integer")
    need(ev, "expected", lambda v: isinstance(v, bool), "a boolean")


def check_exit(ev):
    need(ev, "status", lambda v: is_int(v) and 0 <= v <= 255, "an exit status")
    need(ev, "signal", lambda v: v is None or (is_int(v) and v > 0), "null or a signal number")
    need(ev, "duration_ms", lambda v: is_num(v) and v >= 0, "a duration")
    fetches = need(ev, "fetches", lambda v: isinstance(v, dict), "an object")
    for key in ("allowed", "denied"):
        need(fetches, key, lambda v: is_int(v) and v >= 0, "a count")
    need(ev, "violations", lambda v: is_int(v) and v >= 0, "a count")
    need(ev, "violation_counts",
         lambda v: isinstance(v, dict) and all(is_int(n) and n > 0 for n in v.values()),
         "an object of positive counts")
    lost = need(ev, "lines_lost", lambda v: isinstance(v, dict), "an object")
    for key in ("stderr", "events", "audit"):
        need(lost, key, lambda v: is_int(v) and v >= 0, "a count")


def check_file_replaced(ev):
    need(ev, "file", lambda v: v in ("events", "audit", "profile"), "events, audit or profile")
    need(ev, "path", lambda v: isinstance(v, str) and v.startswith("/"), "an absolute path")
    need(ev, "at_path", lambda v: isinstance(v, str) and v, "a non-empty string")
    need(ev, "moved_to", lambda v: v is None or isinstance(v, str), "null or a path")


CHECKS = {
    "start": check_start,
    "violation": check_violation,
    "violation_repeated": check_repeated,
    "broker_exit": check_broker_exit,
    "file_replaced": check_file_replaced,
    "exit": check_exit,
}


def check_stream(text):
    """Return the number of events; raise Invalid naming the line."""
    if not text:
        raise Invalid("line 1: the stream is empty")
    if not text.endswith("\n"):
        raise Invalid("line %d: the last line has no newline" % (text.count("\n") + 1))
    lines = text[:-1].split("\n")
    jail = None
    seen = {}  # summary -> attempts seen in violation / violation_repeated
    events = []
    for i, line in enumerate(lines, 1):
        try:
            try:
                ev = json.loads(line)
            except ValueError as e:
                raise Invalid("not JSON: %s" % e)
            if not isinstance(ev, dict):
                raise Invalid("not a JSON object")
            kind = need(ev, "type", lambda v: v in TYPES, "a known type (%s)" % ", ".join(TYPES))
            need(ev, "jail", lambda v: isinstance(v, str) and JAIL_ID.match(v), "32 hex digits")
            if jail is None:
                jail = ev["jail"]
            elif ev["jail"] != jail:
                raise Invalid("jail id %s, but the stream started with %s" % (ev["jail"], jail))
            need(ev, "seq", lambda v: is_int(v) and v == i, "%d (seq counts from 1)" % i)
            need(ev, "time", lambda v: isinstance(v, str) and TIME.match(v), "an RFC 3339 UTC time")
            if (kind == "start") != (i == 1):
                raise Invalid("start must be the first event and only the first")
            if (kind == "exit") != (i == len(lines)):
                raise Invalid("exit must be the last event and only the last")
            CHECKS[kind](ev)
            if kind == "violation":
                seen[ev["summary"]] = seen.get(ev["summary"], 0) + 1
            elif kind == "violation_repeated":
                seen[ev["summary"]] = seen.get(ev["summary"], 0) + ev["count"]
                if ev["total"] < seen[ev["summary"]]:
                    raise Invalid("violation_repeated: total %d is below the %d attempts "
                                  "already reported" % (ev["total"], seen[ev["summary"]]))
            elif kind == "exit":
                counts = ev["violation_counts"]
                if sum(seen.values()) != ev["violations"]:
                    raise Invalid("exit: violations %d, but the stream reports %d attempts"
                                  % (ev["violations"], sum(seen.values())))
                if counts != seen:
                    raise Invalid("exit: violation_counts %s, but the stream reports %s"
                                  % (json.dumps(counts, sort_keys=True),
                                     json.dumps(seen, sort_keys=True)))
            events.append(ev)
        except Invalid as e:
            raise Invalid("line %d: %s" % (i, e))
    return len(events)


def main(argv):
    if len(argv) != 2:
        sys.stderr.write("usage: check-events.py EVENTS-FILE\n")
        return 2
    try:
        with open(argv[1], encoding="utf-8") as f:
            text = f.read()
    except (OSError, UnicodeDecodeError) as e:
        sys.stderr.write("check-events: %s: %s\n" % (argv[1], e))
        return 1
    try:
        n = check_stream(text)
    except Invalid as e:
        sys.stderr.write("check-events: %s: %s\n" % (argv[1], e))
        return 1
    print("check-events: %s: ok, %d events" % (argv[1], n))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
