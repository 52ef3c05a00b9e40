#!/usr/bin/env python3
"""Raw wire-protocol driver for the broker tests (docs/PROTOCOL.md).

Runs inside a jail and speaks the protocol itself, for the cases a
well-behaved client never produces:

  proto-driver.py concurrent URL N   N requests in flight on one channel;
                                     checks every body (/bytes pattern)
  proto-driver.py stall URL SECONDS  take the RESPONSE of a large body, then
                                     stop reading; then prove the broker
                                     still serves another channel
  proto-driver.py memfd URL SIZE     "deliver":"memfd": a sealed memfd of
                                     SIZE bytes with the /bytes pattern
  proto-driver.py slowfetch URL      start a request and print "waiting"
                                     until the broker is gone; prints what
                                     the channel said at the end
  proto-driver.py connect-flood URL  fill every channel slot, then send
                                     CONNECTs whose sockets cannot take an
                                     answer; the broker must still serve
  proto-driver.py bodies URL         512 POSTs whose bodies never end; the
                                     broker refuses what it cannot hold
  proto-driver.py no-read URL        denied REQUESTs, never reading the
                                     answers, until the broker stops reading
  proto-driver.py refused-uploads POSTURL GETURL
                                     300 uploads refused as too large and
                                     cancelled: no slot is lost, one ERROR each
  proto-driver.py throttled URL      one channel over the profile's rate;
                                     another still says HELLO at once

Prints "ok ..." on success, "FAIL ..." and exits 1 otherwise.
"""
import array
import fcntl
import json
import os
import socket
import struct
import sys
import time

HDR = struct.Struct("<BBHIII")
HELLO, WELCOME, REQUEST, BODY, RESPONSE, WINDOW, CANCEL, ERROR, CONNECT = range(1, 10)
END = 1
F_GET_SEALS = 1034
SEALS = 0x0001 | 0x0002 | 0x0004 | 0x0008  # SEAL, SHRINK, GROW, WRITE


def fail(msg):
    print("FAIL " + msg, flush=True)
    sys.exit(1)


def frame(t, flags, rid, payload=b""):
    return HDR.pack(1, t, flags, rid, len(payload), 0) + payload


def channel():
    """A private channel: one end of a fresh pair goes to the broker."""
    shared = socket.socket(fileno=int(os.environ.get("AGENTJAIL_FD", "3")))
    mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    shared.sendmsg([frame(CONNECT, 0, 0)],
                   [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [theirs.fileno()]))])
    theirs.close()
    shared.detach()
    mine.send(frame(HELLO, 0, 0, json.dumps({"version": 1, "client": "proto-driver/1"}).encode()))
    t, _, _, payload, _ = recv(mine)
    if t != WELCOME:
        fail("no WELCOME: %r" % payload)
    return mine, json.loads(payload)


def recv(sock):
    data, anc, _, _ = sock.recvmsg(65536 + 16 + 1, socket.CMSG_SPACE(4))
    if not data:
        return None, 0, 0, b"", None
    v, t, flags, rid, length, _ = HDR.unpack_from(data)
    fd = None
    for level, kind, cdata in anc:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fd = array.array("i", cdata[:4])[0]
    if length != len(data) - 16:
        fail("frame length %d for %d bytes" % (length, len(data) - 16))
    return t, flags, rid, data[16:], fd


def request(sock, rid, url, deliver=None):
    req = {"method": "GET", "url": url}
    if deliver:
        req["deliver"] = deliver
    sock.send(frame(REQUEST, END, rid, json.dumps(req).encode()))


def pattern(offset, n):
    return bytes((offset + i) % 251 for i in range(n))


