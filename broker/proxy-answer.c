/*
 * The heads the proxy writes to its clients (proxy.h): a refusal of its
 * own, and the HTTP/1.1 head of the broker's RESPONSE with framing of the
 * proxy's (Content-Length when the broker knows the length, else chunked,
 * or the close for an HTTP/1.0 client).  Pure: bytes into a buffer.
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "broker.h"
#include "http.h"
#include "proxy.h"

bool
aj_proxy_buf_appendf(struct aj_proxy_buf *b, const char *fmt, ...)
{
	char line[512];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n < 0)
		n = 0;
	return aj_proxy_buf_append(b, line,
				   (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1);
}

bool
aj_proxy_answer_refusal(struct aj_proxy_buf *out, int status, const char *code, const char *rule,
			const char *message, bool with_body, bool close)
{
	char body[768], safe_rule[512];
	int n;

	/* The rule names a profile's path: a byte that would end the header
	 * line goes out as '?'. */
	if (rule != NULL) {
		size_t i = 0;

		for (; rule[i] != '\0' && i + 1 < sizeof(safe_rule); i++)
			safe_rule[i] =
				(unsigned char)rule[i] < 0x20 || rule[i] == 0x7f ? '?' : rule[i];
		safe_rule[i] = '\0';
		rule = safe_rule;
	}
	n = snprintf(body, sizeof(body), "agentjail: %s%s%s%s: %s\n", code, rule ? " (rule " : "",
		     rule ? rule : "", rule ? ")" : "", message);
	if (n < 0 || (size_t)n >= sizeof(body))
		n = (int)strlen(body);
	return aj_proxy_buf_appendf(out, "HTTP/1.1 %d %s\r\nX-Agentjail-Error: %s\r\n", status,
				    aj_http_reason(status), code) &&
	       (rule == NULL || aj_proxy_buf_appendf(out, "X-Agentjail-Rule: %s\r\n", rule)) &&
	       aj_proxy_buf_appendf(out,
				    "Content-Type: text/plain; charset=utf-8\r\nContent-Length: "
				    "%d\r\n%s\r\n",
				    n, close ? "Connection: close\r\n" : "") &&
	       aj_proxy_buf_append(out, body, with_body ? (size_t)n : 0);
}

bool
aj_proxy_answer_response(struct aj_proxy_buf *out, json_t *resp, unsigned version, bool head_method,
			 struct aj_proxy_framing *f)
{
	int status = (int)json_integer_value(json_object_get(resp, "status"));
	json_t *length = json_object_get(resp, "length"),
	       *headers = json_object_get(resp, "headers");
	size_t i;
	json_t *pair;

	f->no_body = head_method || status == 204 || status == 304 || status < 200;
	if (!aj_proxy_buf_appendf(out, "HTTP/1.1 %d %s\r\n", status, aj_http_reason(status)))
		return false;
	json_array_foreach(headers, i, pair)
	{
		const char *name = json_string_value(json_array_get(pair, 0));
		const char *value = json_string_value(json_array_get(pair, 1));

		if (name == NULL || value == NULL || strcasecmp(name, "Transfer-Encoding") == 0 ||
		    (!f->no_body && strcasecmp(name, "Content-Length") == 0))
			continue;
		if (!aj_proxy_buf_appendf(out, "%s: ", name) ||
		    !aj_proxy_buf_append(out, value, strlen(value)) ||
		    !aj_proxy_buf_append(out, "\r\n", 2))
			return false;
	}
	if (!f->no_body) {
		if (json_is_integer(length)) {
			if (!aj_proxy_buf_appendf(out, "Content-Length: %lld\r\n",
						  (long long)json_integer_value(length)))
				return false;
		} else if (version >= 11) {
			f->chunked = true;
			if (!aj_proxy_buf_appendf(out, "Transfer-Encoding: chunked\r\n"))
				return false;
		} else {
			f->close_after = true; /* an HTTP/1.0 client: the end is the close */
		}
	}
	if (f->close_after && !aj_proxy_buf_appendf(out, "Connection: close\r\n"))
		return false;
	return aj_proxy_buf_append(out, "\r\n", 2);
}
