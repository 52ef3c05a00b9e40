/*
 * agentjail-broker: the agent's one door (docs/PROTOCOL.md).
 *
 * This version speaks the wire protocol — handshake, framing, permit table,
 * error records — and answers every request `denied`: fetch rules and the
 * fetcher arrive with the broker issue.  Everything the agent sends is
 * untrusted: each frame is decoded with its length checked before use, a
 * malformed one ends the channel with one ERROR record, and nothing here
 * can take the supervisor down with it.
 *
 *   agentjail-broker --supervisor PID [--user UID:GID] [--policy NAME]
 *
 * Started by the supervisor with posix_spawn.  Before reading anything it
 * ties its life to the supervisor's, (started by root) becomes UID:GID with
 * no supplementary groups, which clears every capability, and loads its own
 * seccomp filter (broker/confine.c): no exec, ptrace, mount, namespaces,
 * kernel modules.
 */
#include "config.h"

#include <agentjail/protocol.h>
#include <errno.h>
#include <fcntl.h>
#include <ev.h>
#include <grp.h>
#include <jansson.h>
#include <linux/capability.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "broker.h"
#include "internal.h"
#include "policy.h"
#include "url.h"

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

/* The broker exits with this when the agent broke the protocol. */
#define BROKER_EXIT_PROTOCOL 65

enum phase {
	PHASE_HELLO, /* only HELLO is permitted */
	PHASE_READY, /* requests and their frames */
};

/* Which message types the agent may send in each phase (OpenSSH's
 * monitor_permit, as a table). */
static const bool permitted[2][AJ_MSG__MAX + 1] = {
	[PHASE_HELLO] = {[AJ_MSG_HELLO] = true, [AJ_MSG_CONNECT] = true},
	[PHASE_READY] = {[AJ_MSG_CONNECT] = true,
			 [AJ_MSG_REQUEST] = true,
			 [AJ_MSG_BODY] = true,
			 [AJ_MSG_WINDOW] = true,
			 [AJ_MSG_CANCEL] = true},
};

/* Channels served at once: the inherited one plus those agent processes
 * opened with CONNECT (each its own socketpair, so concurrent clients
 * never read each other's answers). */
#define MAX_CHANNELS 64

struct broker;

struct channel {
	struct broker *broker;
	int fd; /* -1: slot free */
	ev_io io;
	enum phase phase;
	/* Requests whose body the agent is still sending: their BODY frames
	 * are read and dropped until END.  Bounded by AJ_PROTO_MAX_IN_FLIGHT. */
	uint32_t open_bodies[AJ_PROTO_MAX_IN_FLIGHT];
	size_t n_open_bodies;
};

struct broker {
	const char *policy;
	pid_t supervisor;
	struct aj_fetch_rule *rules; /* from the supervisor's resolved policy */
	size_t n_rules;
	struct ev_loop *loop;
	struct channel channels[MAX_CHANNELS];
	size_t n_open;
	int exit_status;
};

