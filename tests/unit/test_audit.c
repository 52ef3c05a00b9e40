/*
 * Unit tests for the supervisor's reader of the broker's audit records
 * (supervisor/audit.c), driven through the pipe it creates, as the broker
 * writes into it: each record is stamped and passed on (--audit and a
 * `fetch` event), a request counts once (by its final record), and what is
 * not a record of the schema (common/audit.h), or is too long to be one,
 * is dropped and said so.
 */
#include "config.h"

#include <criterion/criterion.h>
#include <criterion/redirect.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "audit.h"
#include "supervisor.h"

#define SHA "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

/* The `fetch` events, as the stream's callback saw them. */
struct seen {
	json_t *events; /* array */
};

static struct seen seen;
static struct aj_events *events;
static struct aj_audit *audit;
static int broker_end = -1, out = -1;
static struct aj_output *output;

static void
collect(const char *line, void *arg)
{
	struct seen *s = arg;
	json_error_t err;
	json_t *ev = json_loads(line, 0, &err);

	cr_assert_not_null(ev, "an event is not JSON: %s (%s)", line, err.text);
	json_array_append_new(s->events, ev);
}

static void
setup_with_out(int out_fd)
{
	int r;

	seen.events = json_array();
	cr_assert_eq(aj_events_new(NULL, collect, &seen, &events), 0);
	out = out_fd;
	output = NULL;
	if (out >= 0)
		cr_assert_eq(aj_output_new(out, 1 << 20, &output), 0);
	r = aj_audit_new(output, events, SHA, 0, &broker_end, &audit);
	cr_assert_eq(r, 0, "aj_audit_new: %s", strerror(-r));
	cr_assert_geq(broker_end, 0);
	cr_assert_geq(aj_audit_fd(audit), 0);
	cr_assert(fcntl(broker_end, F_GETFD) & FD_CLOEXEC, "the broker's end is inheritable");
	cr_assert(fcntl(aj_audit_fd(audit), F_GETFL) & O_NONBLOCK, "the reader blocks");
}

static void
setup(void)
{
	int fd = memfd_create("audit", MFD_CLOEXEC);

	cr_assert_geq(fd, 0);
	setup_with_out(fd);
}

static void
setup_redirected(void)
{
	cr_redirect_stderr();
	setup();
}

static void
teardown(void)
{
	aj_audit_free(audit);
	audit = NULL;
	aj_events_free(events);
	events = NULL;
	aj_output_free(output);
	output = NULL;
	json_decref(seen.events);
	seen.events = NULL;
	if (broker_end >= 0)
		close(broker_end);
	broker_end = -1;
	if (out >= 0)
		close(out);
	out = -1;
}

TestSuite(audit, .init = setup, .fini = teardown);

/* The broker writes TEXT (whole, into the pipe). */
static void
broker_writes(const char *text)
{
	size_t len = strlen(text);

	cr_assert_eq(write(broker_end, text, len), (ssize_t)len);
}

/* A record of the schema, as the broker encodes it. */
static char *
record(const char *decision, bool final, unsigned hop, const char *url, const char *rule)
{
	struct aj_audit_record r = {.time = "2026-12-06T00:00:00.000Z",
				    .request = 1,
				    .method = "GET",
				    .url = url ? url : "http://a/",
				    .decision = decision,
				    .rule = rule,
				    .redirects = hop,
				    .hop = hop,
				    .final = final};
	char *line = NULL;

	cr_assert_eq(aj_audit_encode(&r, &line), 0);
	return line;
}

/* The broker writes one record. */
static void
broker_records(const char *decision, bool final, unsigned hop)
{
	char *line = record(decision, final, hop, NULL, NULL);

	broker_writes(line);
	free(line);
}

static void
counts(unsigned long long allowed, unsigned long long denied)
{
	unsigned long long a = 99, d = 99;

	aj_audit_counts(audit, &a, &d);
	cr_assert_eq(a, allowed, "allowed %llu, want %llu", a, allowed);
	cr_assert_eq(d, denied, "denied %llu, want %llu", d, denied);
}

/* What went to --audit so far, one JSON record per line. */
static json_t *
audit_out(void)
{
	json_t *all = json_array();
	char *text = NULL;
	size_t cap = 0;
	FILE *f;
	int fd = dup(out);

	cr_assert_geq(fd, 0);
	f = fdopen(fd, "r");
	cr_assert_not_null(f);
	rewind(f);
	while (getline(&text, &cap, f) > 0) {
		json_error_t err;
		json_t *rec = json_loads(text, 0, &err);

		cr_assert_not_null(rec, "--audit holds a line that is not JSON: %s", text);
		json_array_append_new(all, rec);
	}
	free(text);
	fclose(f);
	return all;
}

static const char *
str(json_t *obj, const char *key)
{
	const char *s = json_string_value(json_object_get(obj, key));
	return s ? s : "(none)";
}

