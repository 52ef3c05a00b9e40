/*
 * Unit tests for the broker's protocol layer (broker/dispatch.c) and the
 * request's life up to the transfer (broker/request.c), in-process: the
 * channels, dispatch, requests, limits and the audit log are the real
 * ones on a real loop, the agent is the test on the other end of a
 * SOCK_SEQPACKET pair.  No request here is allowed to reach a transfer
 * (there is none): they are all answered by the permit table, the
 * decision or the checks before it.
 */
#include "config.h"

#include <criterion/criterion.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "audit.h"
#include "broker.h"
#include "broker_fixture.h"

static const char profile[] = "fetch deny * http://127.0.0.1:9/private/**\n"
			      "fetch allow GET,POST http://127.0.0.1:9/** max-body 10\n"
			      "fetch deny * http://127.0.0.1:9/api/** query **action=delete**\n";

static struct {
	struct ev_loop *loop;
	struct aj_policy *policy;
	struct aj_limits *limits;
	struct aj_audit_log *audit;
	struct aj_requests *requests;
	struct aj_dispatch *dispatch;
	struct aj_channels *channels;
	int audit_pipe[2];
	int agent; /* the agent's end of the inherited channel */
} b;

static void
setup(void)
{
	int fds[2];

	b.loop = fixture_loop();
	b.policy = fixture_policy(profile);
	b.limits = aj_limits_new(b.policy);
	cr_assert_eq(pipe2(b.audit_pipe, O_CLOEXEC | O_NONBLOCK), 0);
	b.audit = aj_audit_log_new(b.loop, b.audit_pipe[1]);
	b.requests = aj_requests_new(b.loop, b.policy, b.limits, b.audit, NULL);
	b.dispatch = aj_dispatch_new(b.loop, b.requests, 1);
	b.channels = aj_channels_new(b.loop, &aj_dispatch_hooks, b.dispatch);
	cr_assert(b.limits && b.audit && b.requests && b.dispatch && b.channels);
	fixture_pair(fds);
	aj_channels_open(b.channels, fds[0], false);
	b.agent = fds[1];
}

static void
teardown(void)
{
	close(b.agent);
	aj_channels_free(b.channels);
	aj_dispatch_free(b.dispatch);
	aj_requests_free(b.requests);
	aj_audit_log_free(b.audit);
	aj_limits_free(b.limits);
	fixture_policy_free(b.policy);
	close(b.audit_pipe[0]);
	close(b.audit_pipe[1]);
	ev_loop_destroy(b.loop);
}

TestSuite(dispatch, .init = setup, .fini = teardown);

/* The next frame for the agent (the loop turned until one is there), its
 * payload parsed when it is JSON.  Returns its type, 0 if none came, -1
 * at EOF. */
static int
answer(struct aj_frame *f, json_t **json)
{
	static char payload[AJ_PROTO_MAX_PAYLOAD + 1];
	int fd, r = 0;

	for (int i = 0; i < 40 && r == 0; i++) {
		fixture_turn(b.loop, 0.02);
		r = fixture_recv(b.agent, f, payload, sizeof(payload), &fd);
	}
	if (r <= 0)
		return r;
	if (fd >= 0)
		close(fd);
	if (json != NULL)
		*json = json_loads(payload, 0, NULL);
	return f->type;
}

static const char *
member(json_t *obj, const char *key)
{
	return json_string_value(json_object_get(obj, key));
}

static void
hello(void)
{
	struct aj_frame f;
	json_t *w;

	fixture_send_json(b.agent, AJ_MSG_HELLO, 0, 0, "{\"version\":1,\"client\":\"test\"}");
	cr_assert_eq(answer(&f, &w), AJ_MSG_WELCOME);
	json_decref(w);
}

