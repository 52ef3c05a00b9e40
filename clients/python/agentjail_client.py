"""agentjail_client: the agent side of the agentjail broker protocol.

Standard library only.  Inside a jail, the agent's one way out is the
socket whose fd number is in $AGENTJAIL_FD; this module speaks the wire
protocol (docs/PROTOCOL.md) over it:

    from agentjail_client import fetch, FetchError
    try:
        r = fetch("https://docs.example.org/page")
        print(r.status, r.headers, r.body[:100])
    except FetchError as e:
        print(e.code, e.rule, e.message)   # e.code == "denied", ...

Each call opens a private channel (CONNECT: one end of a fresh socketpair
handed to the broker), so threads and processes sharing the inherited fd
never read each other's answers.
"""

import array
import json
import os
import socket
import struct

__all__ = ["fetch", "Response", "FetchError", "PROTOCOL_VERSION"]

PROTOCOL_VERSION = 1
HEADER = struct.Struct("<BBHIII")  # version, type, flags, id, length, reserved
MAX_PAYLOAD = 65536
MAX_JSON = 16384

HELLO, WELCOME, REQUEST, BODY, RESPONSE, WINDOW, CANCEL, ERROR, CONNECT = range(1, 10)
FLAG_END = 0x0001


class FetchError(Exception):
    """A fetch that did not produce a response.

    code: "denied", "bad_request", "upstream_error", "timeout", "too_large",
          "rate_limited" or "broker_unavailable"
    rule: for "denied", the profile rule that decided (file:line), else None
    """

    def __init__(self, code, message, rule=None):
        super().__init__("%s: %s%s" % (code, message, " (rule: %s)" % rule if rule else ""))
        self.code = code
        self.message = message
        self.rule = rule


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers  # list of (name, value)
        self.body = body  # bytes


def _frame(mtype, mid, payload=b"", flags=0):
    if len(payload) > MAX_PAYLOAD:
        raise ValueError("payload over %d bytes" % MAX_PAYLOAD)
    return HEADER.pack(PROTOCOL_VERSION, mtype, flags, mid, len(payload), 0) + payload


def _json_frame(mtype, mid, obj, flags=0):
    data = json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    if len(data) > MAX_JSON:
        raise ValueError("metadata over %d bytes" % MAX_JSON)
    return _frame(mtype, mid, data, flags)


def _unavailable(why):
    return FetchError("broker_unavailable", why)


def _recv(sock):
    """One frame: (type, flags, id, payload).  Checks every bound first."""
    try:
        data = sock.recv(HEADER.size + MAX_PAYLOAD + 1)
    except OSError as e:
        raise _unavailable("reading from the broker: %s" % e.strerror) from None
    if not data:
        raise _unavailable("the broker closed the channel")
    if len(data) < HEADER.size:
        raise _unavailable("the broker sent a truncated frame")
    version, mtype, flags, mid, length, reserved = HEADER.unpack_from(data)
    if version != PROTOCOL_VERSION or reserved != 0 or length != len(data) - HEADER.size:
        raise _unavailable("the broker sent a malformed frame")
    return mtype, flags, mid, data[HEADER.size:]


def _json(payload):
    try:
        obj = json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise _unavailable("the broker sent invalid JSON") from None
    if not isinstance(obj, dict):
        raise _unavailable("the broker sent JSON that is not an object")
    return obj


def _open_channel(shared_fd):
    """CONNECT: hand one end of a new socketpair to the broker."""
    mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    try:
        shared = socket.socket(fileno=os.dup(shared_fd))
        try:
            fds = array.array("i", [theirs.fileno()])
            shared.sendmsg([_frame(CONNECT, 0)], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, fds)])
        finally:
            shared.close()
    except OSError as e:
        mine.close()
        raise _unavailable("the broker is gone (opening a channel: %s)" % e.strerror) from None
    finally:
        theirs.close()
    return mine


def fetch(url, method="GET", headers=None, data=None, fd=None):
    """Fetch URL through the broker.  Returns a Response, or raises FetchError.

    headers: a dict or a list of (name, value); data: bytes sent as the body.
    fd: the broker socket (default: $AGENTJAIL_FD).
    """
    if fd is None:
        env = os.environ.get("AGENTJAIL_FD")
        if env is None:
            raise _unavailable("AGENTJAIL_FD is not set: not inside a jail?")
        fd = int(env)
    pairs = list(headers.items()) if isinstance(headers, dict) else list(headers or [])
    sock = _open_channel(fd)
    try:
        sock.sendall(_json_frame(HELLO, 0, {"version": PROTOCOL_VERSION,
                                            "client": "agentjail_client.py/1"}))
        mtype, _, _, payload = _recv(sock)
        if mtype != WELCOME:
            if mtype == ERROR:
                err = _json(payload)
                raise FetchError(err.get("code", "broker_unavailable"), err.get("message", ""))
            raise _unavailable("the broker did not answer HELLO")
        request = {"method": method, "url": url, "headers": [[str(k), str(v)] for k, v in pairs]}
        body = bytes(data) if data is not None else None
        sock.sendall(_json_frame(REQUEST, 1, request, 0 if body else FLAG_END))
        if body:
            for i in range(0, len(body), MAX_PAYLOAD):
                chunk = body[i:i + MAX_PAYLOAD]
                last = i + MAX_PAYLOAD >= len(body)
                sock.sendall(_frame(BODY, 1, chunk, FLAG_END if last else 0))
        status, resp_headers, chunks = None, [], []
        while True:
            mtype, flags, mid, payload = _recv(sock)
            if mid not in (0, 1):
                continue
            if mtype == ERROR:
                err = _json(payload)
                raise FetchError(err.get("code") or "upstream_error", err.get("message", ""),
                                 err.get("rule"))
            if mtype == RESPONSE:
                meta = _json(payload)
                status = meta.get("status")
                resp_headers = [tuple(h) for h in meta.get("headers", [])]
            elif mtype == BODY:
                chunks.append(payload)
                if flags & FLAG_END:
                    return Response(status, resp_headers, b"".join(chunks))
                # Consumed: the broker may send as much again.
                sock.sendall(_frame(WINDOW, 1, struct.pack("<I", len(payload))))
    except OSError as e:
        raise _unavailable("the broker is gone: %s" % e.strerror) from None
    finally:
        sock.close()