Test(audit, a_record_is_stamped_passed_on_and_counted)
{
	json_t *recs, *rec, *ev;
	char *line = record("allowed", true, 0, "http://a/", "p:3");

	broker_writes(line);
	free(line);
	cr_assert_eq(aj_audit_read(audit), 0);
	counts(1, 0);

	/* --audit: the broker's members, the jail and the policy. */
	recs = audit_out();
	cr_assert_eq(json_array_size(recs), 1);
	rec = json_array_get(recs, 0);
	cr_assert_str_eq(str(rec, "decision"), "allowed");
	cr_assert_str_eq(str(rec, "rule"), "p:3");
	cr_assert_str_eq(str(rec, "jail"), aj_events_jail_id(events));
	cr_assert_str_eq(str(rec, "policy_sha256"), SHA);
	json_decref(recs);

	/* The event: a `fetch` with the record's members, the jail once. */
	cr_assert_eq(json_array_size(seen.events), 1);
	ev = json_array_get(seen.events, 0);
	cr_assert_str_eq(str(ev, "type"), "fetch");
	cr_assert_str_eq(str(ev, "jail"), aj_events_jail_id(events));
	cr_assert_str_eq(str(ev, "url"), "http://a/");
	cr_assert_str_eq(str(ev, "policy_sha256"), SHA);
}

/* A request the proxy made says so; the others do not carry `via`. */
Test(audit, a_proxy_request_is_marked_via_proxy)
{
	struct aj_audit_record r = {.time = "2026-12-06T00:00:00.000Z",
				    .request = 1,
				    .method = "GET",
				    .url = "http://a/",
				    .decision = "allowed",
				    .final = true,
				    .via = "proxy"};
	char *line = NULL, *plain = record("allowed", true, 0, NULL, NULL);
	json_t *recs;

	cr_assert_eq(aj_audit_encode(&r, &line), 0);
	cr_assert_null(strstr(plain, "\"via\""), "%s", plain);
	broker_writes(line);
	broker_writes(plain);
	free(line);
	free(plain);
	cr_assert_eq(aj_audit_read(audit), 0);
	counts(2, 0);
	recs = audit_out();
	cr_assert_eq(json_array_size(recs), 2);
	cr_assert_str_eq(str(json_array_get(recs, 0), "via"), "proxy");
	cr_assert_null(json_object_get(json_array_get(recs, 1), "via"));
	json_decref(recs);
}

Test(audit, a_request_counts_once_by_its_final_record)
{
	json_t *recs;

	/* Two redirecting hops and the final answer: one allowed request. */
	broker_records("allowed", false, 0);
	broker_records("allowed", false, 1);
	broker_records("allowed", true, 2);
	cr_assert_eq(aj_audit_read(audit), 0);
	counts(1, 0);
	/* A redirect refused at its second hop: one denied request. */
	broker_records("allowed", false, 0);
	broker_records("denied", true, 1);
	cr_assert_eq(aj_audit_read(audit), 0);
	counts(1, 1);
	/* "refused" (a malformed request) counts as denied too. */
	broker_records("refused", true, 0);
	cr_assert_eq(aj_audit_read(audit), 0);
	counts(1, 2);
	/* Every record is still written and emitted, hops too. */
	recs = audit_out();
	cr_assert_eq(json_array_size(recs), 6);
	json_decref(recs);
	cr_assert_eq(json_array_size(seen.events), 6);
}

Test(audit, a_record_may_arrive_in_pieces)
{
	char *denied = record("denied", true, 0, NULL, NULL);
	char *allowed = record("allowed", true, 0, NULL, NULL);
	char *both = NULL;
	size_t cut = strlen(denied) / 2;

	cr_assert_gt(asprintf(&both, "%s%s", denied, allowed), 0);
	both[cut] = '\0';
	broker_writes(both);
	cr_assert_eq(aj_audit_read(audit), 0);
	counts(0, 0);
	cr_assert_eq(json_array_size(seen.events), 0);
	both[cut] = denied[cut];
	both[strlen(denied) + 5] = '\0';
	broker_writes(both + cut);
	cr_assert_eq(aj_audit_read(audit), 0);
	counts(0, 1);
	broker_writes(allowed + 5);
	cr_assert_eq(aj_audit_read(audit), 0);
	counts(1, 1);
	cr_assert_eq(json_array_size(seen.events), 2);
	free(both);
	free(denied);
	free(allowed);
}