/* The channel ended: one ERROR (id 0) saying WHY, then EOF. */
static void
expect_channel_end(const char *why)
{
	struct aj_frame f;
	json_t *e;

	cr_assert_eq(answer(&f, &e), AJ_MSG_ERROR);
	cr_assert_eq(f.id, 0);
	cr_assert_str_eq(member(e, "code"), "bad_request");
	cr_assert_str_eq(member(e, "message"), why);
	json_decref(e);
	cr_assert_eq(answer(&f, NULL), -1, "the channel is closed");
	cr_assert(aj_dispatch_saw_protocol_error(b.dispatch));
}

/* Request ID was answered with an ERROR of CODE; returns the record. */
static json_t *
expect_error(uint32_t id, const char *code)
{
	struct aj_frame f;
	json_t *e;

	cr_assert_eq(answer(&f, &e), AJ_MSG_ERROR);
	cr_assert_eq(f.id, id);
	cr_assert_str_eq(member(e, "code"), code, "%s", member(e, "message"));
	return e;
}

/* The next audit record, checked against the schema. */
static json_t *
audit_record(void)
{
	char line[AJ_AUDIT_LINE_MAX];
	ssize_t n = read(b.audit_pipe[0], line, sizeof(line));
	json_t *rec;
	bool final, allowed;
	char err[128];

	cr_assert_gt(n, 1, "no audit record");
	cr_assert_eq(line[n - 1], '\n');
	cr_assert_eq(aj_audit_decode(line, (size_t)n - 1, &rec, &final, &allowed, err, sizeof(err)),
		     0, "%s", err);
	return rec;
}

Test(dispatch, hello_is_welcomed_with_the_limits)
{
	struct aj_frame f;
	json_t *w;

	fixture_send_json(b.agent, AJ_MSG_HELLO, 0, 0, "{\"version\":1}");
	cr_assert_eq(answer(&f, &w), AJ_MSG_WELCOME);
	cr_assert_eq(json_integer_value(json_object_get(w, "version")), 1);
	cr_assert_eq(json_integer_value(json_object_get(w, "window")), AJ_BROKER_WINDOW);
	cr_assert_eq(json_integer_value(json_object_get(w, "max_payload")), AJ_PROTO_MAX_PAYLOAD);
	cr_assert_eq(json_integer_value(json_object_get(w, "max_in_flight")),
		     AJ_PROTO_MAX_IN_FLIGHT);
	json_decref(w);
	cr_assert_not(aj_dispatch_saw_protocol_error(b.dispatch));
}

Test(dispatch, another_version_ends_the_channel)
{
	fixture_send_json(b.agent, AJ_MSG_HELLO, 0, 0, "{\"version\":2}");
	expect_channel_end("HELLO: this broker speaks protocol version 1");
}

Test(dispatch, the_permit_table_holds_in_each_phase)
{
	fixture_send_json(b.agent, AJ_MSG_REQUEST, AJ_FLAG_END, 1,
			  "{\"method\":\"GET\",\"url\":\"http://127.0.0.1:9/\"}");
	expect_channel_end("REQUEST is not permitted before HELLO");
}

Test(dispatch, hello_twice_is_refused)
{
	hello();
	fixture_send_json(b.agent, AJ_MSG_HELLO, 0, 0, "{\"version\":1}");
	expect_channel_end("HELLO is not permitted after HELLO");
}

Test(dispatch, a_broker_message_from_the_agent_is_refused)
{
	hello();
	fixture_send_json(b.agent, AJ_MSG_RESPONSE, 0, 1, "{}");
	expect_channel_end("RESPONSE is not permitted after HELLO");
}

Test(dispatch, a_descriptor_only_with_connect)
{
	int p[2];

	hello();
	cr_assert_eq(pipe2(p, O_CLOEXEC), 0);
	fixture_send(b.agent, AJ_MSG_CANCEL, 0, 1, NULL, 0, p[0]);
	expect_channel_end("a file descriptor is only accepted with CONNECT or LISTEN");
	close(p[0]);
	close(p[1]);
}

Test(dispatch, connect_without_a_socket)
{
	fixture_send(b.agent, AJ_MSG_CONNECT, 0, 0, NULL, 0, -1);
	expect_channel_end("CONNECT without a socket (SCM_RIGHTS)");
}

