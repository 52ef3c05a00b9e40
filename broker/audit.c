/*
 * The broker's audit trail: one record per request, whatever became of it
 * (the schema: common/audit.h), written to the pipe the supervisor reads
 * (it adds the jail id and the policy hash, writes --audit and the `fetch`
 * event).  Secrets never reach it: no header values at all, and no query
 * where a rule says `sensitive-query`.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "audit.h"
#include "broker.h"

struct aj_audit_log {
	struct ev_loop *loop;
	int fd; /* -1: records go nowhere */
};

struct aj_audit_log *
aj_audit_log_new(struct ev_loop *loop, int fd)
{
	struct aj_audit_log *log = calloc(1, sizeof(*log));

	if (log != NULL) {
		log->loop = loop;
		log->fd = fd;
	}
	return log;
}

void
aj_audit_log_free(struct aj_audit_log *log)
{
	free(log);
}

/* The URL as it may be written down: without its query when the rules
 * that allowed it mark queries sensitive. */
static void
loggable_url(const struct aj_req *r, char *out, size_t len)
{
	const char *url = r->url.normalised, *q;

	if (!(r->options & AJ_RULE_SENSITIVE_QUERY) || (q = strchr(url, '?')) == NULL) {
		snprintf(out, len, "%s", url);
		return;
	}
	snprintf(out, len, "%.*s?(redacted)", (int)(q - url), url);
}

/* REC, stamped with the time now, as one line on the pipe. */
static void
emit(struct aj_audit_log *log, struct aj_audit_record *rec)
{
	char when[64], *line;
	struct timespec now;
	struct tm tm;
	size_t len;

	if (log->fd < 0)
		return;
	clock_gettime(CLOCK_REALTIME, &now);
	gmtime_r(&now.tv_sec, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(when + strlen(when), sizeof(when) - strlen(when), ".%03ldZ",
		 now.tv_nsec / 1000000);
	rec->time = when;
	if (aj_audit_encode(rec, &line) < 0)
		return;
	len = strlen(line);
	/* One write: lines up to PIPE_BUF are atomic, and a record is short
	 * (the URL is at most 8 KiB; longer lines still arrive whole, the
	 * broker is the pipe's only writer). */
	for (size_t off = 0; off < len;) {
		ssize_t n = write(log->fd, line + off, len - off);

		if (n <= 0)
			break;
		off += (size_t)n;
	}
	free(line);
}

void
aj_audit_log_write(struct aj_audit_log *log, const struct aj_audit_entry *e)
{
	const struct aj_req *r = e->req;
	char url[AJ_URL_MAX + 16];
	struct aj_audit_record rec = {
		.request = r->id,
		.method = r->method,
		.url = url,
		.decision = e->decision,
		.rule = e->rule,
		.address = e->address,
		.status = e->status,
		.bytes_in = r->body_len,
		.bytes_out = e->bytes_out,
		.duration_ms = (uint64_t)((ev_now(log->loop) - r->started) * 1000.0),
		.error = e->error,
		.redirects = e->redirects,
		.hop = e->hop,
		.final = !e->intermediate,
		.spliced = e->spliced,
		.via = aj_channel_is_internal(r->ch) ? "proxy" : NULL,
		.injected = e->injected,
	};

	pid_t pid;

	aj_channel_peer(r->ch, &pid, &rec.comm, &rec.exe);
	rec.pid = (uint64_t)pid;
	loggable_url(r, url, sizeof(url));
	emit(log, &rec);
}

void
aj_audit_log_write_dns(struct aj_audit_log *log, const char *name)
{
	char url[300];
	struct aj_audit_record rec = {
		.method = "DNS",
		.url = url,
		.decision = "denied",
		.rule = "no fetch rule names this host",
		.error = "denied",
		.final = true,
		.via = "dns",
	};

	snprintf(url, sizeof(url), "dns:%s", name);
	emit(log, &rec);
}

void
aj_audit_log_write_proxy(struct aj_audit_log *log, const char *method, const char *url,
			 const char *error)
{
	char safe[AJ_URL_MAX + 16];
	const char *q = strchr(url, '?');
	struct aj_audit_record rec = {
		.method = method,
		.url = safe,
		.decision = "refused",
		.error = error,
		.final = true,
		.via = "proxy",
	};

	/* No rule said whether the query is sensitive: it is not written. */
	if (q == NULL)
		snprintf(safe, sizeof(safe), "%s", url);
	else
		snprintf(safe, sizeof(safe), "%.*s?(redacted)", (int)(q - url), url);
	emit(log, &rec);
}

void
aj_audit_log_write_tunnel(struct aj_audit_log *log, const struct aj_audit_tunnel *t)
{
	struct aj_audit_record rec = {
		.method = "CONNECT",
		.url = t->target,
		.decision = t->decision,
		.rule = t->rule,
		.address = t->address,
		.status = t->status,
		.bytes_in = t->bytes_in,
		.bytes_out = t->bytes_out,
		.duration_ms = t->duration_ms,
		.error = t->error,
		.final = true,
		.via = "proxy",
		.kind = "tunnel",
	};

	emit(log, &rec);
}
