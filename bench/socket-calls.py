#!/usr/bin/env python3
"""What a socket call costs an agent: the median time per call of a few
socket operations, each looped N times, 5 rounds.  Run on the host and
inside jails by scripts/bench-sockets; prints one "NAME MICROSECONDS" line
per operation, "NAME n/a: REASON" when the jail refuses it.

  sendmsg   sendmsg() + recv() of one byte on a Unix socketpair
            (watched by the supervisor under `socket inet loopback`)
  send      send() + recv() of one byte on the same pair (never watched)
  connect   TCP connect() + accept() + close() on 127.0.0.1
            (watched under `socket inet loopback`; no inet socket in the
            strict mode)
"""
import socket
import statistics
import sys
import time

N = int(sys.argv[1]) if len(sys.argv) > 1 else 20000
ROUNDS = 5


def per_call(fn, n):
    best = []
    for _ in range(ROUNDS):
        t = time.perf_counter()
        fn(n)
        best.append((time.perf_counter() - t) / n * 1e6)
    return statistics.median(best)


def sendmsg(n):
    a, b = socket.socketpair()
    for _ in range(n):
        a.sendmsg([b"x"])
        b.recv(1)


def send(n):
    a, b = socket.socketpair()
    for _ in range(n):
        a.send(b"x")
        b.recv(1)


def connect(n):
    lst = socket.socket()
    lst.bind(("127.0.0.1", 0))
    lst.listen(128)
    addr = lst.getsockname()
    for _ in range(n):
        c = socket.create_connection(addr)
        s, _ = lst.accept()
        c.close()
        s.close()


for name, fn, n in (("sendmsg", sendmsg, N), ("send", send, N), ("connect", connect, N // 10)):
    try:
        print(name, "%.2f" % per_call(fn, n))
    except OSError as e:
        print(name, "n/a:", e.strerror)
