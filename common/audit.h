/*
 * The broker's audit record, one JSON line per request (docs/EVENTS.md,
 * the `fetch` event): the schema written once, for both ends of the audit
 * pipe.  The broker encodes (broker/audit.c), the supervisor decodes
 * (supervisor/audit.c) and trusts nothing it has not checked against the
 * same table: the broker parses the internet, the supervisor must not
 * relay a record it did not understand.
 */
#ifndef AJ_AUDIT_H
#define AJ_AUDIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct json_t;

/* A record is short (the URL is at most 8 KiB); a longer line is not one. */
#define AJ_AUDIT_LINE_MAX 32768

struct aj_audit_record {
	const char *time;     /* UTC, RFC 3339 with milliseconds */
	uint64_t request;     /* the request id on its channel */
	const char *method;   /* after redirects, the last hop's */
	const char *url;      /* normalised, the query redacted where a rule says so */
	const char *decision; /* "allowed", "denied" or "refused" */
	const char *rule;     /* the deciding rule, a reason, or NULL */
	const char *address;  /* the address connected to, or NULL */
	int status;           /* the final answer's HTTP status, or 0 */
	uint64_t bytes_in, bytes_out;
	uint64_t duration_ms;
	const char *error; /* the AJ_ERR_* code the agent got, "cancelled", or NULL */
	unsigned redirects, hop;
	bool final;       /* false for a hop that redirected */
	uint64_t spliced; /* of bytes_out, moved by splice(2); 0: not written */
	const char *via;  /* "proxy" for a request the proxy made; NULL: not written */
	const char *kind; /* "tunnel" for a raw relay (`tunnel` rules); NULL: a fetch, not
			     written */
	const char *injected; /* the header an `inject` rule set (its name, never its
				 value); NULL: not written */
	/* The requesting process (its channel's maker): pid in the broker's
	 * pid namespace, comm, exe; 0 / "" / NULL: not written. */
	uint64_t pid;
	const char *comm, *exe;
};

/* REC as one line of JSON with its newline: *LINE is a new string.
 * Returns 0 or -ENOMEM. */
int aj_audit_encode(const struct aj_audit_record *rec, char **line);

/* One line (LEN bytes, without its newline) checked against the schema:
 * a JSON object whose members are the record's, each of its type, the
 * required ones present, the decision one of the three, the kind (if
 * any) "tunnel".  *OUT is the
 * object (a new reference), *FINAL and *ALLOWED what the counts need.
 * Returns 0 or -EBADMSG with ERR. */
int aj_audit_decode(const char *line, size_t len, struct json_t **out, bool *final, bool *allowed,
		    char *err, size_t errlen);

#endif /* AJ_AUDIT_H */
