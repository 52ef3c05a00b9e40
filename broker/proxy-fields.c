/*
 * What of a client's request head the proxy relays to the broker (proxy.h):
 * the end-to-end fields, as REQUEST's "headers".  Pure.
 */
#include "config.h"

#include <errno.h>
#include <string.h>
#include <strings.h>

#include "broker.h"
#include "field.h"
#include "http.h"
#include "proxy-request.h"
#include "proxy.h"
#include "util.h"

/* Does the Connection field of H name NAME (LEN bytes)? */
static bool
named_by_connection(const struct aj_proxy_head *h, const char *name, size_t len)
{
	for (size_t i = 0; i < h->n_fields; i++) {
		const struct aj_proxy_field *f = &h->fields[i];
		const char *v = f->value, *end = f->value + f->value_len;

		if (f->name_len != 10 || strncasecmp(f->name, "Connection", 10) != 0)
			continue;
		while (v < end) {
			const char *comma = memchr(v, ',', (size_t)(end - v));
			const char *tok_end = comma ? comma : end;

			while (v < tok_end && (*v == ' ' || *v == '\t'))
				v++;
			while (tok_end > v && (tok_end[-1] == ' ' || tok_end[-1] == '\t'))
				tok_end--;
			if ((size_t)(tok_end - v) == len && strncasecmp(v, name, len) == 0)
				return true;
			v = comma ? comma + 1 : end;
		}
	}
	return false;
}

/* The fields that go to the broker: the end-to-end ones.  The broker sets
 * Host, the length and the framing itself; the connection's own fields
 * (hop-by-hop, Proxy-*, those Connection names) stop here. */
static bool
kept_field(const struct aj_proxy_head *h, const struct aj_proxy_field *f)
{
	static const char *const dropped[] = {"Host", "Content-Length", "Expect"};

	if (aj_field_is_hop_by_hop(f->name, f->name_len) ||
	    (f->name_len >= 6 && strncasecmp(f->name, "Proxy-", 6) == 0) ||
	    named_by_connection(h, f->name, f->name_len))
		return false;
	for (size_t i = 0; i < AJ_ARRAY_SIZE(dropped); i++)
		if (strlen(dropped[i]) == f->name_len &&
		    strncasecmp(f->name, dropped[i], f->name_len) == 0)
			return false;
	return true;
}

int
aj_proxy_fields_json(const struct aj_proxy_head *h, json_t **out)
{
	json_t *headers = json_array();
	size_t n = 0;

	*out = NULL;
	if (headers == NULL)
		return -ENOMEM;
	for (size_t i = 0; i < h->n_fields; i++) {
		const struct aj_proxy_field *f = &h->fields[i];

		if (!kept_field(h, f))
			continue;
		if (++n > AJ_PROTO_MAX_HEADERS) {
			json_decref(headers);
			return -E2BIG;
		}
		json_array_append_new(headers, json_pack("[s%s%]", f->name, f->name_len, f->value,
							 f->value_len));
	}
	*out = headers;
	return 0;
}