static int
fail(const char *what)
{
	fprintf(stderr, "agentjail-broker[%d]: %s: %s\n", (int)getpid(), what, strerror(errno));
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

/* Send a JSON frame; a peer that went away is not an error of ours. */
static void
send_json(struct channel *b, uint8_t type, uint32_t id, json_t *obj)
{
	uint8_t buf[AJ_PROTO_HEADER_SIZE + AJ_PROTO_MAX_JSON];
	int n = obj ? aj_proto_frame_json(type, id, obj, buf, sizeof(buf)) : -ENOMEM;

	json_decref(obj);
	if (n < 0 && type == AJ_MSG_ERROR) {
		/* Never leave a request unanswered because the answer did
		 * not fit: a short fixed record instead. */
		static const char fallback[] = "{\"code\":\"upstream_error\",\"message\":"
					       "\"the broker's answer did not fit in a frame\"}";
		n = aj_proto_frame(AJ_MSG_ERROR, 0, id, fallback, sizeof(fallback) - 1, buf,
				   sizeof(buf));
	}
	if (n > 0)
		(void)send(b->fd, buf, (size_t)n, MSG_NOSIGNAL);
}

static void
send_error(struct channel *b, uint32_t id, const char *code, const char *rule, const char *msg)
{
	json_t *obj = json_pack("{s:s, s:s}", "code", code, "message", msg);

	if (obj != NULL && rule != NULL)
		json_object_set_new(obj, "rule", json_string(rule));
	send_json(b, AJ_MSG_ERROR, id, obj);
}

static void
close_channel(struct channel *c)
{
	struct broker *b = c->broker;

	ev_io_stop(b->loop, &c->io);
	close(c->fd);
	c->fd = -1;
	c->n_open_bodies = 0;
	/* The last channel gone: every agent-side end is closed. */
	if (--b->n_open == 0)
		ev_break(b->loop, EVBREAK_ALL);
}

/* The channel is over: one record for the agent, one line for the log
 * (escaped: the reason may quote what the agent sent), then close it.
 * Other channels are not affected. */
static void
end_channel(struct channel *b, struct ev_loop *loop, const char *reason)
{
	char safe[512];

	send_error(b, 0, AJ_ERR_BAD_REQUEST, NULL, reason);
	aj_log_escape(reason, safe, sizeof(safe));
	fprintf(stderr, "agentjail-broker[%d]: protocol error, closing the channel: %s\n",
		(int)getpid(), safe);
	b->broker->exit_status = BROKER_EXIT_PROTOCOL;
	close_channel(b);
}

static void on_readable(struct ev_loop *loop, ev_io *w, int revents);

static void
open_channel(struct broker *b, int fd)
{
	for (size_t i = 0; i < MAX_CHANNELS; i++) {
		struct channel *c = &b->channels[i];

		if (c->fd >= 0)
			continue;
		memset(c, 0, sizeof(*c));
		c->broker = b;
		c->fd = fd;
		c->phase = PHASE_HELLO;
		ev_io_init(&c->io, on_readable, fd, EV_READ);
		c->io.data = c;
		ev_io_start(b->loop, &c->io);
		b->n_open++;
		return;
	}
	/* Full: the new channel hears why, and is closed. */
	{
		struct channel tmp = {.broker = b, .fd = fd};
		send_error(&tmp, 0, AJ_ERR_RATE_LIMITED, NULL, "too many channels open at once");
	}
	close(fd);
}

/* CONNECT: the fd must be one end of an AF_UNIX SOCK_SEQPACKET pair; any
 * other kind of file would have the broker write frames into it. */
static void
handle_connect(struct channel *c, struct ev_loop *loop, int fd)
{
	int type = 0, domain = 0;
	socklen_t len = sizeof(int);

	if (fd < 0) {
		end_channel(c, loop, "CONNECT without a socket (SCM_RIGHTS)");
		return;
	}
	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) < 0 || type != SOCK_SEQPACKET ||
	    getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) < 0 || domain != AF_UNIX) {
		close(fd);
		end_channel(c, loop, "CONNECT with something that is not a unix seqpacket socket");
		return;
	}
	/* The agent's end of the inherited channel (its peer is the
	 * supervisor, which made the pair) would have the broker talk to
	 * itself and close the channel every process of the jail shares. */
	{
		struct ucred cred;
		socklen_t clen = sizeof(cred);

		if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen) < 0 ||
		    cred.pid == c->broker->supervisor || cred.pid == getpid()) {
			close(fd);
			end_channel(c, loop, "CONNECT with a socket that is not a new pair");
			return;
		}
	}
	open_channel(c->broker, fd);
}

static bool
take_open_body(struct channel *b, uint32_t id)
{
	for (size_t i = 0; i < b->n_open_bodies; i++) {
		if (b->open_bodies[i] == id) {
			b->open_bodies[i] = b->open_bodies[--b->n_open_bodies];
			return true;
		}
	}
	return false;
}

static bool
is_open_body(const struct channel *b, uint32_t id)
{
	for (size_t i = 0; i < b->n_open_bodies; i++)
		if (b->open_bodies[i] == id)
			return true;
	return false;
}

static void
handle_hello(struct channel *b, struct ev_loop *loop, const uint8_t *payload, size_t len)
{
	char err[256];
	json_t *hello = NULL, *version;

	if (aj_proto_parse_json(payload, len, &hello, err, sizeof(err)) < 0) {
		end_channel(b, loop, err);
		return;
	}
	version = json_object_get(hello, "version");
	if (!json_is_integer(version) || json_integer_value(version) != AJ_PROTO_VERSION) {
		json_decref(hello);
		end_channel(b, loop, "HELLO: this broker speaks protocol version 1");
		return;
	}
	json_decref(hello);
	b->phase = PHASE_READY;
	send_json(b, AJ_MSG_WELCOME, 0,
		  json_pack("{s:i, s:s, s:i, s:i, s:i}", "version", AJ_PROTO_VERSION, "broker",
			    "agentjail-broker/" PACKAGE_VERSION, "max_payload",
			    AJ_PROTO_MAX_PAYLOAD, "max_in_flight", AJ_PROTO_MAX_IN_FLIGHT, "window",
			    262144));
}

