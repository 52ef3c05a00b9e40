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
  proto-driver.py no-read URL [pipe HOLD]
                                     REQUESTs (denied ones, or with "pipe" of
                                     an allowed URL, each answered with a
                                     pipe), never reading the answers, until
                                     the broker stops reading; with HOLD the
                                     channel is kept HOLD seconds more
  proto-driver.py refused-uploads POSTURL GETURL
                                     300 uploads refused as too large and
                                     cancelled: no slot is lost, one ERROR each
  proto-driver.py throttled URL      one channel over the profile's rate;
                                     another still says HELLO at once
  proto-driver.py pipe URL SIZE [CODE]
                                     "deliver":"pipe": the RESPONSE carries
                                     the read end of a pipe; SIZE bytes of the
                                     /bytes pattern come through it, no BODY
                                     frame has a payload, no WINDOW is sent,
                                     and the write end is closed before BODY
                                     END (empty).  With CODE: the pipe ends
                                     early and ERROR CODE comes instead
  proto-driver.py pipe-close URL SMALLURL NBYTES HOLD
                                     "deliver":"pipe", read NBYTES, close the
                                     pipe: nothing more comes for that
                                     request, and the channel still serves
                                     SMALLURL (by pipe and by frames); then
                                     keep the channel open HOLD seconds (so
                                     the audit tells a cancel by the pipe's
                                     close from one by the channel's)
  proto-driver.py pipe-cancel URL SMALLURL
                                     "deliver":"pipe", read 100000 bytes, then
                                     CANCEL: nothing more comes for it, the
                                     pipe ends (EOF), the channel still serves
  proto-driver.py pipe-unread URL SMALLURL SECONDS
                                     "deliver":"pipe", never read the pipe:
                                     within SECONDS the request ends with
                                     ERROR timeout (the body waiting for the
                                     pipe is bound by the time limit too),
                                     then SMALLURL is served on the channel
  proto-driver.py pipe-refused URL CODE
                                     "deliver":"pipe" refused before any
                                     answer: one ERROR CODE, and no fd
  proto-driver.py frames URL SIZE    the default delivery: SIZE bytes of the
                                     /bytes pattern in BODY frames, no fd

Prints "ok ..." on success, "FAIL ..." and exits 1 otherwise.
"""
import array
import fcntl
import json
import os
import select
import socket
import stat
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


# The /bytes pattern, one block long enough for any slice of up to 64 KiB
# at any phase: big bodies are checked chunk by chunk without building them.
BLOCK = pattern(0, 65536 + 251)


class Checker:
    """Counts body bytes and checks them against the /bytes pattern."""

    def __init__(self, what):
        self.what = what
        self.got = 0

    def add(self, data):
        view = memoryview(data)
        while len(view):
            part = view[:65536]
            start = self.got % 251
            if part != BLOCK[start:start + len(part)]:
                fail("%s: byte %d on differs from the pattern" % (self.what, self.got))
            self.got += len(part)
            view = view[len(part):]


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


def no_read(url, deliver=None, hold=0):
    sock, _ = channel()
    sock.setblocking(False)
    sent, blocked_since, rid = 0, None, 0
    meta = {"method": "GET", "url": url}
    if deliver:
        meta["deliver"] = deliver
    while True:
        rid += 1  # never one still in flight (a fetch takes a while)
        try:
            sock.send(frame(REQUEST, END, rid, json.dumps(meta).encode()))
            sent += 1
            blocked_since = None
        except BlockingIOError:
            if blocked_since is None:
                blocked_since = time.monotonic()
            elif time.monotonic() - blocked_since > 2:
                break
            time.sleep(0.01)
    print("ok the broker stopped reading after %d requests" % sent, flush=True)
    time.sleep(hold)


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
            if t is None or t == ERROR:
                # (EOF: the broker is gone; never wait for a body forever.)
                fail("round %d: the body ended with %r" % (i, payload))
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


def pipe_response(sock, rid, what):
    """The RESPONSE of a "deliver":"pipe" request: (metadata, read end)."""
    t, _, r, payload, fd = recv(sock)
    if t != RESPONSE or r != rid or fd is None:
        fail("%s: no RESPONSE with an fd: type %r id %r %r" % (what, t, r, payload))
    st = os.fstat(fd)
    if not stat.S_ISFIFO(st.st_mode):
        fail("%s: the fd is not a pipe (mode 0%o)" % (what, st.st_mode))
    if fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_ACCMODE != os.O_RDONLY:
        fail("%s: the fd is not a read end" % what)
    return json.loads(payload), fd


def pipe(url, size, code=None):
    sock, _ = channel()
    request(sock, 1, url, deliver="pipe")
    meta, fd = pipe_response(sock, 1, "pipe")
    if code is None and meta["length"] is not None and meta["length"] != size:
        fail("RESPONSE length %r, want %d" % (meta["length"], size))
    body = Checker("pipe")
    eof = False
    last = None  # the frame that ended the request: (type, payload)
    while not eof or last is None:
        # Once the request has ended on the channel, the broker has closed
        # its write end: what is left in the pipe is there already.
        watch = ([] if eof else [fd]) + ([] if last else [sock])
        ready, _, _ = select.select(watch, [], [], 2 if last else 30)
        if not ready:
            if last:
                fail("the request ended (type %d) with the pipe's write end still open "
                     "after %d bytes" % (last[0], body.got))
            fail("nothing for 30 s after %d bytes" % body.got)
        if sock in ready:
            t, flags, rid, payload, extra = recv(sock)
            if t is None:
                fail("EOF on the channel after %d bytes" % body.got)
            if extra is not None:
                fail("a second fd, with frame type %d" % t)
            if rid != 1 or t not in (BODY, ERROR):
                fail("unexpected frame type %d id %d: %r" % (t, rid, payload))
            if t == BODY and payload:
                fail("a BODY frame with %d bytes of payload" % len(payload))
            if t == BODY and not flags & END:
                fail("a BODY frame without END")
            last = (t, payload)
        if fd in ready:
            data = os.read(fd, 65536)
            if data:
                body.add(data)
            else:
                eof = True
    os.close(fd)
    # Nothing more for the request after its end.
    extra = frames_for(sock, 1, 0.5)
    if extra:
        fail("frames after the end: %r" % extra)
    if code is None:
        if last[0] != BODY:
            fail("ERROR after %d bytes: %r" % (body.got, last[1]))
        if body.got != size:
            fail("%d bytes through the pipe, want %d" % (body.got, size))
        print("ok pipe of %d bytes, then BODY END empty" % size, flush=True)
    else:
        err = json.loads(last[1]) if last[0] == ERROR else {}
        if err.get("code") != code:
            fail("want ERROR %s after the pipe, got type %d %r" % (code, last[0], last[1]))
        if body.got >= size:
            fail("ERROR %s, yet all %d bytes came" % (code, body.got))
        print("ok pipe ended after %d of %d bytes, then ERROR %s" % (body.got, size, code),
              flush=True)


def read_exactly(fd, n, check):
    while check.got < n:
        data = os.read(fd, min(65536, n - check.got))
        if not data:
            fail("%s: EOF after %d of %d bytes" % (check.what, check.got, n))
        check.add(data)


def piped_small_fetch(sock, rid, small_url):
    """SMALL_URL (/bytes/N) by pipe as request RID on SOCK: exactly its N
    bytes, EOF, then BODY END.  Returns N."""
    size = int(small_url.rsplit("/", 1)[1])
    request(sock, rid, small_url, deliver="pipe")
    _, fd = pipe_response(sock, rid, "request %d" % rid)
    read_exactly(fd, size, Checker("request %d" % rid))
    if os.read(fd, 1) != b"":
        fail("request %d: more than %d bytes" % (rid, size))
    os.close(fd)
    t, flags, r, payload, _ = recv(sock)
    if (t, r, payload) != (BODY, rid, b"") or not flags & END:
        fail("request %d: type %r id %r %r, want BODY END" % (rid, t, r, payload))
    return size


def pipe_close(url, small_url, nbytes, hold):
    sock, _ = channel()
    request(sock, 1, url, deliver="pipe")
    _, fd = pipe_response(sock, 1, "first request")
    read_exactly(fd, nbytes, Checker("first request"))
    os.close(fd)
    # Closing the read end cancels the request: nothing more comes for it.
    extra = frames_for(sock, 1, 2)
    if extra:
        fail("frames for the request whose pipe was closed: %r" % extra)
    size = piped_small_fetch(sock, 2, small_url)
    request(sock, 3, small_url)
    check = Checker("third request")
    t, _, _, payload, _ = recv(sock)
    if t != RESPONSE:
        fail("third request: %r" % payload)
    while True:
        t, flags, rid, payload, _ = recv(sock)
        if t != BODY or rid != 3:
            fail("third request: type %r id %r %r" % (t, rid, payload))
        check.add(payload)
        if flags & END:
            break
    if check.got != size:
        fail("third request: %d bytes, want %d" % (check.got, size))
    print("ok pipe closed after %d bytes; nothing more came for it; the channel still serves"
          % nbytes, flush=True)
    time.sleep(hold)


def pipe_unread(url, small_url, seconds):
    sock, _ = channel()
    request(sock, 1, url, deliver="pipe")
    _, fd = pipe_response(sock, 1, "first request")
    sock.settimeout(seconds)
    try:
        t, _, rid, payload, _ = recv(sock)
    except socket.timeout:
        fail("no answer within %g s while the pipe is not read" % seconds)
    sock.settimeout(None)
    if (t, rid) != (ERROR, 1) or json.loads(payload).get("code") != "timeout":
        fail("want ERROR timeout for the unread request, got type %r id %r %r"
             % (t, rid, payload))
    os.close(fd)
    request(sock, 2, small_url)
    t, _, rid, payload, _ = recv(sock)
    if (t, rid) != (RESPONSE, 2):
        fail("the next request: type %r id %r %r" % (t, rid, payload))
    print("ok unread pipe ended by the time limit; the next request served", flush=True)


def pipe_cancel(url, small_url):
    sock, _ = channel()
    request(sock, 1, url, deliver="pipe")
    _, fd = pipe_response(sock, 1, "first request")
    check = Checker("first request")
    read_exactly(fd, 100000, check)
    sock.send(frame(CANCEL, 0, 1))
    # The broker lets go of the pipe: what is in it, then EOF.
    deadline = time.monotonic() + 5
    while True:
        ready, _, _ = select.select([fd], [], [], max(0, deadline - time.monotonic()))
        if not ready:
            fail("no EOF on the pipe 5 s after CANCEL (%d bytes read)" % check.got)
        data = os.read(fd, 65536)
        if not data:
            break
        check.add(data)
    os.close(fd)
    extra = frames_for(sock, 1, 1)
    if extra:
        fail("frames after CANCEL: %r" % extra)
    piped_small_fetch(sock, 2, small_url)
    print("ok pipe cancelled; EOF; the channel still serves", flush=True)


def pipe_refused(url, code):
    sock, _ = channel()
    request(sock, 1, url, deliver="pipe")
    t, _, rid, payload, fd = recv(sock)
    if t != ERROR or rid != 1 or fd is not None:
        fail("want ERROR %s without an fd: type %r id %r fd %r %r" % (code, t, rid, fd, payload))
    if json.loads(payload).get("code") != code:
        fail("want ERROR %s: %r" % (code, payload))
    extra = frames_for(sock, 1, 0.5)
    if extra:
        fail("frames after the ERROR: %r" % extra)
    print("ok pipe refused with %s before any answer" % code, flush=True)


def frames(url, size):
    sock, welcome = channel()
    request(sock, 1, url)
    t, _, _, payload, fd = recv(sock)
    if t != RESPONSE or fd is not None:
        fail("want a RESPONSE without an fd: type %r fd %r %r" % (t, fd, payload))
    body = Checker("frames")
    while True:
        t, flags, rid, payload, fd = recv(sock)
        if t != BODY or fd is not None:
            fail("type %r fd %r after %d bytes: %r" % (t, fd, body.got, payload[:200]))
        body.add(payload)
        if payload:
            sock.send(frame(WINDOW, 0, 1, struct.pack("<I", len(payload))))
        if flags & END:
            break
    if body.got != size:
        fail("%d bytes in BODY frames, want %d" % (body.got, size))
    print("ok %d bytes in BODY frames" % size, flush=True)


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
        no_read(sys.argv[2], *(sys.argv[3:4]), *[float(x) for x in sys.argv[4:5]])
    elif mode == "refused-uploads":
        refused_uploads(sys.argv[2], sys.argv[3])
    elif mode == "throttled":
        throttled(sys.argv[2])
    elif mode == "pipe":
        pipe(sys.argv[2], int(sys.argv[3]), sys.argv[4] if len(sys.argv) > 4 else None)
    elif mode == "pipe-close":
        pipe_close(sys.argv[2], sys.argv[3], int(sys.argv[4]), float(sys.argv[5]))
    elif mode == "pipe-unread":
        pipe_unread(sys.argv[2], sys.argv[3], float(sys.argv[4]))
    elif mode == "pipe-cancel":
        pipe_cancel(sys.argv[2], sys.argv[3])
    elif mode == "pipe-refused":
        pipe_refused(sys.argv[2], sys.argv[3])
    elif mode == "frames":
        frames(sys.argv[2], int(sys.argv[3]))
    else:
        fail("unknown mode " + mode)


main()