def concurrent(url, n):
    sock, welcome = channel()
    size = int(url.rsplit("/", 1)[1])
    for rid in range(1, n + 1):
        request(sock, rid, url)
    got = {rid: bytearray() for rid in range(1, n + 1)}
    done = set()
    while len(done) < n:
        t, flags, rid, payload, _ = recv(sock)
        if t is None:
            fail("EOF after %d of %d" % (len(done), n))
        if t == ERROR:
            fail("request %d: %s" % (rid, payload.decode()))
        if t == BODY:
            got[rid] += payload
            if payload:
                sock.send(frame(WINDOW, 0, rid, struct.pack("<I", len(payload))))
            if flags & END:
                done.add(rid)
    want = pattern(0, size)
    for rid, body in got.items():
        if bytes(body) != want:
            fail("request %d: body of %d bytes differs" % (rid, len(body)))
    print("ok %d requests on one channel" % n, flush=True)


def stall(url, seconds):
    sock, welcome = channel()
    request(sock, 1, url)
    t, _, _, payload, _ = recv(sock)
    if t != RESPONSE:
        fail("no RESPONSE: %r" % payload)
    # Read nothing more: the broker must pause, not buffer.
    time.sleep(seconds)
    other, _ = channel()
    small = url.rsplit("/", 1)[0] + "/100"
    request(other, 1, small)
    body = b""
    while True:
        t, flags, _, payload, _ = recv(other)
        if t == ERROR or t is None:
            fail("second channel: %r" % payload)
        if t == BODY:
            body += payload
            if flags & END:
                break
    if body != pattern(0, 100):
        fail("second channel: wrong body")
    sock.send(frame(CANCEL, 0, 1))
    print("ok stalled reader; another channel served", flush=True)


def memfd(url, size):
    sock, _ = channel()
    request(sock, 1, url, deliver="memfd")
    t, _, _, payload, fd = recv(sock)
    if t != RESPONSE or fd is None:
        fail("no RESPONSE with an fd: %r" % payload)
    meta = json.loads(payload)
    seals = fcntl.fcntl(fd, F_GET_SEALS)
    if seals & SEALS != SEALS:
        fail("memfd seals 0x%x" % seals)
    st = os.fstat(fd)
    if st.st_size != size or meta["length"] != size:
        fail("memfd size %d, length %r, want %d" % (st.st_size, meta["length"], size))
    data = os.pread(fd, size, 0)
    if data != pattern(0, size):
        fail("memfd content differs")
    try:
        os.pwrite(fd, b"x", 0)
        fail("a sealed memfd was writable")
    except OSError:
        pass
    print("ok memfd of %d bytes, sealed" % size, flush=True)


def slowfetch(url):
    sock, _ = channel()
    request(sock, 1, url)
    print("waiting", flush=True)
    t, _, _, payload, _ = recv(sock)
    print("ended: %s" % ("EOF" if t is None else "type %d %s" % (t, payload.decode())), flush=True)


def filled_pair():
    """A socketpair whose end for the broker cannot take one more frame."""
    mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    theirs.setblocking(False)
    try:
        while True:
            theirs.send(b"x" * 4096)
    except BlockingIOError:
        pass
    return mine, theirs


def connect_flood(url):
    shared = socket.socket(fileno=int(os.environ.get("AGENTJAIL_FD", "3")))
    keep = [channel()[0] for _ in range(63)]
    held = []
    for _ in range(20):
        mine, theirs = filled_pair()
        shared.sendmsg([frame(CONNECT, 0, 0)],
                       [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [theirs.fileno()]))])
        theirs.close()
        held.append(mine)
    shared.detach()
    time.sleep(0.5)
    for s in keep[:3]:
        s.close()
    time.sleep(0.2)
    sock, _ = channel()
    request(sock, 1, url)
    t, _, _, payload, _ = recv(sock)
    if t != RESPONSE:
        fail("after the flood: %r" % payload)
    print("ok the broker serves after a CONNECT flood", flush=True)


