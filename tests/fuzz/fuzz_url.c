/*
 * libFuzzer target for the URL normaliser and the pattern parser: any
 * input is refused or normalised, and a normalised URL must normalise to
 * itself (a fixed point), since the broker matches the normalised string
 * and then fetches it: a second reading that differed would be a
 * matcher/fetcher differential.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "policy.h"
#include "url.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct aj_url url, again;
static struct aj_fetch_rule rule;
static char text[AJ_URL_MAX + 2];

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[512];
	size_t decided;

	if (size > AJ_URL_MAX + 1)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';

	if (aj_url_normalise(text, &url, err, sizeof(err)) == 0) {
		if (url.path[0] != '/' || strlen(url.normalised) >= AJ_URL_MAX)
			abort();
		if (aj_url_normalise(url.normalised, &again, err, sizeof(err)) != 0)
			abort();
		if (strcmp(again.normalised, url.normalised) != 0 ||
		    strcmp(again.host, url.host) != 0 || again.port != url.port ||
		    again.host_kind != url.host_kind || strcmp(again.path, url.path) != 0)
			abort();
	}
	memset(&rule, 0, sizeof(rule));
	if (aj_policy_parse_pattern(text, &rule, err, sizeof(err)) == 0) {
		rule.allow = 1;
		rule.methods = AJ_METHOD_ALL;
		/* Exercise the matcher on whatever URL the input also gave. */
		if (aj_policy_decide(&rule, 1, AJ_METHOD_GET, &url, &decided) < 0)
			abort();
	}
	return 0;
}
