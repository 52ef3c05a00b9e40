#!/usr/bin/env python3
"""Test HTTP/HTTPS server for the integration suite (standard library only).

    httpd.py --bind ADDR [--port N] [--tls CERT KEY] [--root DIR] --ready FILE [--log FILE]

Binds ADDR:N (N = 0: an ephemeral port), then writes the port and a newline
to FILE atomically: once FILE exists the server is accepting.  HTTP/1.1 with
keep-alive; every response carries a Content-Length or is chunked, and every
request body is read (by Content-Length or chunked), so one connection can
carry many requests.  --log appends "METHOD PATH HOST PEERPORT" per request
(PEERPORT: the client's port, which tells connections apart), written before
the response, so a client that has its answer finds its line.

Endpoints (any method; HEAD sends the headers only):
  /echo, /echo/...          the request as JSON (method, path, headers in
                            received order, body length, sha256, body text)
  /bytes/N[?chunked=1[&length=L]]
                            N bytes, byte i = i % 251 (chunked: with a
                            Content-Length L beside the coding)
  /slow/MS                  waits MS ms, then "slow\\n"
  /trickle/N/MS             Content-Length N, then one byte every MS ms
  /partial/N/M/S[?chunked=1]
                            announces N bytes (Content-Length, or chunked),
                            sends the first M of /bytes/N, waits S seconds,
                            then closes the connection: a body cut short
                            (S = 0) or one that stalls (S > 0)
  /redirect/CODE?to=URL     CODE with Location: URL (percent-decoded; `to`
                            is the last parameter and may hold '&')
  /status/CODE              CODE with a short body
  /headers-out?name=value&  200 with those response headers added
  /page.html                a small HTML page
  /files/PATH               with --root: the file DIR/PATH, or its
                            index.html for a directory (nothing outside
                            DIR); JSON for a
                            name without a dot (an npm registry's documents)
  anything else             404

Quiet: no per-request output, client disconnects ignored.  Exits on
SIGTERM, and by itself when its parent goes away (a crashed test must not
leave servers behind).
"""

import argparse
import hashlib
import http.server
import json
import os
import signal
import socket
import ssl
import sys
import threading
import time

from lifecycle import watch_parent, write_ready
import urllib.parse

CHUNK = 64 * 1024
ECHO_BODY_MAX = 64 * 1024

