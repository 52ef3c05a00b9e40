/*
 * agentjail-broker: the agent's one door (docs/PROTOCOL.md).
 *
 *   agentjail-broker --supervisor PID [--user UID:GID] [--proxy N]
 *
 * Started by the supervisor with posix_spawn, with the descriptors of the
 * contract (common/fds.h): its end of the agent's socketpair at 3, the
 * resolved policy (a sealed memfd, common/handover.h) at 4, the audit pipe
 * at 5, and with `--proxy N` the pipe for its CA's certificate at 6, the DNS stub's socket
 * at 7, the captured ports' listeners at 8 and 9 and the proxy's N listening sockets from
 * 10.  Before it reads anything from the agent it ties its life to the
 * supervisor's, (started by root) becomes UID:GID with no supplementary
 * groups, which clears every capability, refuses to go on with any
 * capability or as root, and loads its own seccomp filter
 * (broker/confine.c): no exec, ptrace, mount, namespaces, kernel code.
 *
 * Then it wires the layers a request travels (broker/broker.h) and runs
 * the event loop until no agent process holds a channel.  Everything the
 * agent sends is untrusted, and nothing in here can take the supervisor
 * down with it.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <agentjail/exitcodes.h>

#include "broker.h"
#include "fds.h"
#include "handover.h"
#include "log.h"

#if defined(__SANITIZE_ADDRESS__)
/* ASan builds: LeakSanitizer's exit-time check ptraces the process, which
 * the broker's own filter refuses; it would turn every exit into a
 * failure.  The unit tests and the fuzzers check these code paths for
 * leaks instead. */
const char *__asan_default_options(void);
const char *
__asan_default_options(void)
{
	return "detect_leaks=0";
}
#endif

/* Where Debian keeps the system's CA certificates (package ca-certificates). */
#define SYSTEM_CA_BUNDLE "/etc/ssl/certs/ca-certificates.crt"

/* Everything the broker is made of, wired in main(). */
struct broker {
	struct ev_loop *loop;
	struct aj_policy policy;
	struct aj_ca_bundle ca;
	struct aj_egress *egress;
	struct aj_limits *limits;
	struct aj_audit_log *audit;
	struct aj_transfers *transfers;
	struct aj_requests *requests;
	struct aj_dispatch *dispatch;
	struct aj_channels *channels;
	struct aj_proxy *proxy; /* `proxy on`, else NULL */
	struct aj_dns_stub *dns; /* `proxy on`: the jail's resolver, else NULL */
	struct aj_tlsca *tlsca;  /* `proxy on`: the jail's CA for its tunnels */
	struct aj_proxy_relay *relay; /* `proxy on`: the raw tunnels of `tunnel` rules */
	size_t n_proxy;         /* --proxy N: its listening sockets, from AJ_FD_PROXY */
};

static int
fail(const char *what)
{
	aj_log_error("%s: %s", what, strerror(errno));
	return AJ_EXIT_SETUP;
}

static bool
has_no_capabilities(void)
{
	struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3};
	struct __user_cap_data_struct data[2];

	if (syscall(SYS_capget, &hdr, data) < 0)
		return false;
	for (int i = 0; i < 2; i++)
		if (data[i].effective || data[i].permitted || data[i].inheritable)
			return false;
	return true;
}

static int
become(const char *spec)
{
	unsigned uid, gid;
	char end;

	if (sscanf(spec, "%u:%u%c", &uid, &gid, &end) != 2 || uid == 0 || gid == 0) {
		errno = EINVAL;
		return -1;
	}
	if (setgroups(0, NULL) < 0 || setresgid(gid, gid, gid) < 0 || setresuid(uid, uid, uid) < 0)
		return -1;
	return 0;
}

/* ---- the policy and the CA certificates ------------------------------------------- */

/* Append LEN bytes of TEXT to the bundle (NUL-terminated). */
static int
ca_append(struct aj_ca_bundle *ca, const char *text, size_t len)
{
	char *grown = realloc(ca->pem, ca->len + len + 1);

	if (grown == NULL)
		return -1;
	ca->pem = grown;
	memcpy(ca->pem + ca->len, text, len);
	ca->len += len;
	ca->pem[ca->len] = '\0';
	return 0;
}

/* Append the file at PATH, if it exists. */
static int
ca_append_file(struct aj_ca_bundle *ca, const char *path)
{
	FILE *f = fopen(path, "re");
	char chunk[65536];
	size_t n;

	if (f == NULL)
		return errno == ENOENT ? 0 : -1;
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
		if (ca_append(ca, chunk, n) < 0) {
			fclose(f);
			return -1;
		}
	}
	fclose(f);
	return 0;
}

