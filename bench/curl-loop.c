/*
 * curl-loop: N sequential GETs of one URL with libcurl's easy interface and
 * one handle (so the connection is reused, as the broker's libcurl multi
 * handle reuses it), each timed with clock_gettime(CLOCK_MONOTONIC).  The
 * host-side baseline for bench/fetch-loop.c, and the kept-alive client of
 * scripts/bench-fetch on the host, through agentjail's proxy and through
 * srt's: the same program in each place, only the route differs.
 *
 *   curl-loop [-n N] [-w WARMUP] [-c CAFILE] [-P] URL
 *     -c CAFILE  trust CAFILE for https (default: libcurl's built-in bundle,
 *                which in a jail with `proxy on` includes the jail's CA)
 *     -P         through the proxy that http_proxy/https_proxy name, even
 *                for a host NO_PROXY lists (srt lists 127.0.0.1); without
 *                it no proxy is used
 *
 * Prints one line per timed fetch: "NANOSECONDS BYTES", and on stderr at
 * the end "curl-loop: connections: K" (new connections libcurl opened
 * during the timed fetches, to the server or the proxy: 0 when the warmup's
 * connection, or tunnel, was reused for every one).  The body is
 * discarded.  A fetch that is not a complete 200 answer is reported on
 * stderr and makes the exit status 1 (after the loop).
 */
#define _GNU_SOURCE
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static long long
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static size_t
discard(char *data, size_t size, size_t n, void *arg)
{
	(void)data;
	*(unsigned long long *)arg += size * n;
	return size * n;
}

static int
usage(void)
{
	fprintf(stderr, "usage: curl-loop [-n N] [-w WARMUP] [-c CAFILE] [-P] URL\n");
	return 2;
}

int
main(int argc, char **argv)
{
	long n = 1000, warmup = 0, failed = 0, connects = 0;
	const char *cafile = NULL;
	int use_proxy = 0;
	unsigned long long got = 0, *bytes;
	long long *ns;
	CURL *e;
	int opt;

	while ((opt = getopt(argc, argv, "n:w:c:P")) != -1) {
		switch (opt) {
		case 'n': n = atol(optarg); break;
		case 'w': warmup = atol(optarg); break;
		case 'c': cafile = optarg; break;
		case 'P': use_proxy = 1; break;
		default: return usage();
		}
	}
	if (optind != argc - 1 || n < 1 || warmup < 0)
		return usage();
	ns = calloc((size_t)n, sizeof(*ns));
	bytes = calloc((size_t)n, sizeof(*bytes));
	if (ns == NULL || bytes == NULL || curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK ||
	    (e = curl_easy_init()) == NULL) {
		fprintf(stderr, "curl-loop: initialisation failed\n");
		return 1;
	}
	curl_easy_setopt(e, CURLOPT_URL, argv[optind]);
	if (use_proxy)
		curl_easy_setopt(e, CURLOPT_NOPROXY, ""); /* "": no host bypasses it */
	else
		curl_easy_setopt(e, CURLOPT_PROXY, "");
	if (cafile != NULL)
		curl_easy_setopt(e, CURLOPT_CAINFO, cafile);
	curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, discard);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, &got);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	for (long i = -warmup; i < n; i++) {
		long long t0, t1;
		long status = 0, nc = 0;
		CURLcode rc;

		got = 0;
		t0 = now_ns();
		rc = curl_easy_perform(e);
		t1 = now_ns();
		curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
		if (rc != CURLE_OK || status != 200) {
			if (failed++ < 5)
				fprintf(stderr, "curl-loop: fetch %ld: %s (status %ld)\n", i,
					curl_easy_strerror(rc), status);
		}
		if (i >= 0) {
			curl_easy_getinfo(e, CURLINFO_NUM_CONNECTS, &nc);
			connects += nc;
			ns[i] = t1 - t0;
			bytes[i] = got;
		}
	}
	curl_easy_cleanup(e);
	curl_global_cleanup();
	for (long i = 0; i < n; i++)
		printf("%lld %llu\n", ns[i], bytes[i]);
	fprintf(stderr, "curl-loop: connections: %ld\n", connects);
	if (failed > 0) {
		fprintf(stderr, "curl-loop: %ld of %ld fetches failed\n", failed, n + warmup);
		return 1;
	}
	return 0;
}
