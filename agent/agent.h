/*
 * The agent side's internal header: what runs inside the jail besides the
 * public client library (include/agentjail/client.h).
 */
#ifndef AJ_AGENT_H
#define AJ_AGENT_H

/* ---- agent/fetch.c: the `agentjail fetch` command ----------------------- */

/* Run `agentjail fetch ARGV...` (ARGV[0] is "fetch"); returns its exit
 * status.  USAGE_TEXT is printed after a usage error, with HELP_TEXT for
 * -h. */
int aj_fetch_command(int argc, char **argv, const char *usage_text, const char *help_text);

#endif /* AJ_AGENT_H */
