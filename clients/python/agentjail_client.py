"""agentjail_client: the agent side of the agentjail broker protocol.

Standard library only, Python 3.9 or later.  Inside a jail, the agent's one
way out is the socket whose fd number is in $AGENTJAIL_FD; this module speaks
the wire protocol (docs/PROTOCOL.md) over it:

    from agentjail_client import fetch, AgentjailError, Denied

    r = fetch("https://docs.example.org/page")
    print(r.status, r.headers, r.body[:100])

    r = fetch("https://api.example.org/items", method="POST",
              headers={"Content-Type": "application/json"}, data=b'{"a":1}')

    with fetch("https://docs.example.org/big.tar", stream=True) as r:
        for chunk in r:           # flow-controlled: the broker waits for us
            out.write(chunk)

    try:
        fetch("https://example.org/secret")
    except Denied as e:
        print(e.code, e.rule, e.message)   # "denied", "profile:3", "..."
    except AgentjailError as e:
        print(e.code, e.message)

Every fetch() opens a private channel (CONNECT: one end of a fresh
socketpair handed to the broker), so threads and processes sharing the
inherited fd never read each other's answers.  A Client keeps one channel
for many fetches, one at a time:

    with Client() as c:
        for url in urls:
            r = c.fetch(url)

The broker is trusted no further than the protocol allows: a malformed or
out-of-place frame ends the channel with BrokerUnavailable.
"""

import array
import json
import os
import select
import socket
import struct
import time

__all__ = [
    "fetch", "Client", "Response", "StreamResponse", "PROTOCOL_VERSION",
    "AgentjailError", "FetchError", "Denied", "BadRequest", "UpstreamError", "Timeout",
    "TooLarge", "RateLimited", "BrokerUnavailable",
]

PROTOCOL_VERSION = 1
HEADER = struct.Struct("<BBHIII")  # version, type, flags, id, length, reserved
MAX_PAYLOAD = 65536
MAX_JSON = 16384
MAX_HEADERS = 64
MAX_HEADER_VALUE = 8192

HELLO, WELCOME, REQUEST, BODY, RESPONSE, WINDOW, CANCEL, ERROR, CONNECT = range(1, 10)
_TYPE_NAMES = {HELLO: "HELLO", WELCOME: "WELCOME", REQUEST: "REQUEST", BODY: "BODY",
               RESPONSE: "RESPONSE", WINDOW: "WINDOW", CANCEL: "CANCEL", ERROR: "ERROR",
               CONNECT: "CONNECT"}
FLAG_END = 0x0001
_TOKEN = frozenset("!#$%&'*+-.^_`|~0123456789"
                   "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")


class AgentjailError(Exception):
    """A fetch that did not produce a complete response.

    code:    "denied", "bad_request", "upstream_error", "timeout", "too_large",
             "rate_limited" or "broker_unavailable" (a subclass each)
    message: the broker's explanation
    rule:    for "denied", the profile rule that decided (file:line), else None
    status:  the HTTP status when the error came after the response had
             started (its body is then incomplete), else None
    """

    code = None

    def __init__(self, code, message, rule=None, status=None):
        super().__init__("%s: %s%s" % (code, message, " (rule: %s)" % rule if rule else ""))
        self.code = code
        self.message = message
        self.rule = rule
        self.status = status


FetchError = AgentjailError  # the name in agentjail 0.1


class Denied(AgentjailError):
    code = "denied"


class BadRequest(AgentjailError):
    code = "bad_request"


class UpstreamError(AgentjailError):
    code = "upstream_error"


class Timeout(AgentjailError):
    code = "timeout"


class TooLarge(AgentjailError):
    code = "too_large"


class RateLimited(AgentjailError):
    code = "rate_limited"


class BrokerUnavailable(AgentjailError):
    code = "broker_unavailable"


_ERRORS = {cls.code: cls for cls in (Denied, BadRequest, UpstreamError, Timeout, TooLarge,
                                     RateLimited, BrokerUnavailable)}


def _error(code, message, rule=None, status=None):
    return _ERRORS.get(code, AgentjailError)(code, message, rule, status)


