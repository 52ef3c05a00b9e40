/*
 * Logging for every agentjail program: errors into caller buffers (the
 * library tier: "return aj_err(...)"), one-line notices on stderr tagged
 * with the program's role (and its pid where several copies run), and
 * escaping of untrusted text so that a URL or a header from the agent or
 * the internet cannot forge a log line.
 */
#ifndef AJ_LOG_H
#define AJ_LOG_H

#include <stdbool.h>
#include <stddef.h>

enum aj_log_level {
	AJ_LOG_ERROR, /* the program, a request or a channel failed */
	AJ_LOG_WARN,  /* something works less well than asked (a missing kernel feature) */
	AJ_LOG_INFO,  /* one line per notable event */
	AJ_LOG_DEBUG, /* only with AGENTJAIL_DEBUG=1 in the environment at aj_log_init() */
};

/* Format into ERR (may be NULL) and return -ERRNUM unchanged, so callers
 * can write `return aj_err(err, errlen, -EINVAL, "...")`. */
int aj_err(char *err, size_t errlen, int errnum, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* Escape untrusted text (control characters, non-ASCII, backslash) as \xNN
 * so it cannot forge a log line.  Writes at most OUTLEN bytes incl. NUL. */
void aj_log_escape(const char *in, char *out, size_t outlen);

/* Once, in main(), before any line: ROLE prefixes each line ("agentjail",
 * "agentjail-broker"), followed by "[PID]" when WITH_PID.  Until then
 * lines say "agentjail: ". */
void aj_log_init(const char *role, bool with_pid);

/* Where the calling thread's lines go instead of stderr: FN gets each
 * whole line, its newline included.  NULL (the default): stderr.  The
 * supervisor queues its lines while a jail runs, so that a terminal the
 * agent stopped cannot block it. */
typedef void (*aj_log_sink_fn)(const char *line, size_t len, void *arg);
void aj_log_set_sink(aj_log_sink_fn fn, void *arg);

/* One line "ROLE[PID]: TEXT" on stderr or the thread's sink (the newline
 * is added). */
void aj_log(enum aj_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define aj_log_error(...) aj_log(AJ_LOG_ERROR, __VA_ARGS__)
#define aj_log_warn(...) aj_log(AJ_LOG_WARN, __VA_ARGS__)
#define aj_log_info(...) aj_log(AJ_LOG_INFO, __VA_ARGS__)
#define aj_log_debug(...) aj_log(AJ_LOG_DEBUG, __VA_ARGS__)

#endif /* AJ_LOG_H */