/* The resolved policy the supervisor loaded, and the CA certificates: the
 * system's, then the profile's, read now, before the broker is confined,
 * and handed to libcurl from memory.  Any doubt refuses to start (fail
 * closed). */
static int
load_policy(struct broker *b)
{
	char err[256];
	int r = aj_handover_read(AJ_FD_POLICY, &b->policy, err, sizeof(err));

	close(AJ_FD_POLICY);
	if (r < 0) {
		aj_log_error("the policy is invalid: %s", err);
		return -1;
	}
	if (ca_append_file(&b->ca, SYSTEM_CA_BUNDLE) < 0) {
		aj_log_error("the policy is invalid: reading " SYSTEM_CA_BUNDLE);
		return -1;
	}
	if (b->policy.ca_pem != NULL &&
	    (ca_append(&b->ca, "\n", 1) < 0 ||
	     ca_append(&b->ca, b->policy.ca_pem, strlen(b->policy.ca_pem)) < 0)) {
		aj_log_error("the policy is invalid: fetch_ca");
		return -1;
	}
	return 0;
}

/* ---- the process ------------------------------------------------------------------- */

/* `proxy on`: the jail's init made listening sockets, passed at
 * AJ_FD_PROXY and after it.  The proxy talks to the protocol layer on a
 * channel of the broker's own. */
/* The jail's CA, made here (its key never leaves this process); its
 * certificate goes to the supervisor for the jail's trust. */
static int
make_ca(struct broker *b)
{
	char err[256];
	size_t len, off = 0;
	const char *pem;

	if (aj_tlsca_new(&b->tlsca, err, sizeof(err)) < 0) {
		aj_log_error("making the jail's CA failed: %s", err);
		return -1;
	}
	pem = aj_tlsca_pem(b->tlsca, &len);
	while (off < len) {
		ssize_t n = write(AJ_FD_PROXY_CA, pem + off, len - off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			aj_log_error("handing the jail's CA certificate over failed: %s",
				     n < 0 ? strerror(errno) : "short write");
			return -1;
		}
		off += (size_t)n;
	}
	close(AJ_FD_PROXY_CA);
	return 0;
}

/* Is FD a socket of TYPE, listening if a stream (made non-blocking)? */
static bool
is_socket(int fd, int type)
{
	int got = 0, listening = 0;
	socklen_t len = sizeof(got), llen = sizeof(listening);

	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &got, &len) < 0 || got != type ||
	    (type == SOCK_STREAM &&
	     (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &llen) < 0 || !listening)))
		return false;
	return fcntl(fd, F_SETFL, O_NONBLOCK) == 0;
}

static int
wire_proxy(struct broker *b, size_t n)
{
	int listen_fds[AJ_PROXY_LISTENERS], capture_fds[2] = {AJ_FD_CAPTURE_HTTP, AJ_FD_CAPTURE_HTTPS},
					     pair[2];

	if (n == 0)
		return 0;
	if (make_ca(b) < 0)
		return -1;
	for (size_t i = 0; i < n; i++)
		listen_fds[i] = AJ_FD_PROXY + (int)i;
	/* What the contract says is there, or the broker does not serve. */
	for (size_t i = 0; i < n; i++)
		if (!is_socket(listen_fds[i], SOCK_STREAM))
			return -1;
	if (!is_socket(AJ_FD_DNS, SOCK_DGRAM) || !is_socket(capture_fds[0], SOCK_STREAM) ||
	    !is_socket(capture_fds[1], SOCK_STREAM))
		return -1;
	b->dns = aj_dns_stub_new(b->loop, AJ_FD_DNS, &b->policy, b->audit);
	if (b->dns == NULL ||
	    socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, pair) < 0)
		return -1;
	aj_channels_open_internal(b->channels, pair[0]);
	b->relay = aj_proxy_relay_new(b->loop, &b->policy, b->egress, b->audit);
	if (b->relay == NULL)
		return -1;
	b->proxy = aj_proxy_new(b->loop, pair[1], listen_fds, n, capture_fds, b->dns, b->tlsca,
				b->relay, b->audit, &aj_proxy_conn_hooks);
	return b->proxy == NULL ? -1 : 0;
}

/* The layers, bottom up (broker/broker.h), before the broker is confined:
 * libcurl's global state and the host's addresses are read here. */