static void
handle_request(struct channel *b, struct ev_loop *loop, const struct aj_frame *f,
	       const uint8_t *payload)
{
	struct aj_proto_request req = {0};
	char err[512], msg[AJ_URL_MAX + 1200], rule[600], safe_url[256];
	struct aj_url *url = NULL;
	size_t decided = (size_t)-1;
	unsigned method;
	int allowed;
	json_t *json = NULL;

	/* Not JSON at all ends the channel; JSON that is not a valid request
	 * fails that request only. */
	if (aj_proto_parse_json(payload, f->length, &json, err, sizeof(err)) < 0) {
		end_channel(b, loop, err);
		return;
	}
	json_decref(json);
	if (is_open_body(b, f->id)) {
		end_channel(b, loop, "REQUEST reuses the id of a request still sending its body");
		return;
	}
	if (!(f->flags & AJ_FLAG_END)) {
		if (b->n_open_bodies == AJ_PROTO_MAX_IN_FLIGHT) {
			end_channel(b, loop, "more requests sending bodies than max_in_flight");
			return;
		}
		b->open_bodies[b->n_open_bodies++] = f->id;
	}
	if (aj_proto_parse_request(payload, f->length, &req, err, sizeof(err)) < 0) {
		send_error(b, f->id, AJ_ERR_BAD_REQUEST, NULL, err);
		return;
	}
	/* One URL parser: what is matched is what would be fetched. */
	url = calloc(1, sizeof(*url));
	if (url == NULL) {
		send_error(b, f->id, AJ_ERR_UPSTREAM, NULL, "out of memory");
		aj_proto_request_clear(&req);
		return;
	}
	if (aj_url_normalise(req.url, url, err, sizeof(err)) < 0) {
		send_error(b, f->id, AJ_ERR_BAD_REQUEST, NULL, err);
		goto out;
	}
	method = aj_policy_method_bit(req.method);
	/* Quoted short and escaped: an answer must stay well inside a frame. */
	aj_log_escape(url->normalised, safe_url, sizeof(safe_url));
	if (method == 0) {
		snprintf(msg, sizeof(msg), "method %s is not one a rule can allow", req.method);
		send_error(b, f->id, AJ_ERR_BAD_REQUEST, NULL, msg);
		goto out;
	}
	allowed = aj_policy_decide(b->broker->rules, b->broker->n_rules, method, url, &decided);
	if (decided == (size_t)-1)
		snprintf(rule, sizeof(rule), "%s: no 'fetch allow' rule matches (default deny)",
			 b->broker->policy);
	else
		snprintf(rule, sizeof(rule), "%s", b->broker->rules[decided].origin);
	fprintf(stderr, "agentjail-broker[%d]: %s %s %s (%s)\n", (int)getpid(),
		allowed ? "allowed" : "denied", req.method, safe_url, rule);
	if (!allowed) {
		if (decided == (size_t)-1)
			snprintf(msg, sizeof(msg), "no fetch rule allows %s %s", req.method,
				 safe_url);
		else
			snprintf(msg, sizeof(msg), "%s %s is denied by a fetch deny rule",
				 req.method, url->normalised);
		send_error(b, f->id, AJ_ERR_DENIED, rule, msg);
		goto out;
	}
	/* Allowed by policy; the fetcher (libcurl) is not in this version. */
	snprintf(msg, sizeof(msg),
		 "%s %s is allowed by %s, but this broker does not perform fetches yet", req.method,
		 url->normalised, rule);
	send_error(b, f->id, AJ_ERR_UPSTREAM, rule, msg);
out:
	free(url);
	aj_proto_request_clear(&req);
}