# --root: the directory /files/ serves (None: no files).
ROOT = None
# 251 is prime, so the pattern never lines up with a power-of-two chunk:
# a client that drops or repeats a chunk sees the difference.  One block,
# a whole number of periods long and at least CHUNK + 250 bytes, serves
# any slice [i % 251, i % 251 + CHUNK) without copying.
PATTERN = bytes(i % 251 for i in range(251 * ((CHUNK + 250) // 251 + 1)))
PATTERN_VIEW = memoryview(PATTERN)

# Errors that mean "the client went away" (or never finished a TLS
# handshake, as in the wrong-CA tests): not worth a word.
QUIET_ERRORS = (BrokenPipeError, ConnectionResetError, ConnectionAbortedError,
                TimeoutError, ssl.SSLError, EOFError)


class BadRequest(Exception):
    pass


def pattern_slice(offset, n):
    start = offset % 251
    return PATTERN_VIEW[start:start + n]


def has_crlf(text):
    return "\r" in text or "\n" in text


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "agentjail-test-httpd"
    # Headers and body go out in separate writes: with Nagle on, a small
    # body would wait for the delayed ACK of the headers (40 ms each).
    disable_nagle_algorithm = True
    # An idle keep-alive connection is dropped after this long.
    timeout = 120

    def version_string(self):
        return self.server_version

    def log_message(self, format, *args):
        pass

    def __getattr__(self, name):
        # Every method, including ones http.server has never heard of,
        # goes to the one dispatcher.
        if name.startswith("do_"):
            return self.dispatch
        raise AttributeError(name)

    # ---- request body ----

    def read_body(self, sink):
        """Feed the request body to SINK(bytes); return its length."""
        te = self.headers.get("Transfer-Encoding")
        if te is not None:
            if te.strip().lower() != "chunked":
                raise BadRequest("unsupported Transfer-Encoding")
            return self.read_chunked(sink)
        cl = self.headers.get("Content-Length")
        if cl is None:
            return 0
        try:
            left = int(cl)
        except ValueError:
            raise BadRequest("bad Content-Length")
        if left < 0:
            raise BadRequest("bad Content-Length")
        total = 0
        while left > 0:
            data = self.rfile.read(min(left, CHUNK))
            if not data:
                raise EOFError("body cut short")
            sink(data)
            total += len(data)
            left -= len(data)
        return total

    def read_chunked(self, sink):
        total = 0
        while True:
            line = self.rfile.readline(1024)
            if not line.endswith(b"\n"):
                raise BadRequest("bad chunk size line")
            try:
                size = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise BadRequest("bad chunk size")
            if size < 0:
                raise BadRequest("bad chunk size")
            if size == 0:
                break
            left = size
            while left > 0:
                data = self.rfile.read(min(left, CHUNK))
                if not data:
                    raise EOFError("chunk cut short")
                sink(data)
                total += len(data)
                left -= len(data)
            if self.rfile.readline(3) not in (b"\r\n", b"\n"):
                raise BadRequest("chunk not followed by CRLF")
        while True:  # trailers, up to the empty line
            line = self.rfile.readline(8192)
            if not line:
                raise EOFError("trailers cut short")
            if line in (b"\r\n", b"\n"):
                return total

    # ---- response helpers ----

    def start(self, code, headers=(), length=None):
        self.send_response(code)
        for name, value in headers:
            self.send_header(name, value)
        if length is not None:
            self.send_header("Content-Length", str(length))
        self.end_headers()

    def reply(self, code, body, ctype="text/plain; charset=utf-8", headers=()):
        if isinstance(body, str):
            body = body.encode()
        self.start(code, [("Content-Type", ctype)] + list(headers), len(body))
        if self.command != "HEAD":
            self.wfile.write(body)

    # ---- dispatch ----

    def dispatch(self):
        raw = self.path
        if raw.startswith("/"):
            path, _, query = raw.partition("?")
        else:  # absolute-form, as a proxy would be asked
            parts = urllib.parse.urlsplit(raw)
            path, query = parts.path or "/", parts.query
        self.server.log_request_line(self.command, raw, self.headers.get("Host", "-"),
                                     self.client_address[1])

        digest = hashlib.sha256()
        kept = bytearray()

        def sink(data):
            digest.update(data)
            if len(kept) < ECHO_BODY_MAX:
                kept.extend(data[:ECHO_BODY_MAX - len(kept)])

        try:
            length = self.read_body(sink)
        except BadRequest as e:
            self.close_connection = True
            self.reply(400, "bad request: %s\n" % e, headers=[("Connection", "close")])
            return

        segs = path.split("/")[1:]
        head = segs[0] if segs else ""
        try:
            if head == "echo":
                self.serve_echo(raw, length, digest.hexdigest(), bytes(kept))
            elif head == "bytes" and len(segs) == 2:
                self.serve_bytes(int(segs[1]), query)
            elif head == "slow" and len(segs) == 2:
                ms = int(segs[1])
                time.sleep(ms / 1000.0)
                self.reply(200, "slow\n")
            elif head == "trickle" and len(segs) == 3:
                self.serve_trickle(int(segs[1]), int(segs[2]))
            elif head == "partial" and len(segs) == 4:
                self.serve_partial(int(segs[1]), int(segs[2]), float(segs[3]), query)
            elif head == "redirect" and len(segs) == 2:
                self.serve_redirect(int(segs[1]), query)
            elif head == "status" and len(segs) == 2:
                self.serve_status(int(segs[1]))
            elif head == "header-sha256" and len(segs) == 2:
                # The sha256 of a request header's value, or "absent": a
                # test learns what reached the server without the agent
                # seeing the value.
                value = self.headers.get(segs[1])
                self.reply(200, (hashlib.sha256(value.encode()).hexdigest()
                                 if value is not None else "absent") + "\n")
            elif path == "/header-names":
                # The names of the request's headers, lower-cased, in order:
                # which ones arrived, never their values.
                self.reply(200, ",".join(k.lower() for k in self.headers.keys()) + "\n")
            elif path == "/headers-out":
                self.serve_headers_out(query)
            elif head == "files" and ROOT is not None and self.command in ("GET", "HEAD"):
                self.serve_file("/".join(segs[1:]))
            elif path == "/page.html":
                self.reply(200, "<!DOCTYPE html>\n<html><head><title>Test site</title></head>\n"
                           "<body><h1>Hello from the test site</h1></body></html>\n",
                           "text/html; charset=utf-8")
            else:
                self.reply(404, "not found\n")
        except (BadRequest, ValueError) as e:
            self.reply(400, "bad request: %s\n" % e)

    def serve_file(self, rel):
        full = os.path.realpath(os.path.join(ROOT, urllib.parse.unquote(rel)))
        if os.path.isdir(full):
            full = os.path.join(full, "index.html")
        if not full.startswith(ROOT + os.sep) or not os.path.isfile(full):
            self.reply(404, "not found\n")
            return
        with open(full, "rb") as f:
            data = f.read()
        name = os.path.basename(full)
        ctype = "application/json" if "." not in name else "application/octet-stream"
        if name.endswith(".html"):
            ctype = "text/html; charset=utf-8"
        self.start(200, [("Content-Type", ctype)], len(data))
        if self.command != "HEAD":
            self.wfile.write(data)

    def serve_echo(self, raw, length, sha, kept):
        text = None
        if length < ECHO_BODY_MAX:
            try:
                text = kept.decode("utf-8")
            except UnicodeDecodeError:
                pass
        doc = {
            "method": self.command,
            "path": raw,
            "headers": [[k, v] for k, v in self.headers.items()],
            "body_length": length,
            "body_sha256": sha,
            "body": text,
        }
        self.reply(200, json.dumps(doc) + "\n", "application/json")

    def start_pattern(self, n, query):
        """Headers of /bytes/N (chunked if the query says so); True if
        the chunked coding is on."""
        chunked = ("chunked", "1") in urllib.parse.parse_qsl(query)
        ctype = [("Content-Type", "application/octet-stream")]
        if chunked:
            # ?length=L: a Content-Length beside the coding (a smuggling
            # shape), which a client must ignore.
            length = dict(urllib.parse.parse_qsl(query)).get("length")
            self.start(200, ctype + [("Transfer-Encoding", "chunked")], length)
        else:
            self.start(200, ctype, n)
        return chunked

    def send_pattern(self, m, chunked):
        """The first M bytes of the pattern, in the chosen framing."""
        off = 0
        while off < m:
            part = pattern_slice(off, min(CHUNK, m - off))
            if chunked:
                self.wfile.write(b"%x\r\n" % len(part) + part + b"\r\n")
            else:
                self.wfile.write(part)
            off += len(part)

    def serve_bytes(self, n, query):
        if n < 0:
            raise BadRequest("negative length")
        chunked = self.start_pattern(n, query)
        if self.command == "HEAD":
            return
        self.send_pattern(n, chunked)
        if chunked:
            self.wfile.write(b"0\r\n\r\n")

    def serve_trickle(self, n, ms):
        if n < 0 or ms < 0:
            raise BadRequest("negative argument")
        self.start(200, [("Content-Type", "application/octet-stream")], n)
        if self.command == "HEAD":
            return
        for i in range(n):
            time.sleep(ms / 1000.0)
            self.wfile.write(pattern_slice(i, 1))

    def serve_partial(self, n, m, seconds, query):
        if not 0 <= m <= n or seconds < 0:
            raise BadRequest("want 0 <= M <= N and S >= 0")
        chunked = self.start_pattern(n, query)
        # The rest is never sent, so this connection can carry nothing more.
        self.close_connection = True
        if self.command == "HEAD":
            return
        self.send_pattern(m, chunked)
        time.sleep(seconds)

    def serve_redirect(self, code, query):
        # `to` takes the rest of the query, so an unencoded '&' in it stays.
        at = ("&" + query).find("&to=")
        if at < 0:
            raise BadRequest("redirect needs ?to=URL")
        target = urllib.parse.unquote(query[at + 3:])
        if not 300 <= code <= 399 or has_crlf(target):
            raise BadRequest("bad redirect")
        self.reply(code, "redirect to %s\n" % target, headers=[("Location", target)])

    def serve_status(self, code):
        if not 200 <= code <= 599:
            raise BadRequest("status out of range")
        if code in (204, 304):  # no body, by definition
            self.start(code)
            return
        self.reply(code, "status %d\n" % code)

    def serve_headers_out(self, query):
        extra = urllib.parse.parse_qsl(query, keep_blank_values=True)
        for k, v in extra:
            if not k or has_crlf(k) or has_crlf(v) or ":" in k:
                raise BadRequest("bad header")
        self.reply(200, "ok\n", headers=extra)


class Server(http.server.ThreadingHTTPServer):
    request_queue_size = 128

    def __init__(self, addr, port, tls_ctx, log):
        if ":" in addr:
            self.address_family = socket.AF_INET6
        self.tls_ctx = tls_ctx
        self.log = log
        self.log_lock = threading.Lock()
        super().__init__((addr, port), Handler)

    def log_request_line(self, method, path, host, peer_port):
        if self.log is None:
            return
        line = "%s %s %s %d\n" % (method, path, host, peer_port)
        with self.log_lock:
            self.log.write(line.encode("utf-8", "backslashreplace"))
            self.log.flush()

    def finish_request(self, request, client_address):
        # The TLS handshake happens here, in the connection's own thread,
        # so a client that stalls in it does not hold up accept().
        if self.tls_ctx is None:
            super().finish_request(request, client_address)
            return
        request.settimeout(Handler.timeout)
        tls = self.tls_ctx.wrap_socket(request, server_side=True)
        try:
            super().finish_request(tls, client_address)
        finally:
            try:
                tls.shutdown(socket.SHUT_WR)
            except OSError:
                pass
            tls.close()

    def handle_error(self, request, client_address):
        exc = sys.exc_info()[1]
        if isinstance(exc, QUIET_ERRORS):
            return
        super().handle_error(request, client_address)


def main():
    ap = argparse.ArgumentParser(description="agentjail integration-test HTTP(S) server")
    ap.add_argument("--bind", required=True, metavar="ADDR")
    ap.add_argument("--port", type=int, default=0, metavar="N")
    ap.add_argument("--tls", nargs=2, metavar=("CERT", "KEY"))
    ap.add_argument("--ready", required=True, metavar="FILE")
    ap.add_argument("--log", metavar="FILE")
    ap.add_argument("--root", metavar="DIR")
    args = ap.parse_args()

    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    watch_parent()

    ctx = None
    if args.tls:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(args.tls[0], args.tls[1])
        ctx.set_alpn_protocols(["http/1.1"])
    log = open(args.log, "ab") if args.log else None
    global ROOT
    ROOT = os.path.realpath(args.root) if args.root else None
    try:
        server = Server(args.bind, args.port, ctx, log)
    except OSError as e:
        sys.exit("httpd.py: bind %s port %d: %s" % (args.bind, args.port, e.strerror))
    write_ready(args.ready, server.server_address[1])
    server.serve_forever()


if __name__ == "__main__":
    main()