static int
wire(struct broker *b)
{
	int audit_fd = fcntl(AJ_FD_AUDIT, F_GETFD) >= 0 ? AJ_FD_AUDIT : -1;
	struct ucred door = {0};
	socklen_t len = sizeof(door);

	b->egress = aj_egress_new(&b->policy);
	b->limits = aj_limits_new(&b->policy);
	b->audit = aj_audit_log_new(b->loop, audit_fd);
	if (b->egress == NULL || b->limits == NULL || b->audit == NULL)
		return -1;
	b->transfers =
		aj_transfers_new(b->loop, &b->policy, &b->ca, b->limits, b->audit, b->egress);
	if (b->transfers == NULL)
		return -1;
	b->requests = aj_requests_new(b->loop, &b->policy, b->limits, b->audit, b->transfers);
	if (b->requests == NULL)
		return -1;
	/* Who made the door (the jail's init), read off the door itself. */
	if (getsockopt(AJ_FD_DOOR, SOL_SOCKET, SO_PEERCRED, &door, &len) < 0 || door.pid <= 0)
		return -1;
	b->dispatch = aj_dispatch_new(b->loop, b->requests, door.pid);
	if (b->dispatch == NULL)
		return -1;
	b->channels = aj_channels_new(b->loop, &aj_dispatch_hooks, b->dispatch);
	if (b->channels == NULL)
		return -1;
	return wire_proxy(b, b->n_proxy);
}

static void
unwire(struct broker *b)
{
	aj_proxy_free(b->proxy);
	aj_proxy_relay_free(b->relay);
	aj_dns_stub_free(b->dns);
	aj_tlsca_free(b->tlsca);
	aj_channels_free(b->channels);
	aj_dispatch_free(b->dispatch);
	aj_requests_free(b->requests);
	aj_transfers_free(b->transfers);
	aj_audit_log_free(b->audit);
	aj_limits_free(b->limits);
	aj_egress_free(b->egress);
	aj_policy_clear(&b->policy);
	free(b->ca.pem);
}

int
main(int argc, char **argv)
{
	struct broker b = {0};
	pid_t supervisor = 0;
	const char *user = NULL;
	char err[256];
	int status;

	aj_log_init("agentjail-broker", true);
	for (int i = 1; i + 1 < argc; i += 2) {
		if (strcmp(argv[i], "--supervisor") == 0)
			supervisor = (pid_t)atoi(argv[i + 1]);
		else if (strcmp(argv[i], "--user") == 0)
			user = argv[i + 1];
		else if (strcmp(argv[i], "--proxy") == 0)
			b.n_proxy = (size_t)atoi(argv[i + 1]);
	}
	/* Die with the supervisor; if it is already gone, leave now. */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0)
		return fail("PR_SET_PDEATHSIG");
	if (supervisor <= 0 || getppid() != supervisor || b.n_proxy > AJ_PROXY_LISTENERS)
		return AJ_EXIT_SETUP;
	if (user != NULL && become(user) < 0)
		return fail("dropping to the profile's user");
	if (geteuid() == 0 || !has_no_capabilities()) {
		errno = EPERM;
		return fail("refusing to serve with root identity or capabilities");
	}
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return fail("PR_SET_NO_NEW_PRIVS");
	/* Re-arm: the identity change above cleared the death signal. */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0 || getppid() != supervisor)
		return AJ_EXIT_SETUP;
	/* Its memory holds the secrets of `inject` rules and the jail's CA
	 * key: no core dump of it, anywhere (the working directory it was
	 * started in is usually the agent's project), and no /proc/PID/mem
	 * for a process of the same user. */
	{
		struct rlimit none = {0, 0};

		if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0 || setrlimit(RLIMIT_CORE, &none) < 0 ||
		    chdir("/") < 0)
			return fail("making the broker's memory unreadable");
	}

	/* A body pipe whose reader is gone is an error to handle (EPIPE), not
	 * a reason to die. */
	signal(SIGPIPE, SIG_IGN);
	if (load_policy(&b) < 0)
		return AJ_EXIT_SETUP;
	b.loop = ev_default_loop(EVFLAG_AUTO | EVFLAG_NOENV);
	if (b.loop == NULL)
		return fail("ev_default_loop");
	if (wire(&b) < 0) {
		aj_log_error("setting the broker up failed: out of memory, or libcurl");
		return AJ_EXIT_SETUP;
	}
	/* Confined before the first byte from the agent is read.  Silent: the
	 * supervisor reports it (one line, not a cascade when the jail fails
	 * for the same reason). */
	if (aj_confine(err, sizeof(err)) < 0)
		return AJ_BROKER_EXIT_CONFINE;
	if (fcntl(AJ_FD_DOOR, F_SETFL, O_NONBLOCK) < 0)
		return fail("O_NONBLOCK on the channel");
	aj_channels_open(b.channels, AJ_FD_DOOR, false);
	ev_run(b.loop, 0);
	status = aj_dispatch_saw_protocol_error(b.dispatch) ? AJ_BROKER_EXIT_PROTOCOL : 0;
	unwire(&b);
	return status;
}
