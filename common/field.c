/*
 * RFC 9110 field syntax (common/field.h).
 */
#include "config.h"

#include <string.h>
#include <strings.h>

#include "field.h"
#include "util.h"

bool
aj_field_is_tchar(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

bool
aj_field_is_token(const char *s, size_t len)
{
	if (len == 0)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!aj_field_is_tchar((unsigned char)s[i]))
			return false;
	return true;
}

bool
aj_field_is_value(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if ((c < 0x20 && c != '\t') || c == 0x7f)
			return false;
	}
	return true;
}

bool
aj_field_is_hop_by_hop(const char *name, size_t len)
{
	static const char *const names[] = {
		"Connection", "Keep-Alive", "Proxy-Connection", "Transfer-Encoding", "Upgrade",
		"Trailer",    "TE"};

	for (size_t i = 0; i < AJ_ARRAY_SIZE(names); i++)
		if (strlen(names[i]) == len && strncasecmp(name, names[i], len) == 0)
			return true;
	return false;
}
