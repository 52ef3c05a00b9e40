/*
 * The descriptor contract: which fd a program that agentjail starts finds
 * where, written once.
 *
 *   every process of the jail   AJ_FD_DOOR   its end of the broker socketpair
 *                                            (the number is also in $AGENTJAIL_FD)
 *   agentjail-broker            AJ_FD_DOOR   the broker's end of that socketpair
 *                               AJ_FD_POLICY the resolved fetch policy: a sealed memfd
 *                                            (common/handover.h)
 *                               AJ_FD_AUDIT  the pipe its audit records go to
 *                               AJ_FD_PROXY_CA `proxy on`: a pipe for its CA's certificate
 *                               AJ_FD_PROXY  `proxy on`: its listening sockets (7, and 8
 *                                            with IPv6), as many as `--proxy N` says
 *
 * Everything else above 2 is closed before the program runs.  The
 * supervisor places them (supervisor/process.c, aj_process_spawn()); the
 * broker (broker/main.c) and the clients (agent/) read them.
 */
#ifndef AJ_FDS_H
#define AJ_FDS_H

#define AJ_FD_DOOR 3
#define AJ_FD_POLICY 4
#define AJ_FD_AUDIT 5
/* With `proxy on` (the broker's `--proxy N`; absent without the proxy,
 * when the broker's own descriptors may take these numbers): the write end
 * of a pipe on which the broker sends the certificate of the CA it made
 * for the jail's TLS tunnels (PEM), then closes it; the supervisor adds
 * it to the jail's trust.  Then the proxy's N listening sockets in the
 * jail's network namespace, 127.0.0.1 at AJ_FD_PROXY and, on a kernel
 * with IPv6, ::1 at the next. */
#define AJ_FD_PROXY_CA 6
#define AJ_FD_PROXY 7
#define AJ_PROXY_LISTENERS 2

/* The variable that names the door's fd number inside the jail. */
#define AJ_FD_DOOR_ENV "AGENTJAIL_FD"

/* agentjail-broker's own exit statuses, which the supervisor explains. */
#define AJ_BROKER_EXIT_PROTOCOL 65 /* an agent broke the protocol (a channel ended) */
#define AJ_BROKER_EXIT_CONFINE 66  /* it could not load its own seccomp filter */

#endif /* AJ_FDS_H */
