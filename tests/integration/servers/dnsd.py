#!/usr/bin/env python3
"""Test DNS server for the integration suite (UDP, standard library only).

    dnsd.py --bind ADDR [--port N] --ready FILE --zone NAME=ADDR[,ADDR...]
            [--zone ...] [--log FILE]

Answers A (and AAAA) queries for the zone's names, TTL 0, authoritative.
A name with several addresses of a family gives them out in turn, one per
answer: query 1 gets the first, query 2 the second, and so on, wrapping.
That is DNS rebinding on demand: a client that resolves twice may be told
two different things.  A and AAAA keep separate turns.

A known name asked for a type it has no address of (AAAA for an IPv4-only
name, MX, ...) gets NOERROR with no answer; an unknown name NXDOMAIN.
EDNS OPT records in the query are ignored (the answer carries none, which
RFC 6891 allows).  The question is echoed byte for byte.

The ready file (written atomically once the socket is bound) holds the
port; --port 0 picks an ephemeral one.  --log appends "NAME TYPE ANSWER"
per query, ANSWER being the address given, NODATA or NXDOMAIN.  Exits on
SIGTERM, or by itself when its parent goes away.
"""

import argparse
import ipaddress
import os
import signal
import socket
import struct
import sys

from lifecycle import watch_parent, write_ready

TYPE_A = 1
TYPE_AAAA = 28
TYPE_NAMES = {1: "A", 2: "NS", 5: "CNAME", 6: "SOA", 12: "PTR", 15: "MX", 16: "TXT",
              28: "AAAA", 33: "SRV", 41: "OPT", 64: "SVCB", 65: "HTTPS", 255: "ANY"}
CLASS_IN = 1
RCODE_NOERROR = 0
RCODE_FORMERR = 1
RCODE_NXDOMAIN = 3
RCODE_NOTIMP = 4

FLAG_QR = 0x8000
FLAG_AA = 0x0400
FLAG_RD = 0x0100
FLAG_RA = 0x0080
OPCODE_MASK = 0x7800


class FormErr(Exception):
    pass


def norm(name):
    return name.rstrip(".").lower()


def parse_name(msg, off):
    """Return (name, offset after the name in place)."""
    labels = []
    end = None
    hops = 0
    while True:
        if off >= len(msg):
            raise FormErr("name runs off the message")
        n = msg[off]
        if n & 0xC0 == 0xC0:  # compression pointer (unusual in a question)
            if off + 1 >= len(msg) or hops > 16:
                raise FormErr("bad pointer")
            if end is None:
                end = off + 2
            off = ((n & 0x3F) << 8) | msg[off + 1]
            hops += 1
            continue
        if n & 0xC0:
            raise FormErr("bad label type")
        off += 1
        if n == 0:
            break
        if off + n > len(msg):
            raise FormErr("label runs off the message")
        labels.append(msg[off:off + n].decode("ascii", "backslashreplace"))
        off += n
    return ".".join(labels), (end if end is not None else off)


class Zone:
    def __init__(self):
        self.addrs = {}  # name -> {TYPE_A: [packed...], TYPE_AAAA: [...]}
        self.turn = {}   # (name, type) -> next index

    def add(self, spec):
        name, sep, addrs = spec.partition("=")
        if not sep or not name or not addrs:
            raise ValueError("--zone wants NAME=ADDR[,ADDR...]: %r" % spec)
        entry = self.addrs.setdefault(norm(name), {TYPE_A: [], TYPE_AAAA: []})
        for a in addrs.split(","):
            ip = ipaddress.ip_address(a.strip())
            entry[TYPE_A if ip.version == 4 else TYPE_AAAA].append(ip)

    def lookup(self, name, qtype):
        """(rcode, ip or None), advancing the name's turn for that type."""
        entry = self.addrs.get(norm(name))
        if entry is None:
            return RCODE_NXDOMAIN, None
        ips = entry.get(qtype)
        if not ips:
            return RCODE_NOERROR, None
        key = (norm(name), qtype)
        i = self.turn.get(key, 0)
        self.turn[key] = i + 1
        return RCODE_NOERROR, ips[i % len(ips)]


def answer(zone, query):
    """The reply to QUERY (bytes) and a log line, or (None, None) to drop."""
    if len(query) < 12:
        return None, None
    qid, flags, qdcount, _an, _ns, _ar = struct.unpack("!6H", query[:12])
    if flags & FLAG_QR:
        return None, None  # a response: not for us
    opcode = flags & OPCODE_MASK
    rflags = FLAG_QR | FLAG_AA | FLAG_RA | opcode | (flags & FLAG_RD)

    def reply(rcode, question=b"", answers=b"", nans=0):
        hdr = struct.pack("!6H", qid, rflags | rcode, 1 if question else 0, nans, 0, 0)
        return hdr + question + answers

    if opcode != 0:
        return reply(RCODE_NOTIMP), None
    if qdcount != 1:
        return reply(RCODE_FORMERR), None
    try:
        name, off = parse_name(query, 12)
        if off + 4 > len(query):
            raise FormErr("question cut short")
    except FormErr:
        return reply(RCODE_FORMERR), None
    qtype, qclass = struct.unpack("!HH", query[off:off + 4])
    question = query[12:off + 4]
    tname = TYPE_NAMES.get(qtype, "TYPE%d" % qtype)
    logname = norm(name) or "."

    if qclass != CLASS_IN or qtype not in (TYPE_A, TYPE_AAAA):
        rcode, ip = zone.lookup(name, None)
    else:
        rcode, ip = zone.lookup(name, qtype)
    if rcode == RCODE_NXDOMAIN:
        return reply(rcode, question), "%s %s NXDOMAIN" % (logname, tname)
    if ip is None:
        return reply(rcode, question), "%s %s NODATA" % (logname, tname)
    rdata = ip.packed
    # Owner name: a pointer to the question's name at offset 12.
    rr = struct.pack("!HHHIH", 0xC00C, qtype, CLASS_IN, 0, len(rdata)) + rdata
    return reply(rcode, question, rr, 1), "%s %s %s" % (logname, tname, ip)


def main():
    ap = argparse.ArgumentParser(description="agentjail integration-test DNS server")
    ap.add_argument("--bind", required=True, metavar="ADDR")
    ap.add_argument("--port", type=int, default=53, metavar="N")
    ap.add_argument("--ready", required=True, metavar="FILE")
    ap.add_argument("--zone", action="append", default=[], metavar="NAME=ADDR[,ADDR...]")
    ap.add_argument("--log", metavar="FILE")
    args = ap.parse_args()

    zone = Zone()
    for z in args.zone:
        try:
            zone.add(z)
        except ValueError as e:
            ap.error(str(e))

    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    watch_parent()

    family = socket.AF_INET6 if ":" in args.bind else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        sock.bind((args.bind, args.port))
    except OSError as e:
        sys.exit("dnsd.py: bind %s port %d: %s" % (args.bind, args.port, e.strerror))
    log = open(args.log, "a") if args.log else None
    write_ready(args.ready, sock.getsockname()[1])

    # One socket, one loop, one datagram at a time: glibc's parallel A and
    # AAAA queries (same source port, different ids) each get their own
    # reply, to the address they came from.
    while True:
        try:
            query, peer = sock.recvfrom(4096)
        except InterruptedError:
            continue
        try:
            out, line = answer(zone, query)
        except Exception:  # a datagram this parser did not foresee: drop it
            continue
        if out is None:
            continue
        if line is not None and log is not None:
            log.write(line + "\n")
            log.flush()
        try:
            sock.sendto(out, peer)
        except OSError:
            pass


if __name__ == "__main__":
    main()