static void
handle_frame(struct channel *c, struct ev_loop *loop, const uint8_t *buf, size_t len, int fd)
{
	struct aj_frame f;
	const uint8_t *payload;
	char err[256];

	if (aj_proto_decode(buf, len, &f, &payload, err, sizeof(err)) < 0) {
		if (fd >= 0)
			close(fd);
		end_channel(c, loop, err);
		return;
	}
	/* At most one fd per message, and only where the type says so. */
	if (fd >= 0 && f.type != AJ_MSG_CONNECT) {
		close(fd);
		end_channel(c, loop, "a file descriptor is only accepted with CONNECT");
		return;
	}
	if (!permitted[c->phase][f.type]) {
		if (fd >= 0)
			close(fd);
		snprintf(err, sizeof(err), "%s is not permitted %s", aj_proto_type_name(f.type),
			 c->phase == PHASE_HELLO ? "before HELLO" : "after HELLO");
		end_channel(c, loop, err);
		return;
	}
	switch (f.type) {
	case AJ_MSG_CONNECT:
		handle_connect(c, loop, fd);
		break;
	case AJ_MSG_HELLO:
		handle_hello(c, loop, payload, f.length);
		break;
	case AJ_MSG_REQUEST:
		handle_request(c, loop, &f, payload);
		break;
	case AJ_MSG_BODY:
		/* The request was already answered; its body is dropped. */
		if (!is_open_body(c, f.id)) {
			end_channel(c, loop, "BODY for a request that is not sending one");
			return;
		}
		if (f.flags & AJ_FLAG_END)
			take_open_body(c, f.id);
		break;
	case AJ_MSG_WINDOW:
	case AJ_MSG_CANCEL:
		/* Every request is answered at once: nothing to credit or to
		 * cancel (a late frame for a finished request is normal). */
		if (f.type == AJ_MSG_CANCEL)
			take_open_body(c, f.id);
		break;
	default:
		break;
	}
}

/* One message and at most one passed fd (close-on-exec).  More fds, or a
 * truncated control message, end the channel. */
static void
on_readable(struct ev_loop *loop, ev_io *w, int revents)
{
	struct channel *c = w->data;
	/* One byte more than the largest frame: a longer message shows as
	 * truncated (MSG_TRUNC) instead of being cut silently. */
	static uint8_t buf[AJ_PROTO_HEADER_SIZE + AJ_PROTO_MAX_PAYLOAD + 1];
	union {
		char buf[CMSG_SPACE(4 * sizeof(int))];
		struct cmsghdr align;
	} control;
	struct iovec iov = {.iov_base = buf, .iov_len = sizeof(buf)};
	struct msghdr mh = {.msg_iov = &iov,
			    .msg_iovlen = 1,
			    .msg_control = control.buf,
			    .msg_controllen = sizeof(control.buf)};
	struct cmsghdr *cm;
	int fd = -1, extra = 0;
	ssize_t n = recvmsg(c->fd, &mh, MSG_TRUNC | MSG_DONTWAIT | MSG_CMSG_CLOEXEC);

	if (n < 0) {
		if (errno == EAGAIN || errno == EINTR)
			return;
		close_channel(c);
		return;
	}
	for (cm = CMSG_FIRSTHDR(&mh); cm != NULL; cm = CMSG_NXTHDR(&mh, cm)) {
		size_t nfds;
		int fds[4];

		if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
			continue;
		nfds = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		memcpy(fds, CMSG_DATA(cm), nfds * sizeof(int));
		for (size_t i = 0; i < nfds; i++) {
			if (fd < 0)
				fd = fds[i];
			else {
				close(fds[i]);
				extra++;
			}
		}
	}
	if (n == 0) {
		if (fd >= 0)
			close(fd);
		/* This channel's agent side is closed. */
		close_channel(c);
		return;
	}
	if (extra > 0 || (mh.msg_flags & MSG_CTRUNC)) {
		if (fd >= 0)
			close(fd);
		end_channel(c, loop, "more than one file descriptor in a message");
		return;
	}
	if ((size_t)n > sizeof(buf) - 1) {
		if (fd >= 0)
			close(fd);
		end_channel(c, loop, "frame longer than the 65536-byte payload limit");
		return;
	}
	handle_frame(c, loop, buf, (size_t)n, fd);
}

/* The resolved policy the supervisor loaded, from the sealed memfd at
 * FD: the JSON of `profile show --json`.  Rules are parsed again here
 * with the same functions, so the broker's view is exactly the
 * supervisor's; any doubt refuses to start (fail closed). */
