/*
 * curl-loop: N sequential GETs of one URL with libcurl's easy interface and
 * one handle (so the connection is reused, as the broker's libcurl multi
 * handle reuses it), each timed with clock_gettime(CLOCK_MONOTONIC).  The
 * host-side baseline for bench/fetch-loop.c; used by scripts/bench-fetch.
 *
 *   curl-loop [-n N] [-w WARMUP] URL
 *
 * Prints one line per timed fetch: "NANOSECONDS BYTES".  The body is
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
	fprintf(stderr, "usage: curl-loop [-n N] [-w WARMUP] URL\n");
	return 2;
}

int
main(int argc, char **argv)
{
	long n = 1000, warmup = 0, failed = 0;
	unsigned long long got = 0, *bytes;
	long long *ns;
	CURL *e;
	int opt;

	while ((opt = getopt(argc, argv, "n:w:")) != -1) {
		switch (opt) {
		case 'n': n = atol(optarg); break;
		case 'w': warmup = atol(optarg); break;
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
	curl_easy_setopt(e, CURLOPT_PROXY, "");
	curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, discard);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, &got);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	for (long i = -warmup; i < n; i++) {
		long long t0, t1;
		long status = 0;
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
			ns[i] = t1 - t0;
			bytes[i] = got;
		}
	}
	curl_easy_cleanup(e);
	curl_global_cleanup();
	for (long i = 0; i < n; i++)
		printf("%lld %llu\n", ns[i], bytes[i]);
	if (failed > 0) {
		fprintf(stderr, "curl-loop: %ld of %ld fetches failed\n", failed, n + warmup);
		return 1;
	}
	return 0;
}