Test(dispatch, connect_with_a_pipe)
{
	int p[2];

	cr_assert_eq(pipe2(p, O_CLOEXEC), 0);
	fixture_send(b.agent, AJ_MSG_CONNECT, 0, 0, NULL, 0, p[1]);
	expect_channel_end("CONNECT with something that is not a unix seqpacket socket");
	close(p[0]);
	close(p[1]);
}

Test(dispatch, connect_with_a_pair_this_process_made)
{
	int pair[2];

	/* Its peer is the broker's own process: not the agent's new pair. */
	cr_assert_eq(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair), 0);
	fixture_send(b.agent, AJ_MSG_CONNECT, 0, 0, NULL, 0, pair[1]);
	expect_channel_end("CONNECT with a socket that is not a new pair");
	close(pair[0]);
	close(pair[1]);
}

/* A listening seqpacket socket on an abstract address of this test's own
 * (the broker socket's kind); *SA is where to connect. */
static int
broker_socket(struct sockaddr_un *sa, socklen_t *len)
{
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);

	cr_assert_geq(fd, 0);
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	*len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 +
			   (size_t)snprintf(sa->sun_path + 1, sizeof(sa->sun_path) - 1,
					    "agentjail-test-dispatch-%d", (int)getpid()));
	cr_assert_eq(bind(fd, (struct sockaddr *)sa, *len), 0);
	cr_assert_eq(listen(fd, 8), 0);
	return fd;
}

Test(dispatch, listen_first_on_the_door_serves_the_broker_socket)
{
	struct sockaddr_un sa;
	socklen_t len;
	struct aj_frame f;
	char payload[1024];
	int ls = broker_socket(&sa, &len), peer, fd, r = 0;

	fixture_send(b.agent, AJ_MSG_LISTEN, 0, 0, NULL, 0, ls);
	close(ls);
	fixture_turn(b.loop, 0.02);
	for (int i = 0; i < 2; i++) {
		peer = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
		cr_assert_eq(connect(peer, (struct sockaddr *)&sa, len), 0);
		fixture_send_json(peer, AJ_MSG_HELLO, 0, 0, "{\"version\":1,\"client\":\"t\"}");
		for (int k = 0; k < 40 && r == 0; k++) {
			fixture_turn(b.loop, 0.02);
			r = fixture_recv(peer, &f, payload, sizeof(payload), &fd);
		}
		cr_assert_gt(r, 0, "connection %d got no answer", i);
		cr_assert_eq(f.type, AJ_MSG_WELCOME);
		close(peer);
		r = 0;
	}
	/* The door itself is still the agent's, for HELLO. */
	hello();
}

Test(dispatch, listen_after_another_frame_is_refused)
{
	struct sockaddr_un sa;
	socklen_t len;
	int ls = broker_socket(&sa, &len);

	hello();
	fixture_send(b.agent, AJ_MSG_LISTEN, 0, 0, NULL, 0, ls);
	close(ls);
	expect_channel_end("LISTEN is not permitted after HELLO");
}

Test(dispatch, listen_not_first_is_refused)
{
	struct sockaddr_un sa;
	socklen_t len;
	int ls = broker_socket(&sa, &len), st;
	pid_t child = fork();

	/* A CONNECT first, from another process (a pair this one made is
	 * refused): the door has had its first frame. */
	cr_assert_geq(child, 0);
	if (child == 0) {
		int pair[2];

		if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) < 0)
			_exit(1);
		fixture_send(b.agent, AJ_MSG_CONNECT, 0, 0, NULL, 0, pair[1]);
		_exit(0);
	}
	cr_assert_eq(waitpid(child, &st, 0), child);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	fixture_send(b.agent, AJ_MSG_LISTEN, 0, 0, NULL, 0, ls);
	close(ls);
	expect_channel_end("LISTEN is only the jail's init's, before anything else");
}

