/*
 * Real test servers for the integration suite: the HTTP(S) server
 * (servers/httpd.py), the DNS server (servers/dnsd.py) and a throwaway CA
 * (servers/mkca), started from C.  They listen on loopback addresses only.
 * The scripts are found under AJ_TEST_SRCDIR (environment) or else the
 * source tree the suite was built from (AJ_SRCDIR).  Their output goes to
 * a file beside the ready file (shown if they fail to start), or to the
 * test's own stdout/stderr when AJ_TEST_VERBOSE is set.
 */
#ifndef AJ_TEST_SERVERS_H
#define AJ_TEST_SERVERS_H

#include <sys/types.h>

struct aj_server {
	pid_t pid; /* 0: not running */
	int port;
	char addr[64];
	char url[128]; /* "http://127.0.0.1:PORT" or https; "" for DNS */
	char log[512]; /* one line per request (see httpd.py, dnsd.py) */
};

/* Start httpd.py on ADDR (e.g. "127.0.0.1", "::1"), ephemeral port, in the
 * background; HTTPS if CERTDIR != NULL (CERTDIR/server.pem, server.key).
 * Its ready file and log are made in SCRATCHDIR ($TMPDIR or /tmp if NULL).
 * Waits up to 10 s for the server to listen.  Returns 0, or -1 with a
 * message on stderr. */
int aj_server_start_http(struct aj_server *s, const char *addr, const char *certdir,
			 const char *scratchdir);
/* The same, also serving the files below ROOT under /files/ (GET and HEAD;
 * what real tools fetch: a git repository, a package index). */
int aj_server_start_files(struct aj_server *s, const char *addr, const char *certdir,
			  const char *root, const char *scratchdir);

/* Start dnsd.py on ADDR:PORT (UDP; 0 = ephemeral, the chosen port ends up
 * in s->port) answering for ZONES, a NULL-terminated list of
 * "name=ip[,ip...]" (several addresses are given out in turn).  Otherwise
 * as aj_server_start_http. */
int aj_server_start_dns(struct aj_server *s, const char *addr, int port, const char *const *zones,
			const char *scratchdir);

/* SIGTERM and reap (SIGKILL after 5 s).  The log stays readable.  Safe on
 * a zeroed struct and on one already stopped. */
void aj_server_stop(struct aj_server *s);

/* Run mkca: DIR/ca.pem, ca.key, server.pem, server.key (SAN: HOSTS, a
 * NULL-terminated list of names and IP literals) and wrong-ca.pem, all
 * world-readable.  Returns 0, or -1 with a message on stderr. */
int aj_make_ca(const char *dir, const char *const *hosts);

/* How many lines of the server's log contain NEEDLE: 0 if there is no log
 * yet, -1 if it cannot be read. */
int aj_server_log_count(const struct aj_server *s, const char *needle);

#endif
