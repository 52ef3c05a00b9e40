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
 *                               AJ_FD_DNS, AJ_FD_CAPTURE_HTTP, AJ_FD_CAPTURE_HTTPS
 *                                            `proxy on`: the DNS stub's socket and the
 *                                            listeners of captured connections
 *                               AJ_FD_PROXY  `proxy on`: its listening sockets (10, and
 *                                            11 with IPv6), as many as `--proxy N` says
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
 * it to the jail's trust.  Then, all in the jail's network namespace, for
 * the tools that ignore the proxy variables: the DNS stub's UDP socket on
 * 127.0.0.1:53 (the jail's resolv.conf names it), and the listeners on
 * ports 80 and 443 that take the connections made to the addresses it
 * gives out (AJ_DNS_STUB_NET).  Then the proxy's N listening sockets,
 * 127.0.0.1 at AJ_FD_PROXY and, on a kernel with IPv6, ::1 at the next.
 * Init makes them in this order (AJ_PROXY_SOCKETS at most). */
#define AJ_FD_PROXY_CA 6
#define AJ_FD_DNS 7
#define AJ_FD_CAPTURE_HTTP 8
#define AJ_FD_CAPTURE_HTTPS 9
#define AJ_PROXY_CAPTURES 3
#define AJ_FD_PROXY 10
#define AJ_PROXY_LISTENERS 2
#define AJ_PROXY_SOCKETS (AJ_PROXY_CAPTURES + AJ_PROXY_LISTENERS)

/* The addresses the DNS stub gives out: 127.1.0.0/16, on the jail's lo. */
#define AJ_DNS_STUB_NET 0x7f010000u
#define AJ_DNS_STUB_MASK 0xffff0000u

/* The variable that names the door's fd number inside the jail. */
#define AJ_FD_DOOR_ENV "AGENTJAIL_FD"

/* agentjail-broker's own exit statuses, which the supervisor explains. */
#define AJ_BROKER_EXIT_PROTOCOL 65 /* an agent broke the protocol (a channel ended) */
#define AJ_BROKER_EXIT_CONFINE 66  /* it could not load its own seccomp filter */

#endif /* AJ_FDS_H */
