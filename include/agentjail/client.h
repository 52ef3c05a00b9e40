/*
 * The agent side of the broker protocol (docs/PROTOCOL.md): what
 * `agentjail fetch` uses, for C programs running inside a jail.
 */
#ifndef AGENTJAIL_CLIENT_H
#define AGENTJAIL_CLIENT_H

#ifdef __cplusplus
extern "C" {
#endif

struct aj_fetch_result {
	int status;        /* the HTTP status of a response, or 0 */
	char code[32];     /* "" for a response, else the error code (AJ_ERR_*) */
	char message[512]; /* the broker's message (escaped on output by the caller) */
	char rule[512];    /* for "denied": the rule that decided */
};

/*
 * Fetch URL with METHOD through the broker on FD (-1: $AGENTJAIL_FD).
 * HEADERS is NULL or a NULL-terminated list of "Name: value" strings.  The
 * response body is written to OUT_FD.  Returns 0 with *RES filled (a
 * response, or an error record: code "denied", "upstream_error", ...,
 * "broker_unavailable" when the broker is gone); -EINVAL for a bad
 * argument (a header without ':'); -errno when writing the body fails.
 */
int aj_client_fetch(int fd, const char *method, const char *url, const char *const *headers,
		    int out_fd, struct aj_fetch_result *res);

#ifdef __cplusplus
}
#endif

#endif /* AGENTJAIL_CLIENT_H */