static int
load_policy(struct broker *b, int fd)
{
	json_error_t jerr;
	json_t *root, *rules, *item;
	size_t i;

	/* Only the sealed memfd the supervisor made: nobody can have changed
	 * it since. */
	{
		int seals = fcntl(fd, F_GET_SEALS);
		int want = F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL;

		if (seals < 0 || (seals & want) != want) {
			fprintf(stderr, "agentjail-broker[%d]: the policy is not a sealed memfd\n",
				(int)getpid());
			close(fd);
			return -1;
		}
	}
	root = json_loadfd(fd, JSON_REJECT_DUPLICATES, &jerr);
	close(fd);
	if (root == NULL) {
		fprintf(stderr, "agentjail-broker[%d]: reading the policy: %s\n", (int)getpid(),
			jerr.text);
		return -1;
	}
	rules = json_object_get(root, "fetch");
	if (!json_is_array(rules)) {
		json_decref(root);
		return -1;
	}
	if (json_is_string(json_object_get(root, "path")))
		b->policy = strdup(json_string_value(json_object_get(root, "path")));
	b->n_rules = json_is_array(rules) ? json_array_size(rules) : 0;
	b->rules = calloc(b->n_rules ? b->n_rules : 1, sizeof(*b->rules));
	if (b->rules == NULL || b->policy == NULL) {
		json_decref(root);
		return -1;
	}
	json_array_foreach(rules, i, item)
	{
		const char *text = json_string_value(json_object_get(item, "rule"));
		const char *origin = json_string_value(json_object_get(item, "origin"));
		char copy[AJ_URL_MAX + 64], err[512], *action, *methods, *pattern, *save = NULL;
		struct aj_fetch_rule *r = &b->rules[i];

		if (text == NULL || origin == NULL || strlen(text) >= sizeof(copy)) {
			json_decref(root);
			return -1;
		}
		snprintf(copy, sizeof(copy), "%s", text);
		action = strtok_r(copy, " ", &save);
		methods = strtok_r(NULL, " ", &save);
		pattern = strtok_r(NULL, " ", &save);
		if (action == NULL || methods == NULL || pattern == NULL ||
		    strtok_r(NULL, " ", &save) != NULL ||
		    (strcmp(action, "allow") != 0 && strcmp(action, "deny") != 0) ||
		    aj_policy_parse_methods(methods, &r->methods, err, sizeof(err)) < 0 ||
		    aj_policy_parse_pattern(pattern, r, err, sizeof(err)) < 0) {
			fprintf(stderr, "agentjail-broker[%d]: policy rule '%s' is invalid\n",
				(int)getpid(), text);
			json_decref(root);
			return -1;
		}
		r->allow = strcmp(action, "allow") == 0;
		snprintf(r->origin, sizeof(r->origin), "%s", origin);
	}
	json_decref(root);
	return 0;
}

int
main(int argc, char **argv)
{
	const char *fdenv = getenv("AGENTJAIL_FD");
	static struct broker b = {.policy = "the profile"};
	int fd = fdenv ? atoi(fdenv) : AJ_BROKER_FD;
	pid_t supervisor = 0;
	const char *user = NULL;
	for (int i = 1; i + 1 < argc; i += 2) {
		if (strcmp(argv[i], "--supervisor") == 0)
			supervisor = (pid_t)atoi(argv[i + 1]);
		else if (strcmp(argv[i], "--user") == 0)
			user = argv[i + 1];
		else if (strcmp(argv[i], "--policy") == 0)
			b.policy = argv[i + 1];
	}
	/* Die with the supervisor; if it is already gone, leave now. */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0)
		return fail("PR_SET_PDEATHSIG");
	if (supervisor <= 0 || getppid() != supervisor)
		return AJ_EXIT_SETUP;
	b.supervisor = supervisor;
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

	if (load_policy(&b, AJ_BROKER_FD + 1) < 0)
		return AJ_EXIT_SETUP;
	/* Confined before the first byte from the agent is read. */
	{
		char err[256];
		/* Silent: the supervisor reports it (one line, not a cascade
		 * when the jail fails for the same reason). */
		if (aj_broker_confine(err, sizeof(err)) < 0)
			return AJ_BROKER_EXIT_CONFINE;
	}
	b.loop = ev_default_loop(EVFLAG_AUTO | EVFLAG_NOENV);
	if (b.loop == NULL)
		return fail("ev_default_loop");
	for (size_t i = 0; i < MAX_CHANNELS; i++)
		b.channels[i].fd = -1;
	open_channel(&b, fd);
	ev_run(b.loop, 0);
	return b.exit_status;
}
