/*
 * Error messages into caller-supplied buffers, stderr lines with the
 * program's role, and escaping of untrusted text before it reaches a
 * terminal or a log line.
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

/* Written once by aj_log_init() in main(), read afterwards: a library
 * caller that never calls it gets "agentjail: ". */
static struct {
	const char *role;
	bool with_pid;
	enum aj_log_level max;
} log_conf = {"agentjail", false, AJ_LOG_INFO};

/* Per thread: an embedding program may run several jails at once. */
static _Thread_local struct {
	aj_log_sink_fn fn;
	void *arg;
} log_sink;

void
aj_log_set_sink(aj_log_sink_fn fn, void *arg)
{
	log_sink.fn = fn;
	log_sink.arg = arg;
}

int
aj_err(char *err, size_t errlen, int errnum, const char *fmt, ...)
{
	va_list ap;

	if (err != NULL && errlen > 0) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return errnum;
}

void
aj_log_escape(const char *in, char *out, size_t outlen)
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0;

	if (outlen == 0)
		return;
	for (; *in != '\0'; in++) {
		unsigned char c = (unsigned char)*in;
		bool plain = c >= 0x20 && c < 0x7f && c != '\\';
		size_t need = plain ? 1 : 4;

		if (o + need >= outlen)
			break;
		if (plain) {
			out[o++] = (char)c;
		} else {
			out[o++] = '\\';
			out[o++] = 'x';
			out[o++] = hex[c >> 4];
			out[o++] = hex[c & 0xf];
		}
	}
	out[o] = '\0';
}

void
aj_log_init(const char *role, bool with_pid)
{
	const char *debug = getenv("AGENTJAIL_DEBUG");

	log_conf.role = role;
	log_conf.with_pid = with_pid;
	log_conf.max = debug != NULL && strcmp(debug, "1") == 0 ? AJ_LOG_DEBUG : AJ_LOG_INFO;
}

void
aj_log(enum aj_log_level level, const char *fmt, ...)
{
	char line[2048];
	size_t len;
	int n;
	va_list ap;

	if (level > log_conf.max)
		return;
	if (log_conf.with_pid)
		n = snprintf(line, sizeof(line), "%s[%d]: ", log_conf.role, (int)getpid());
	else
		n = snprintf(line, sizeof(line), "%s: ", log_conf.role);
	if (n < 0 || (size_t)n >= sizeof(line))
		n = 0;
	va_start(ap, fmt);
	vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
	va_end(ap);
	/* One write per line, so lines from several processes do not mix. */
	len = strlen(line);
	if (len == sizeof(line) - 1)
		len--;
	line[len++] = '\n';
	if (log_sink.fn != NULL)
		log_sink.fn(line, len, log_sink.arg);
	else
		(void)!write(STDERR_FILENO, line, len);
}
