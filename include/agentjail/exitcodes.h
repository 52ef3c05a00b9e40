/*
 * agentjail exit statuses are API.
 *
 * `agentjail run` exits with the agent's own exit status, or 128+N when the
 * agent was killed by signal N.  The codes below are emitted only by
 * agentjail itself; they are documented in README.md ("Exit codes").
 */
#ifndef AGENTJAIL_EXITCODES_H
#define AGENTJAIL_EXITCODES_H

#define AJ_EXIT_FAILURE 1       /* a subcommand failed (profile check: invalid) */
#define AJ_EXIT_USAGE 2         /* bad command line */
#define AJ_EXIT_VIOLATION 123   /* on-violation kill: the jail was killed for an escape attempt */
#define AJ_EXIT_TIMEOUT 124     /* --timeout expired: the jail was killed */
#define AJ_EXIT_SETUP 125       /* agentjail failed before the command started */
#define AJ_EXIT_CANNOT_EXEC 126 /* the command was found but could not be executed */
#define AJ_EXIT_NOT_FOUND 127   /* the command was not found */
#define AJ_EXIT_SIGNAL_BASE 128 /* + N: the agent was killed by signal N */

#endif /* AGENTJAIL_EXITCODES_H */
