/*
 * The broker's reading of an HTTP response header block, one line at a
 * time as libcurl hands them over (CURLOPT_HEADERFUNCTION).  What upstream
 * sends is untrusted: a line that is not a well-formed field is skipped,
 * never glued to another or passed on half-read.  Pure functions.
 */
#ifndef AJ_HTTP_H
#define AJ_HTTP_H

#include <stdbool.h>
#include <stddef.h>

enum aj_http_line {
	AJ_HTTP_STATUS, /* "HTTP/1.1 200 OK": a new header block starts */
	AJ_HTTP_END,    /* the empty line that ends a block */
	AJ_HTTP_FIELD,  /* "Name: value" */
	AJ_HTTP_SKIP,   /* anything else: obsolete folding, no name, a name that is not a
			   token, a value with a control character other than tab */
};

struct aj_http_field {
	const char *name; /* points into the line; not NUL-terminated */
	size_t name_len;
	const char *value; /* without surrounding blanks */
	size_t value_len;
};

/* Classify the LEN bytes at LINE (a trailing CRLF or LF allowed); for a
 * field, fill *OUT. */
enum aj_http_line aj_http_parse_line(const char *line, size_t len, struct aj_http_field *out);

/* The reason phrase of STATUS (RFC 9110 15), "" for one not listed. */
const char *aj_http_reason(int status);

#endif /* AJ_HTTP_H */