def bodies(url):
    chans = [channel()[0] for _ in range(2)]
    chunk = b"b" * 65536
    for sock in chans:
        sock.setblocking(True)
    for rid in range(1, 257):
        for sock in chans:
            req = {"method": "POST", "url": url}
            sock.send(frame(REQUEST, 0, rid, json.dumps(req).encode()))
            for _ in range(15):
                sock.send(frame(BODY, 0, rid, chunk))
    refused = 0
    for sock in chans:
        sock.setblocking(False)
        try:
            while True:
                t, _, _, payload, _ = recv(sock)
                if t == ERROR and b"too many request bodies" in payload:
                    refused += 1
        except BlockingIOError:
            pass
    if refused == 0:
        fail("no request body was refused")
    print("ok %d bodies refused" % refused, flush=True)


def no_read(url):
    sock, _ = channel()
    sock.setblocking(False)
    sent, blocked_since, rid = 0, None, 0
    while True:
        rid = rid % 8 + 1
        try:
            sock.send(frame(REQUEST, END, rid, json.dumps({"method": "GET", "url": url}).encode()))
            sent += 1
            blocked_since = None
        except BlockingIOError:
            if blocked_since is None:
                blocked_since = time.monotonic()
            elif time.monotonic() - blocked_since > 2:
                break
            time.sleep(0.01)
    print("ok the broker stopped reading after %d requests" % sent, flush=True)


def frames_for(sock, rid, seconds):
    """Frames for RID that arrive within SECONDS (the channel is drained)."""
    sock.settimeout(seconds)
    got = []
    try:
        while True:
            t, _, r, payload, _ = recv(sock)
            if t is None:
                break
            if r == rid:
                got.append((t, payload))
    except socket.timeout:
        pass
    sock.settimeout(None)
    return got


def refused_uploads(post_url, get_url):
    sock, _ = channel()
    rid = 0
    for i in range(300):
        rid += 1
        sock.send(frame(REQUEST, 0, rid, json.dumps({"method": "POST", "url": post_url}).encode()))
        sock.send(frame(BODY, 0, rid, b"x" * 2048))
        t, _, r, payload, _ = recv(sock)
        if t != ERROR or r != rid or b"too_large" not in payload:
            fail("upload %d: %r" % (i, payload))
        sock.send(frame(CANCEL, 0, rid))
        if i == 0:
            # Past the request's time limit: still no second answer.
            extra = frames_for(sock, rid, 2.5)
            if extra:
                fail("a second answer for a refused upload: %r" % extra)
        rid += 1
        request(sock, rid, get_url)
        t, flags, r, payload, _ = recv(sock)
        if t != RESPONSE:
            fail("round %d: %r" % (i, payload))
        while not (t == BODY and flags & END):
            t, flags, r, payload, _ = recv(sock)
    print("ok 300 refused uploads, each answered once", flush=True)


def throttled(url):
    busy, _ = channel()
    for rid in range(1, 9):
        request(busy, rid, url)
    start = time.monotonic()
    channel()
    took = time.monotonic() - start
    if took > 3:
        fail("HELLO took %.1f s while another channel was throttled" % took)
    print("ok another channel said HELLO in %.2f s" % took, flush=True)


def main():
    mode = sys.argv[1]
    if mode == "concurrent":
        concurrent(sys.argv[2], int(sys.argv[3]))
    elif mode == "stall":
        stall(sys.argv[2], float(sys.argv[3]))
    elif mode == "memfd":
        memfd(sys.argv[2], int(sys.argv[3]))
    elif mode == "slowfetch":
        slowfetch(sys.argv[2])
    elif mode == "connect-flood":
        connect_flood(sys.argv[2])
    elif mode == "bodies":
        bodies(sys.argv[2])
    elif mode == "no-read":
        no_read(sys.argv[2])
    elif mode == "refused-uploads":
        refused_uploads(sys.argv[2], sys.argv[3])
    elif mode == "throttled":
        throttled(sys.argv[2])
    else:
        fail("unknown mode " + mode)


main()