/* RECORD (a good one) with its member "KEY":VALUE changed, or added. */
static char *
spoilt(const char *key, const char *value)
{
	char *line = record("allowed", true, 0, NULL, NULL), *text;
	json_t *rec = json_loads(line, 0, NULL);

	cr_assert_not_null(rec);
	if (value == NULL)
		json_object_del(rec, key);
	else
		json_object_set_new(rec, key, json_loads(value, JSON_DECODE_ANY, NULL));
	text = json_dumps(rec, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(rec);
	free(line);
	cr_assert_not_null(text);
	return text;
}

Test(audit, a_line_that_is_not_a_record_is_dropped, .init = setup_redirected)
{
	char *lines[] = {strdup("not json"),
			 strdup("[\"decision\",\"allowed\"]"),
			 spoilt("decision", NULL),
			 spoilt("decision", "7"),
			 spoilt("decision", "\"error\""),
			 spoilt("final", "1"),
			 spoilt("via", "1"),
			 spoilt("command", "\"rm -rf /\""),
			 strdup("{\"decision\":\"allowed\",\"decision\":\"denied\"}")};
	json_t *recs;

	for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
		broker_writes(lines[i]);
		broker_writes("\n");
		free(lines[i]);
	}
	broker_records("allowed", true, 0);
	cr_assert_eq(aj_audit_read(audit), 0);
	/* Only the last line is a record. */
	counts(1, 0);
	recs = audit_out();
	cr_assert_eq(json_array_size(recs), 1);
	json_decref(recs);
	cr_assert_eq(json_array_size(seen.events), 1);
	fflush(stderr);
	cr_assert_stderr_eq_str(
		"agentjail: the broker wrote an audit line that is not a record (not a JSON "
		"object); dropped\n"
		"agentjail: the broker wrote an audit line that is not a record (not a JSON "
		"object); dropped\n"
		"agentjail: the broker wrote an audit line that is not a record (member "
		"'decision' is missing); dropped\n"
		"agentjail: the broker wrote an audit line that is not a record (member "
		"'decision' has the wrong type); dropped\n"
		"agentjail: the broker wrote an audit line that is not a record (the decision is "
		"not one of the three); dropped\n"
		"agentjail: the broker wrote an audit line that is not a record (member 'final' "
		"has the wrong type); dropped\n"
		"agentjail: the broker wrote an audit line that is not a record (member 'via' "
		"has the wrong type); dropped\n"
		"agentjail: the broker wrote an audit line that is not a record (member "
		"'command' is not in the schema); dropped\n"
		"agentjail: the broker wrote an audit line that is not a record (not a JSON "
		"object); dropped\n");
}

Test(audit, an_overlong_line_is_skipped_whole, .init = setup_redirected)
{
	/* 40,000 bytes: past the 32 KiB a record may have.  Its end arrives
	 * after the reader gave up on it; that end is not a record either. */
	char *tail = record("allowed", true, 0, NULL, NULL);
	size_t len = 40000;
	char *line = malloc(len + 1);
	json_t *recs;

	cr_assert_not_null(line);
	memset(line, ' ', len);
	line[0] = '{';
	memcpy(line + len - strlen(tail), tail, strlen(tail)); /* its newline last */
	line[len] = '\0';
	broker_writes(line);
	broker_records("denied", true, 0);
	cr_assert_eq(aj_audit_read(audit), 0);
	counts(0, 1);
	recs = audit_out();
	cr_assert_eq(json_array_size(recs), 1);
	cr_assert_str_eq(str(json_array_get(recs, 0), "decision"), "denied");
	json_decref(recs);
	fflush(stderr);
	cr_assert_stderr_eq_str(
		"agentjail: the broker wrote an audit line over 32768 bytes; dropped\n");
	free(line);
	free(tail);
}

Test(audit, end_of_file_when_the_broker_is_gone)
{
	broker_records("allowed", true, 0);
	close(broker_end);
	broker_end = -1;
	cr_assert_eq(aj_audit_read(audit), 1);
	/* What came before the end is handled. */
	counts(1, 0);
	cr_assert_eq(aj_audit_read(audit), 1);
}

Test(audit, a_failing_audit_file_leaves_the_event_stream, .init = setup_redirected)
{
	int full = open("/dev/full", O_WRONLY | O_CLOEXEC);

	cr_assert_geq(full, 0);
	/* Replace the setup's reader with one writing to /dev/full. */
	teardown();
	setup_with_out(full);
	broker_records("allowed", true, 0);
	broker_records("denied", true, 0);
	cr_assert_eq(aj_audit_read(audit), 0);
	counts(1, 1);
	cr_assert_eq(json_array_size(seen.events), 2);
	/* Counted (the exit event and the run's last stderr line say so),
	 * never a line per record. */
	cr_assert_eq(aj_output_lost(output), 2);
	fflush(stderr);
	cr_assert_stderr_eq_str("");
}

Test(audit, without_an_audit_file_records_are_events_only)
{
	teardown();
	setup_with_out(-1);
	broker_records("allowed", true, 0);
	cr_assert_eq(aj_audit_read(audit), 0);
	counts(1, 0);
	cr_assert_eq(json_array_size(seen.events), 1);
}

Test(audit, no_reader_counts_nothing)
{
	unsigned long long a = 5, d = 5;

	aj_audit_counts(NULL, &a, &d);
	cr_assert_eq(a, 0);
	cr_assert_eq(d, 0);
	aj_audit_free(NULL);
}