Test(dispatch, listen_on_a_connected_channel_is_refused)
{
	struct sockaddr_un sa;
	socklen_t len;
	struct aj_frame f;
	char payload[1024];
	int ls = broker_socket(&sa, &len), pair[2], fd, r = 0;

	/* A pair the agent made: its peer must not be this process. */
	cr_assert_eq(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair), 0);
	aj_channels_open(b.channels, pair[0], true);
	fixture_send(pair[1], AJ_MSG_LISTEN, 0, 0, NULL, 0, ls);
	close(ls);
	for (int k = 0; k < 40 && r == 0; k++) {
		fixture_turn(b.loop, 0.02);
		r = fixture_recv(pair[1], &f, payload, sizeof(payload), &fd);
	}
	cr_assert_gt(r, 0);
	cr_assert_eq(f.type, AJ_MSG_ERROR);
	cr_assert(strstr(payload, "LISTEN is only the jail's init's, before anything else") != NULL,
		  "%s", payload);
	close(pair[1]);
}

Test(dispatch, listen_with_a_socket_that_does_not_listen)
{
	int pair[2];

	cr_assert_eq(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair), 0);
	fixture_send(b.agent, AJ_MSG_LISTEN, 0, 0, NULL, 0, pair[1]);
	expect_channel_end("LISTEN without a listening unix seqpacket socket");
	close(pair[0]);
	close(pair[1]);
}

Test(dispatch, no_rule_means_denied_with_the_default_deny_text)
{
	json_t *e, *rec;

	hello();
	fixture_send_json(b.agent, AJ_MSG_REQUEST, AJ_FLAG_END, 7,
			  "{\"method\":\"GET\",\"url\":\"https://other.example/a?b=1\"}");
	e = expect_error(7, "denied");
	cr_assert_str_eq(member(e, "rule"),
			 "/t/test.profile: no 'fetch allow' rule matches (default deny)");
	cr_assert_str_eq(member(e, "message"),
			 "no fetch rule allows GET https://other.example/a?b=1");
	json_decref(e);
	rec = audit_record();
	cr_assert_str_eq(member(rec, "decision"), "denied");
	cr_assert_str_eq(member(rec, "url"), "https://other.example/a?b=1");
	cr_assert_str_eq(member(rec, "error"), "denied");
	json_decref(rec);
	/* The request is over: its id may be used again. */
	fixture_send_json(b.agent, AJ_MSG_REQUEST, AJ_FLAG_END, 7,
			  "{\"method\":\"GET\",\"url\":\"https://other.example/\"}");
	json_decref(expect_error(7, "denied"));
	cr_assert_not(aj_dispatch_saw_protocol_error(b.dispatch));
}

Test(dispatch, a_deny_rule_wins_and_is_named)
{
	json_t *e;

	hello();
	fixture_send_json(b.agent, AJ_MSG_REQUEST, AJ_FLAG_END, 1,
			  "{\"method\":\"GET\",\"url\":\"http://127.0.0.1:9/private/key\"}");
	e = expect_error(1, "denied");
	cr_assert_str_eq(member(e, "rule"), "/t/test.profile:1");
	cr_assert_str_eq(member(e, "message"),
			 "GET http://127.0.0.1:9/private/key is denied by a fetch deny rule");
	json_decref(e);
}

Test(dispatch, a_bad_request_fails_alone_not_json_ends_the_channel)
{
	hello();
	fixture_send_json(b.agent, AJ_MSG_REQUEST, AJ_FLAG_END, 1,
			  "{\"method\":\"get\",\"url\":\"http://127.0.0.1:9/\"}");
	json_decref(expect_error(1, "bad_request"));
	json_decref(audit_record());
	fixture_send_json(b.agent, AJ_MSG_REQUEST, AJ_FLAG_END, 2,
			  "{\"method\":\"GET\",\"url\":\"http://user@127.0.0.1:9/\"}");
	json_decref(expect_error(2, "bad_request"));
	fixture_send_json(b.agent, AJ_MSG_REQUEST, AJ_FLAG_END, 3, "not json");
	expect_channel_end("invalid JSON at byte 3: invalid token near 'not'");
}

