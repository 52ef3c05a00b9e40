#!/usr/bin/env python3
"""A sample agent for scripts/demo: it looks around its jail, fetches through
its broker what the profile allows (and is refused the rest), and tries the
ways out an injected prompt would try.  Standard library only, plus the
shipped client (clients/python/agentjail_client.py), which scripts/demo puts
in sys.modules ahead of this file: the jail needs no access to the tree.

    python3 - PORT UNIX-SOCKET-PATH   (code on stdin, inside the jail)"""
import ctypes
import errno
import os
import socket
import sys

from agentjail_client import AgentjailError, Denied, fetch

port = int(sys.argv[1])
unix_path = sys.argv[2]
site = f"http://127.0.0.1:{port}"
ok = True


def show(what, value):
    print(f"  {what:<34} {value}")


def attempt(what, fn, expect_errno=None):
    """FN must fail (with EXPECT_ERRNO, if given): anything else fails the demo."""
    global ok
    try:
        fn()
        result = "SUCCEEDED"
        ok = False
    except OSError as e:
        result = f"blocked: {errno.errorcode.get(e.errno, e.errno)} ({e.strerror})"
        if expect_errno is not None and e.errno != expect_errno:
            result += f", expected {errno.errorcode[expect_errno]}"
            ok = False
    print(f"  {what:<34} {result}")


def short_rule(rule):
    """The deciding rule without the profile's directory: "demo.profile:3"."""
    return rule.rsplit("/", 1)[-1] if rule else "?"


def broker_get(path, expect_allowed):
    """GET PATH of the site through the broker; one line, whatever happens."""
    global ok
    what = f"GET {path}"
    try:
        r = fetch(site + path, timeout=10)
    except Denied as e:
        result = f"refused: {e.code} by {short_rule(e.rule)}"
        if expect_allowed:
            ok = False
    except AgentjailError as e:
        result = f"FAILED: {e}"
        ok = False
    else:
        body = r.body.decode("utf-8", "replace").strip()
        if len(body) > 48:
            body = body[:47] + "…"
        result = f"{r.status}, {len(r.body)} bytes: {body!r}"
        if not expect_allowed or r.status != 200:
            result = ("SUCCEEDED: " if not expect_allowed else "FAILED: ") + result
            ok = False
    print(f"  {what:<34} {result}")


print("the agent's view:")
show("identity", f"uid={os.getuid()} gid={os.getgid()}")
show("hostname", socket.gethostname())
show("network interfaces", " ".join(sorted(os.listdir("/sys/class/net"))))
fd = os.environ.get("AGENTJAIL_FD")
show("broker door (AGENTJAIL_FD)", f"fd {fd} -> {os.readlink(f'/proc/self/fd/{fd}')}" if fd else "none")
fds = []
for n in sorted(os.listdir("/proc/self/fd"), key=int):
    try:
        if not os.readlink(f"/proc/self/fd/{n}").endswith("/fd"):  # listdir's own
            fds.append(n)
    except OSError:
        pass
show("open fds", " ".join(fds))
show("DEMO_SECRET in environment", os.environ.get("DEMO_SECRET", "(not visible)"))
show("processes visible", len([p for p in os.listdir("/proc") if p.isdigit()]))

print("through the broker, its only door (the profile allows GET /docs/**):")
broker_get("/docs/hello.txt", expect_allowed=True)
broker_get("/private/secret.txt", expect_allowed=False)

print("what an injected prompt would try:")


def connect_tcp():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(2)
    s.connect(("127.0.0.1", port))


def udp_dns():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.sendto(b"\0", ("127.0.0.1", 53))


def raw_socket():
    socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)


def ipv6():
    socket.socket(socket.AF_INET6, socket.SOCK_STREAM)


def host_unix_socket():
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(unix_path)


def io_uring():
    libc = ctypes.CDLL(None, use_errno=True)
    params = ctypes.create_string_buffer(120)
    if libc.syscall(425, 1, params) < 0:  # io_uring_setup
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))


def new_user_namespace():
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(0x10000000) < 0:  # CLONE_NEWUSER
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))


def write_core_pattern():
    with open("/proc/sys/kernel/core_pattern", "w") as f:
        f.write("|/tmp/x")


attempt(f"TCP connect to 127.0.0.1:{port}", connect_tcp, errno.EPERM)  # the site, directly
attempt("send a DNS packet (UDP)", udp_dns)
attempt("raw ICMP socket", raw_socket)
attempt("IPv6 socket", ipv6)
attempt("host unix socket in /tmp", host_unix_socket)
attempt("io_uring_setup (seccomp bypass)", io_uring)
attempt("unshare a user namespace", new_user_namespace)
attempt("write core_pattern", write_core_pattern)
sys.exit(0 if ok else 1)
