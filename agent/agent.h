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

#endif /* AJ_AGENT_H */
