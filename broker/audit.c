/*
 * The broker's audit trail: one JSON line per request, whatever became of
 * it, written to the pipe the supervisor reads (it adds the jail id and
 * the policy hash, writes --audit and the `fetch` event).  Secrets never
 * reach it: no header values at all, and no query where the deciding rule
 * says `sensitive-query`.
 */
#include "config.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "broker.h"
#include "log.h"

static int audit_fd = -1;

void
aj_audit_init(int fd)
{
	audit_fd = fd;
}

/* The URL as it may be written down: without its query when the rule
 * that allowed it marks queries sensitive. */
static void
loggable_url(const struct aj_req *r, const char *url, char *out, size_t len)
{
	const char *q;

	if (!(r->options & AJ_RULE_SENSITIVE_QUERY) || (q = strchr(url, '?')) == NULL) {
		snprintf(out, len, "%s", url);
		return;
	}
	snprintf(out, len, "%.*s?(redacted)", (int)(q - url), url);
}

void
aj_audit(const struct aj_audit_record *rec)
{
	const struct aj_req *r = rec->req;
	struct timespec now;
	char url[AJ_URL_MAX + 16], when[64];
	struct tm tm;
	json_t *obj;
	char *line;
	size_t len;

	if (audit_fd < 0)
		return;
	clock_gettime(CLOCK_REALTIME, &now);
	gmtime_r(&now.tv_sec, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(when + strlen(when), sizeof(when) - strlen(when), ".%03ldZ",
		 now.tv_nsec / 1000000);
	loggable_url(r, rec->url ? rec->url : (r->url.normalised[0] ? r->url.normalised : ""), url,
		     sizeof(url));
	obj = json_pack("{s:s, s:I, s:s, s:s, s:s, s:s*, s:s*, s:i, s:I, s:I, s:I, s:s*, s:i, "
			"s:i, s:b}",
			"time", when, "request", (json_int_t)r->id, "method", r->method, "url", url,
			"decision", rec->decision, "rule", rec->rule, "address", rec->address,
			"status", rec->status, "bytes_in", (json_int_t)r->body_len, "bytes_out",
			(json_int_t)rec->bytes_out, "duration_ms",
			(json_int_t)((ev_now(ev_default_loop(0)) - r->started) * 1000.0), "error",
			rec->error, "redirects", (int)rec->redirects, "hop", (int)rec->hop, "final",
			!rec->intermediate);
	if (obj != NULL && rec->spliced > 0)
		json_object_set_new(obj, "spliced", json_integer((json_int_t)rec->spliced));
	line = obj ? json_dumps(obj, JSON_COMPACT | JSON_ENSURE_ASCII) : NULL;
	json_decref(obj);
	if (line == NULL)
		return;
	len = strlen(line);
	line[len] = '\n';
	/* One write: lines up to PIPE_BUF are atomic, and a record is short
	 * (the URL is at most 8 KiB; longer lines still arrive whole, the
	 * broker is the pipe's only writer). */
	for (size_t off = 0; off < len + 1;) {
		ssize_t n = write(audit_fd, line + off, len + 1 - off);

		if (n <= 0)
			break;
		off += (size_t)n;
	}
	free(line);
}