Test(dispatch, get_with_a_body_is_refused_and_the_body_dropped)
{
	struct aj_frame f;
	json_t *e;

	hello();
	fixture_send_json(b.agent, AJ_MSG_REQUEST, 0, 1,
			  "{\"method\":\"GET\",\"url\":\"http://127.0.0.1:9/\"}");
	e = expect_error(1, "bad_request");
	cr_assert_str_eq(member(e, "message"), "GET with a body is refused");
	json_decref(e);
	fixture_send(b.agent, AJ_MSG_BODY, 0, 1, "abc", 3, -1);
	fixture_send(b.agent, AJ_MSG_BODY, AJ_FLAG_END, 1, "def", 3, -1);
	cr_assert_eq(answer(&f, NULL), 0, "the body is read and dropped, nothing answered");
	cr_assert_not(aj_dispatch_saw_protocol_error(b.dispatch));
}

Test(dispatch, a_body_over_the_rule_limit_is_too_large)
{
	json_t *e;

	hello();
	fixture_send_json(b.agent, AJ_MSG_REQUEST, 0, 1,
			  "{\"method\":\"POST\",\"url\":\"http://127.0.0.1:9/up\"}");
	fixture_send(b.agent, AJ_MSG_BODY, 0, 1, "0123456789abc", 13, -1);
	e = expect_error(1, "too_large");
	cr_assert_str_eq(member(e, "rule"), "/t/test.profile:2");
	cr_assert_str_eq(member(e, "message"), "the request body is over the limit of 10 bytes");
	json_decref(e);
	fixture_send(b.agent, AJ_MSG_BODY, AJ_FLAG_END, 1, "x", 1, -1);
	cr_assert_not(aj_dispatch_saw_protocol_error(b.dispatch));
}

Test(dispatch, framing_is_the_brokers)
{
	json_t *e;

	hello();
	fixture_send_json(b.agent, AJ_MSG_REQUEST, AJ_FLAG_END, 1,
			  "{\"method\":\"POST\",\"url\":\"http://127.0.0.1:9/up\","
			  "\"headers\":[[\"Transfer-Encoding\",\"chunked\"]]}");
	e = expect_error(1, "bad_request");
	cr_assert_str_eq(member(e, "message"),
			 "Transfer-Encoding is refused: the broker frames the body itself");
	json_decref(e);
	fixture_send_json(b.agent, AJ_MSG_REQUEST, AJ_FLAG_END, 2,
			  "{\"method\":\"POST\",\"url\":\"http://127.0.0.1:9/up\","
			  "\"headers\":[[\"Content-Length\",\"5\"],[\"Content-Length\",\"5\"]]}");
	e = expect_error(2, "bad_request");
	cr_assert_str_eq(member(e, "message"),
			 "Content-Length must appear once, as a plain number");
	json_decref(e);
	fixture_send_json(b.agent, AJ_MSG_REQUEST, AJ_FLAG_END, 3,
			  "{\"method\":\"POST\",\"url\":\"http://127.0.0.1:9/up\","
			  "\"headers\":[[\"Content-Length\",\"5\"]]}");
	e = expect_error(3, "bad_request");
	cr_assert_str_eq(member(e, "message"),
			 "Content-Length 5 does not match the body (0 bytes)");
	json_decref(e);
}

Test(dispatch, the_host_is_the_urls)
{
	json_t *e;

	hello();
	fixture_send_json(b.agent, AJ_MSG_REQUEST, AJ_FLAG_END, 1,
			  "{\"method\":\"GET\",\"url\":\"http://127.0.0.1:9/\","
			  "\"headers\":[[\"Host\",\"evil.example\"]]}");
	e = expect_error(1, "bad_request");
	cr_assert_str_eq(member(e, "message"),
			 "Host header 'evil.example' does not name the URL's authority "
			 "'127.0.0.1:9'");
	json_decref(e);
}