def _unavailable(why, status=None):
    return BrokerUnavailable("broker_unavailable", why, None, status)


class Response:
    """A complete response: status, headers (list of (name, value)), body (bytes)."""

    def __init__(self, status, headers, body, url=None):
        self.status = status
        self.headers = headers
        self.body = body
        self.url = url  # the normalised URL finally fetched, after redirects

    def header(self, name, default=None):
        """The first header called NAME (case-insensitive), or DEFAULT."""
        name = name.lower()
        for k, v in self.headers:
            if k.lower() == name:
                return v
        return default


def _frame(mtype, mid, payload=b"", flags=0):
    if len(payload) > MAX_PAYLOAD:
        raise ValueError("payload over %d bytes" % MAX_PAYLOAD)
    return HEADER.pack(PROTOCOL_VERSION, mtype, flags, mid, len(payload), 0) + bytes(payload)


def _json(payload):
    if len(payload) > MAX_JSON:
        raise _unavailable("the broker sent metadata over %d bytes" % MAX_JSON)
    try:
        obj = json.loads(bytes(payload).decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise _unavailable("the broker sent invalid JSON") from None
    if not isinstance(obj, dict):
        raise _unavailable("the broker sent JSON that is not an object")
    return obj


def _is_int(v, lo, hi):
    return isinstance(v, int) and not isinstance(v, bool) and lo <= v <= hi


def _check_response(meta):
    """RESPONSE metadata, every member's type checked: (status, headers, length, url)."""
    status = meta.get("status")
    if not _is_int(status, 100, 599):
        raise _unavailable("the broker sent a RESPONSE without a valid status")
    length = meta.get("length")
    if length is not None and not _is_int(length, 0, 2 ** 63 - 1):
        raise _unavailable("the broker sent a RESPONSE with an invalid length")
    url = meta.get("url")
    if url is not None and not isinstance(url, str):
        raise _unavailable("the broker sent a RESPONSE with an invalid url")
    raw = meta.get("headers", [])
    if not isinstance(raw, list) or len(raw) > MAX_HEADERS:
        raise _unavailable("the broker sent RESPONSE headers that are not a list of at most %d"
                           % MAX_HEADERS)
    headers = []
    for i, h in enumerate(raw):
        if (not isinstance(h, list) or len(h) != 2 or not all(isinstance(x, str) for x in h)
                or not h[0] or len(h[0]) > 256 or not set(h[0]) <= _TOKEN
                or len(h[1].encode("utf-8", "surrogatepass")) > MAX_HEADER_VALUE
                or any(c in h[1] for c in "\r\n\0")):
            raise _unavailable("the broker sent an invalid RESPONSE header #%d" % (i + 1))
        headers.append((h[0], h[1]))
    return status, headers, length, url


def _is_door(fd):
    """Is FD a unix seqpacket socket (the door), not a file a child got at
    that number after its parent closed the door?"""
    try:
        s = socket.socket(fileno=os.dup(fd))
    except OSError:
        return False
    try:
        return s.family == socket.AF_UNIX and s.type == socket.SOCK_SEQPACKET
    finally:
        s.close()


def _dial_broker_socket(path):
    """A channel of its own on the broker socket ($AGENTJAIL_SOCKET)."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    try:
        sock.connect(path)
    except OSError as e:
        sock.close()
        raise _unavailable("the broker is gone (connecting to %s: %s)"
                           % (path, e.strerror)) from None
    return sock


def _open_default_channel():
    """CONNECT on the door ($AGENTJAIL_FD) when this process has it, else
    the broker socket (its parent closed the door, as subprocess does by
    default)."""
    env = os.environ.get("AGENTJAIL_FD")
    path = os.environ.get("AGENTJAIL_SOCKET")
    if env is not None and env.isdigit() and _is_door(int(env)):
        try:
            return _open_channel(int(env))
        except BrokerUnavailable:
            if not path:
                raise
    if path:
        return _dial_broker_socket(path)
    raise _unavailable("AGENTJAIL_FD and AGENTJAIL_SOCKET are not set: not inside a jail?")


def _open_channel(shared_fd):
    """CONNECT: hand one end of a new socketpair to the broker."""
    mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    try:
        try:
            shared = socket.socket(fileno=os.dup(shared_fd))
        except OSError as e:
            raise _unavailable("no broker socket on fd %d (%s): not inside a jail?"
                               % (shared_fd, e.strerror)) from None
        try:
            fds = array.array("i", [theirs.fileno()])
            shared.sendmsg([_frame(CONNECT, 0)], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, fds)])
        finally:
            shared.close()
    except OSError as e:
        mine.close()
        raise _unavailable("the broker is gone (opening a channel: %s)" % e.strerror) from None
    except BaseException:
        mine.close()
        raise
    finally:
        theirs.close()
    return mine


def _body_chunks(data, size):
    """DATA (None, bytes-like, str or a file-like object) as chunks of at
    most SIZE bytes, each paired with "is it the last one"."""
    if data is None:
        return
    if isinstance(data, str):
        data = data.encode("utf-8")
    if isinstance(data, (bytes, bytearray, memoryview)):
        view = memoryview(data).cast("B")
        for i in range(0, len(view), size):
            yield view[i:i + size], i + size >= len(view)
        return
    if not hasattr(data, "read"):
        raise TypeError("data must be bytes, str or a file-like object, not %s"
                        % type(data).__name__)
    # Read ahead one chunk: the last frame carries END.

    def read():
        buf = b""
        while len(buf) < size:
            more = data.read(size - len(buf))
            if not more:
                break
            buf += more.encode("utf-8") if isinstance(more, str) else bytes(more)
        return buf

    chunk = read()
    while chunk:
        nxt = read() if len(chunk) == size else b""
        yield chunk, not nxt
        chunk = nxt


class Client:
    """A private channel to the broker, for many fetches one after another.

    fd:      the broker socket (default: $AGENTJAIL_FD, or $AGENTJAIL_SOCKET
             in a process whose parent closed fd 3)
    timeout: seconds to wait for the handshake (default: no limit)
    """

    def __init__(self, fd=None, timeout=None):
        self._sock = None
        self._dead = None  # why the channel is unusable
        self._last_id = 0
        self._stream = None  # the StreamResponse still being read
        deadline = None if timeout is None else time.monotonic() + timeout
        self._sock = _open_default_channel() if fd is None else _open_channel(fd)
        try:
            self._handshake(deadline)
        except BaseException:
            self.close()
            raise

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        """Close the channel (a stream still open is abandoned)."""
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        if self._dead is None:
            self._dead = "the client was closed"

    def _handshake(self, deadline):
        try:
            self._sock.sendall(_json_frame(HELLO, 0, {"version": PROTOCOL_VERSION,
                                                      "client": "agentjail_client.py/2"}))
        except OSError:
            pass  # a refusal (rate_limited) may be waiting: read it
        try:
            mtype, _, mid, payload = self._recv(deadline, handshake=True)
        except socket.timeout:
            raise Timeout("timeout", "the broker did not answer HELLO in time") from None
        if mtype == ERROR:
            err = _json(payload)
            code, message = err.get("code"), err.get("message", "")
            raise _error(code if isinstance(code, str) and code else "broker_unavailable",
                         message if isinstance(message, str) else "")
        welcome = _json(payload)
        window, max_payload = welcome.get("window"), welcome.get("max_payload")
        if (welcome.get("version") != PROTOCOL_VERSION or not _is_int(window, 1, 2 ** 32 - 1)
                or not _is_int(max_payload, 1, MAX_PAYLOAD)):
            raise self._kill("the broker sent an invalid WELCOME")
        self.window = window
        self.max_payload = max_payload

    # ---- frames -------------------------------------------------------------

    def _kill(self, why, status=None):
        """The channel cannot be trusted any more: close it; the error to raise."""
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        self._dead = why
        return _unavailable(why, status)

    def _send(self, data):
        if self._sock is None:
            raise _unavailable(self._dead or "the channel is closed")
        try:
            self._sock.settimeout(None)
            self._sock.sendall(data)
        except OSError as e:
            raise self._kill("the broker is gone: %s" % (e.strerror or e)) from None

    def _recv(self, deadline, handshake=False, block=True):
        """One frame from the broker: (type, flags, id, payload), every bound
        checked first.  None when BLOCK is false and nothing is waiting."""
        if self._sock is None:
            raise _unavailable(self._dead or "the channel is closed")
        if not block:
            ready, _, _ = select.select([self._sock], [], [], 0)
            if not ready:
                return None
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0:
                raise socket.timeout()
            self._sock.settimeout(left)
        else:
            self._sock.settimeout(None)
        try:
            data, anc, flags, _ = self._sock.recvmsg(HEADER.size + MAX_PAYLOAD + 1,
                                                     socket.CMSG_SPACE(4 * 4))
        except socket.timeout:
            raise
        except OSError as e:
            raise self._kill("reading from the broker: %s" % (e.strerror or e)) from None
        passed = []
        for level, kind, cdata in anc:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                fds = array.array("i")
                fds.frombytes(cdata[:len(cdata) - len(cdata) % fds.itemsize])
                passed.extend(fds)
        for fd in passed:
            os.close(fd)  # this client never asks for a memfd
        if passed or flags & (socket.MSG_TRUNC | socket.MSG_CTRUNC):
            raise self._kill("the broker sent a file descriptor or an oversized frame")
        if not data:
            raise self._kill("the broker closed the channel")
        if len(data) < HEADER.size:
            raise self._kill("the broker sent a truncated frame")
        version, mtype, fl, mid, length, reserved = HEADER.unpack_from(data)
        if (version != PROTOCOL_VERSION or reserved != 0 or length > MAX_PAYLOAD
                or length != len(data) - HEADER.size):
            raise self._kill("the broker sent a malformed frame")
        allowed = (WELCOME, ERROR) if handshake else (RESPONSE, BODY, ERROR)
        if mtype not in allowed:
            raise self._kill("the broker sent %s" % _TYPE_NAMES.get(mtype, "type %d" % mtype))
        if fl & ~(FLAG_END if mtype == BODY else 0):
            raise self._kill("the broker sent flags 0x%04x on %s" % (fl, _TYPE_NAMES[mtype]))
        if (mtype == WELCOME and mid != 0) or (mtype in (RESPONSE, BODY) and mid == 0):
            raise self._kill("the broker sent %s with id %d" % (_TYPE_NAMES[mtype], mid))
        return mtype, fl, mid, memoryview(data)[HEADER.size:]

    # ---- one request --------------------------------------------------------

    def fetch(self, url, method="GET", headers=None, data=None, stream=False, timeout=None):
        """Fetch URL through the broker.

        headers: a dict or a list of (name, value)
        data:    the request body: bytes, str (sent as UTF-8) or a file-like
                 object read to its end; sent in BODY frames
        stream:  False: return a Response with the whole body.  True: return
                 a StreamResponse as soon as the status and headers arrive;
                 the body is read from it (the broker sends more as it is
                 consumed); close it, or use it in a with statement
        timeout: seconds the whole fetch may take (stream=True: until the
                 headers arrive, then for each read); default no limit

        Raises an AgentjailError subclass: Denied, BadRequest, UpstreamError,
        Timeout, TooLarge, RateLimited or BrokerUnavailable.
        """
        if self._stream is not None and not self._stream._done:
            raise RuntimeError("a streamed response on this client is still open")
        pairs = list(headers.items()) if isinstance(headers, dict) else list(headers or [])
        request = {"method": method, "url": url,
                   "headers": [[str(k), str(v)] for k, v in pairs]}
        chunks = _body_chunks(data, getattr(self, "max_payload", MAX_PAYLOAD))
        first = next(chunks, None)
        meta = json.dumps(request, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        if len(meta) > MAX_JSON:
            raise ValueError("the method, URL and headers exceed %d bytes" % MAX_JSON)
        if self._sock is None:
            raise _unavailable(self._dead or "the channel is closed")
        self._last_id = self._last_id % 0xFFFFFFFF + 1
        ex = _Exchange(self, self._last_id, method,
                       None if timeout is None else time.monotonic() + timeout, timeout)
        try:
            self._send(_frame(REQUEST, ex.id, meta, FLAG_END if first is None else 0))
            chunk = first
            while chunk is not None:
                try:
                    ex.check_early_answer()
                except AgentjailError:
                    ex.cancel(force=True)  # the broker wants no more of the body
                    raise
                self._send(_frame(BODY, ex.id, chunk[0], FLAG_END if chunk[1] else 0))
                chunk = None if chunk[1] else next(chunks, None)
            ex.wait_response()
        except socket.timeout:
            ex.cancel()
            raise Timeout("timeout", "no answer from the broker within %g s" % timeout) from None
        except BaseException:
            ex.cancel()
            raise
        if stream:
            self._stream = StreamResponse(ex)
            return self._stream
        parts = []
        try:
            for part in ex.body():
                parts.append(part)
                ex.consumed(len(part))
        except socket.timeout:
            ex.cancel()
            raise Timeout("timeout", "no answer from the broker within %g s" % timeout,
                          None, ex.status) from None
        except BaseException:
            ex.cancel()
            raise
        return Response(ex.status, ex.headers, b"".join(parts), ex.url)


def _json_frame(mtype, mid, obj, flags=0):
    data = json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    if len(data) > MAX_JSON:
        raise ValueError("metadata over %d bytes" % MAX_JSON)
    return _frame(mtype, mid, data, flags)


class _Exchange:
    """The receiving side of one request: RESPONSE, then BODY frames within
    the credit granted and the length announced, or an ERROR."""

    def __init__(self, client, mid, method, deadline, timeout):
        self.client = client
        self.id = mid
        self.method = method.upper()
        self.deadline = deadline
        self.timeout = timeout
        self.status = None
        self.headers = []
        self.length = None
        self.url = None
        self.received = 0
        self.per_read = False  # the timeout applies to each body read (streams)
        self.credit = client.window
        self.ungranted = 0
        self.done = False

    def _checked(self, check, payload):
        """A metadata check whose failure ends the channel."""
        try:
            return check(payload)
        except BrokerUnavailable as e:
            raise self.client._kill(e.message, self.status) from None

    def _error(self, payload):
        err = self._checked(_json, payload)
        code, message, rule = err.get("code"), err.get("message", ""), err.get("rule")
        if not isinstance(code, str) or not code:
            raise self.client._kill("the broker sent an ERROR without a code", self.status)
        self.done = True
        return _error(code, message if isinstance(message, str) else "",
                      rule if isinstance(rule, str) else None, self.status)

    def _next(self, block=True):
        """The next frame of this request; ERROR raised.  None if not BLOCK
        and nothing is waiting."""
        while True:
            frame = self.client._recv(self.deadline, block=block)
            if frame is None:
                return None
            mtype, flags, mid, payload = frame
            if mtype == ERROR and mid == 0:
                err = self._error(payload)
                self.client._kill("the broker closed the channel (%s)" % err.code)
                raise err
            if mid != self.id:
                continue  # a late frame of an abandoned request
            if mtype == ERROR:
                raise self._error(payload)
            return mtype, flags, payload

    def check_early_answer(self):
        """While the body goes out, the broker may already have refused."""
        while True:
            frame = self._next(block=False)
            if frame is None:
                return
            raise self.client._kill("the broker answered before the request body was sent")

    def wait_response(self):
        mtype, _, payload = self._next()
        if mtype != RESPONSE:
            raise self.client._kill("the broker sent BODY before RESPONSE")
        self.status, self.headers, self.length, self.url = self._checked(
            lambda p: _check_response(_json(p)), payload)

    def body(self):
        """Yield the body's chunks; the caller reports what it consumed."""
        while not self.done:
            if self.per_read and self.timeout is not None:
                self.deadline = time.monotonic() + self.timeout
            mtype, flags, payload = self._next()
            if mtype != BODY:
                raise self.client._kill("the broker sent a second RESPONSE", self.status)
            n = len(payload)
            if n > self.credit:
                raise self.client._kill("the broker sent more than the window allows",
                                        self.status)
            if self.length is not None and self.received + n > self.length:
                raise self.client._kill("the broker sent more than the announced length",
                                        self.status)
            self.credit -= n
            self.received += n
            if flags & FLAG_END:
                self.done = True
                if (self.length is not None and self.received < self.length
                        and self.method != "HEAD" and self.status >= 200
                        and self.status not in (204, 304)):
                    raise UpstreamError("upstream_error", "the body ended after %d of %d bytes"
                                        % (self.received, self.length), None, self.status)
            if n:
                yield bytes(payload)

    def consumed(self, n):
        """N body bytes were taken: grant them back once half the window is."""
        self.ungranted += n
        if not self.done and self.ungranted >= (self.client.window + 1) // 2:
            self.client._send(_frame(WINDOW, self.id, struct.pack("<I", self.ungranted)))
            self.credit += self.ungranted
            self.ungranted = 0

    def cancel(self, force=False):
        """Abandon the request (nothing more is read for it)."""
        if not self.done or force:
            self.done = True
            if self.client._sock is not None:
                try:
                    self.client._sock.settimeout(None)
                    self.client._sock.send(_frame(CANCEL, self.id), socket.MSG_DONTWAIT)
                except OSError:
                    pass


class StreamResponse:
    """A response whose body is read as it arrives.

    status, headers, url, length (None if unknown) are known at once.
    Iterate for the body's chunks (bytes), or read(n).  An error after the
    response started (the body is incomplete) raises from the iteration or
    read with .status set.  close() abandons the rest.
    """

    def __init__(self, exchange, owned_client=None):
        self._ex = exchange
        exchange.per_read = True
        self._owned = owned_client  # closed with the stream (fetch(stream=True))
        self._chunks = exchange.body()
        self._buffer = b""
        self._done = False
        self.status = exchange.status
        self.headers = exchange.headers
        self.url = exchange.url
        self.length = exchange.length

    def header(self, name, default=None):
        """The first header called NAME (case-insensitive), or DEFAULT."""
        return Response.header(self, name, default)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __iter__(self):
        if self._buffer:
            chunk, self._buffer = self._buffer, b""
            yield chunk
        while True:
            chunk = self._next_chunk()
            if chunk is None:
                return
            yield chunk

    def _next_chunk(self):
        if self._done:
            return None
        try:
            chunk = next(self._chunks)
        except StopIteration:
            self._finish()
            return None
        except socket.timeout:
            self._ex.cancel()
            self._finish()
            raise Timeout("timeout", "no body bytes from the broker within %g s"
                          % self._ex.timeout, None, self.status) from None
        except BaseException:
            self._ex.cancel()
            self._finish()
            raise
        self._ex.consumed(len(chunk))
        return chunk

    def read(self, n=-1):
        """Up to N bytes of the body (all that is left if N < 0); b"" at its end."""
        while n < 0 or len(self._buffer) < n:
            chunk = self._next_chunk()
            if chunk is None:
                break
            self._buffer += chunk
        if n < 0:
            data, self._buffer = self._buffer, b""
        else:
            data, self._buffer = self._buffer[:n], self._buffer[n:]
        return data

    def _finish(self):
        self._done = True
        if self._owned is not None:
            self._owned.close()
            self._owned = None

    def close(self):
        """Abandon what is left of the body (CANCEL) and release the channel."""
        if not self._done:
            self._ex.cancel()
            self._finish()


def fetch(url, method="GET", headers=None, data=None, stream=False, timeout=None, fd=None):
    """Fetch URL through the broker on a channel of its own; see Client.fetch.

    fd: the broker socket (default: as Client).
    """
    deadline = None if timeout is None else time.monotonic() + timeout
    client = Client(fd, timeout)
    try:
        left = None if deadline is None else max(deadline - time.monotonic(), 0.001)
        r = client.fetch(url, method, headers, data, stream, left)
    except BaseException:
        client.close()
        raise
    if stream:
        r._owned = client
        return r
    client.close()
    return r
