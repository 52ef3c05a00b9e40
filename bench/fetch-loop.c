/*
 * fetch-loop: N sequential GETs of one URL through the agentjail broker,
 * over ONE client channel (aj_client_open once, aj_client_request per
 * fetch), each timed with clock_gettime(CLOCK_MONOTONIC).  Runs inside a
 * jail (the broker socket is $AGENTJAIL_FD).  Used by scripts/bench-fetch;
 * its twin bench/curl-loop.c does the same with libcurl on the host.
 *
 *   fetch-loop [-m | -p] [-o FILE] [-n N] [-w WARMUP] URL
 *
 * Prints one line per timed fetch: "NANOSECONDS BYTES".  The body is
 * discarded (out_fd -1: the client reads and drops it), or with -o written
 * to FILE (opened once, truncated, as `agentjail fetch -o FILE` opens it;
 * -o /dev/null makes the twin of `agentjail fetch -o /dev/null`).  With -m
 * it is delivered in a sealed memfd ("deliver":"memfd") that is then read
 * to its end (or copied to FILE by the client), inside the timing.  With -p
 * it comes through a pipe ("deliver":"pipe", AJ_CLIENT_PIPE), which the
 * client reads (out_fd -1) or splices to FILE.  -m and -p exclude each
 * other.  A fetch that is not a complete 200 answer is reported on stderr
 * and makes the exit status 1 (after the loop).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <agentjail/client.h>

static long long
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int
usage(void)
{
	fprintf(stderr, "usage: fetch-loop [-m | -p] [-o FILE] [-n N] [-w WARMUP] URL\n");
	return 2;
}

int
main(int argc, char **argv)
{
	long n = 1000, warmup = 0, failed = 0;
	int memfd = 0, piped = 0, out = -1;
	const char *output = NULL;
	struct aj_client *c;
	struct aj_client_req req;
	static struct aj_fetch_result res;
	long long *ns;
	unsigned long long *bytes;
	int opt, err = 0;

	while ((opt = getopt(argc, argv, "mpo:n:w:")) != -1) {
		switch (opt) {
		case 'm': memfd = 1; break;
		case 'p': piped = 1; break;
		case 'o': output = optarg; break;
		case 'n': n = atol(optarg); break;
		case 'w': warmup = atol(optarg); break;
		default: return usage();
		}
	}
	if (optind != argc - 1 || n < 1 || warmup < 0 || (memfd && piped))
		return usage();
	if (output != NULL) {
		out = open(output, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOCTTY, 0644);
		if (out < 0) {
			fprintf(stderr, "fetch-loop: %s: %s\n", output, strerror(errno));
			return 1;
		}
	}
	ns = calloc((size_t)n, sizeof(*ns));
	bytes = calloc((size_t)n, sizeof(*bytes));
	if (ns == NULL || bytes == NULL) {
		fprintf(stderr, "fetch-loop: out of memory\n");
		return 1;
	}
	err = aj_client_open(-1, &c);
	if (err < 0) {
		fprintf(stderr, "fetch-loop: aj_client_open: %s\n", strerror(-err));
		return 1;
	}
	aj_client_req_init(&req);
	req.url = argv[optind];
	req.out_fd = out;
	if (memfd)
		req.flags = AJ_CLIENT_MEMFD;
	else if (piped)
		req.flags = AJ_CLIENT_PIPE;
	for (long i = -warmup; i < n; i++) {
		long long t0 = now_ns(), t1;
		char why[512] = "";
		int r = aj_client_request(c, &req, &res, why, sizeof(why));

		if (r == 0 && res.body_fd >= 0) {
			static char buf[1 << 17];
			uint64_t got = 0;
			ssize_t k;

			while ((k = read(res.body_fd, buf, sizeof(buf))) > 0)
				got += (uint64_t)k;
			close(res.body_fd);
			res.body_fd = -1;
			if (k < 0 || got != res.received)
				res.received = got; /* reported as a failure below */
		}
		t1 = now_ns();
		if (r < 0 || res.code[0] != '\0' || res.status != 200 ||
		    (res.length >= 0 && res.received != (uint64_t)res.length)) {
			if (failed++ < 5)
				fprintf(stderr, "fetch-loop: fetch %ld: %s%s%s (status %d)\n", i,
					r < 0 ? why : res.code,
					r == 0 && res.message[0] ? ": " : "",
					r == 0 ? res.message : "", res.status);
			if (r == 0 && strcmp(res.code, AJ_ERR_UNAVAILABLE) == 0)
				break;
		}
		if (i >= 0) {
			ns[i] = t1 - t0;
			bytes[i] = r == 0 ? res.received : 0;
		}
	}
	aj_client_close(c);
	if (out >= 0)
		close(out);
	for (long i = 0; i < n; i++)
		printf("%lld %llu\n", ns[i], bytes[i]);
	if (failed > 0) {
		fprintf(stderr, "fetch-loop: %ld of %ld fetches failed\n", failed, n + warmup);
		return 1;
	}
	return 0;
}