Test(dispatch, an_id_in_use_ends_the_channel)
{
	hello();
	fixture_send_json(b.agent, AJ_MSG_REQUEST, 0, 5,
			  "{\"method\":\"POST\",\"url\":\"http://127.0.0.1:9/up\"}");
	fixture_send_json(b.agent, AJ_MSG_REQUEST, 0, 5,
			  "{\"method\":\"POST\",\"url\":\"http://127.0.0.1:9/up\"}");
	expect_channel_end("REQUEST reuses the id of a request still open");
}

Test(dispatch, a_body_for_no_request_ends_the_channel)
{
	hello();
	fixture_send(b.agent, AJ_MSG_BODY, AJ_FLAG_END, 3, "x", 1, -1);
	expect_channel_end("BODY for a request that is not sending one");
}

Test(dispatch, cancel_while_the_body_comes_answers_nothing_and_is_audited)
{
	struct aj_frame f;
	json_t *rec;

	hello();
	fixture_send_json(b.agent, AJ_MSG_REQUEST, 0, 4,
			  "{\"method\":\"POST\",\"url\":\"http://127.0.0.1:9/up\"}");
	fixture_send(b.agent, AJ_MSG_BODY, 0, 4, "abc", 3, -1);
	fixture_send(b.agent, AJ_MSG_CANCEL, 0, 4, NULL, 0, -1);
	cr_assert_eq(answer(&f, NULL), 0, "CANCEL is never answered");
	rec = audit_record();
	cr_assert_str_eq(member(rec, "error"), "cancelled");
	cr_assert_str_eq(member(rec, "rule"), "/t/test.profile:2");
	cr_assert_eq(json_integer_value(json_object_get(rec, "bytes_in")), 3);
	json_decref(rec);
	/* A late WINDOW or CANCEL for it is normal. */
	fixture_send(b.agent, AJ_MSG_WINDOW, 0, 4, "\x00\x10\x00\x00", 4, -1);
	fixture_send(b.agent, AJ_MSG_CANCEL, 0, 4, NULL, 0, -1);
	cr_assert_eq(answer(&f, NULL), 0);
	cr_assert_not(aj_dispatch_saw_protocol_error(b.dispatch));
}

/* Issue 9: a query is decided as servers read it. */
Test(dispatch, queries_are_decided_as_servers_read_them)
{
	json_t *e;

	hello();
	fixture_send_json(
		b.agent, AJ_MSG_REQUEST, AJ_FLAG_END, 1,
		"{\"method\":\"GET\",\"url\":\"http://127.0.0.1:9/api/x?%61ction=delete\"}");
	e = expect_error(1, "denied");
	cr_assert_str_eq(member(e, "rule"), "/t/test.profile:3");
	cr_assert_str_eq(
		member(e, "message"),
		"GET http://127.0.0.1:9/api/x?action=delete is denied by a fetch deny rule");
	json_decref(e);
	fixture_send_json(
		b.agent, AJ_MSG_REQUEST, AJ_FLAG_END, 2,
		"{\"method\":\"GET\",\"url\":\"http://127.0.0.1:9/api/x?action%3Ddelete\"}");
	e = expect_error(2, "bad_request");
	cr_assert_str_eq(member(e, "message"),
			 "query parameter name 'action%3Ddelete' holds an encoded '=' or '&' "
			 "(servers read it differently)");
	json_decref(e);
	fixture_send_json(b.agent, AJ_MSG_REQUEST, AJ_FLAG_END, 3,
			  "{\"method\":\"GET\",\"url\":\"http://127.0.0.1:9/api/"
			  "x?action=view&action=delete\"}");
	e = expect_error(3, "bad_request");
	cr_assert_str_eq(member(e, "rule"), "/t/test.profile:3");
	cr_assert_str_eq(member(e, "message"),
			 "query parameter 'action' is given twice with different values, and the "
			 "rule at /t/test.profile:3 decides on it (servers read such a query "
			 "differently)");
	json_decref(e);
	cr_assert_not(aj_dispatch_saw_protocol_error(b.dispatch));
}
