/*
 * libFuzzer target for the URL normaliser and the pattern parser: any
 * input is refused or normalised, and a normalised URL must normalise to
 * itself (a fixed point), since the broker matches the normalised string
 * and then fetches it: a second reading that differed would be a
 * matcher/fetcher differential.  The query is in its one spelling (no
 * encoded unreserved character, upper-case hex), and the decision function
 * takes any normalised query, with the input's query as a rule's pattern.
 */
#include "config.h"

#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
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
		for (const char *q = url.query; *q != '\0'; q++) {
			if (*q != '%')
				continue;
			if (!isxdigit((unsigned char)q[1]) || !isxdigit((unsigned char)q[2]) ||
			    islower((unsigned char)q[1]) || islower((unsigned char)q[2]))
				abort();
			{
				unsigned v = (unsigned)strtoul((char[]){q[1], q[2], 0}, NULL, 16);

				if (isalnum((int)v) || v == '-' || v == '.' || v == '_' || v == '~')
					abort();
			}
			q += 2;
		}
		/* The URL's own query as a rule's pattern: the rule matches it,
		 * and the judge stays within its buffers. */
		if (url.has_query && strlen(url.query) < sizeof(rule.query) &&
		    strcmp(url.query, "none") != 0) { /* ("none" means no query) */
			struct aj_policy p = {.path = "fuzz", .rules = &rule, .n_rules = 1};
			struct aj_policy_decision d;

			memset(&rule, 0, sizeof(rule));
			rule.allow = 1;
			rule.methods = AJ_METHOD_ALL;
			snprintf(rule.scheme, sizeof(rule.scheme), "%s", url.scheme);
			snprintf(rule.host, sizeof(rule.host), "%s", url.host);
			rule.port = url.port;
			snprintf(rule.path, sizeof(rule.path), "/**");
			snprintf(rule.query, sizeof(rule.query), "%s",
				 url.query[0] ? url.query : "**");
			aj_policy_judge(&p, AJ_METHOD_GET, &url, &d);
			if (!d.allowed && d.ambiguous[0] == '\0')
				abort();
		}
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
