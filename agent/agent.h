/*
 * The agent side's internal header: what runs inside the jail besides the
 * public client library (include/agentjail/client.h).
 */
#ifndef AJ_AGENT_H
#define AJ_AGENT_H

/* ---- agent/fetch.c: the `agentjail fetch` command ----------------------- */

/* The command's way to report a usage error: "agentjail: WHAT" and the
 * usage; returns the usage exit status. */
typedef int aj_usage_error_fn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Run `agentjail fetch ARGV...` (ARGV[0] is "fetch"); returns its exit
 * status.  USAGE_TEXT and HELP_TEXT are printed for -h, USAGE_ERROR
 * reports a bad command line. */
int aj_fetch_command(int argc, char **argv, const char *usage_text, const char *help_text,
		     aj_usage_error_fn *usage_error);

/* The exit status for the broker's error CODE (AJ_ERR_*): 3 denied, 4
 * timeout, 5 too large, 6 broker unavailable, 7 upstream (and any code
 * this version does not know), 8 bad request, 9 rate limited. */
int aj_fetch_exit_status(const char *code);

/* ---- agent/connect.c: the `agentjail connect` command -------------------- */

/* Run `agentjail connect HOST:PORT` (ARGV[0] is "connect"): stdin and
 * stdout through a raw tunnel of the jail's proxy; returns its exit
 * status (0 once the tunnel closed, the fetch statuses for a refusal). */
int aj_connect_command(int argc, char **argv, const char *usage_text, const char *help_text,
		       aj_usage_error_fn *usage_error);

#endif /* AJ_AGENT_H */
