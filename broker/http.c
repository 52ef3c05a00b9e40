/*
 * HTTP response header lines (see http.h).
 */
#include "config.h"

#include <string.h>
#include <strings.h>

#include "http.h"
#include "field.h"
#include "util.h"

static bool
is_blank(char c)
{
	return c == ' ' || c == '\t';
}

enum aj_http_line
aj_http_parse_line(const char *line, size_t len, struct aj_http_field *out)
{
	const char *colon, *value, *end;

	if (len >= 5 && memcmp(line, "HTTP/", 5) == 0)
		return AJ_HTTP_STATUS;
	if (len > 0 && line[len - 1] == '\n')
		len--;
	if (len > 0 && line[len - 1] == '\r')
		len--;
	if (len == 0)
		return AJ_HTTP_END;
	colon = memchr(line, ':', len);
	if (colon == NULL || colon == line)
		return AJ_HTTP_SKIP;
	/* Not a token: also a leading blank (obsolete folding). */
	if (!aj_field_is_token(line, (size_t)(colon - line)))
		return AJ_HTTP_SKIP;
	value = colon + 1;
	end = line + len;
	while (value < end && is_blank(*value))
		value++;
	while (end > value && is_blank(end[-1]))
		end--;
	/* Control characters (but tab) have no place in a field value
	 * (RFC 9110 5.5); they could only confuse whoever reads it next. */
	if (!aj_field_is_value(value, (size_t)(end - value)))
		return AJ_HTTP_SKIP;
	out->name = line;
	out->name_len = (size_t)(colon - line);
	out->value = value;
	out->value_len = (size_t)(end - value);
	return AJ_HTTP_FIELD;
}

const char *
aj_http_reason(int status)
{
	static const struct {
		int status;
		const char *text;
	} reasons[] = {
		{100, "Continue"},	       {200, "OK"},
		{201, "Created"},	       {204, "No Content"},
		{206, "Partial Content"},      {301, "Moved Permanently"},
		{302, "Found"},		       {303, "See Other"},
		{304, "Not Modified"},	       {307, "Temporary Redirect"},
		{308, "Permanent Redirect"},   {400, "Bad Request"},
		{401, "Unauthorized"},	       {403, "Forbidden"},
		{404, "Not Found"},	       {413, "Content Too Large"},
		{414, "URI Too Long"},	       {417, "Expectation Failed"},
		{421, "Misdirected Request"},  {429, "Too Many Requests"},
		{431, "Request Header Fields Too Large"},
		{500, "Internal Server Error"}, {501, "Not Implemented"},
		{502, "Bad Gateway"},	       {503, "Service Unavailable"},
		{504, "Gateway Timeout"},      {505, "HTTP Version Not Supported"},
	};

	for (size_t i = 0; i < AJ_ARRAY_SIZE(reasons); i++)
		if (reasons[i].status == status)
			return reasons[i].text;
	return "";
}
