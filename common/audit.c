/*
 * The audit record's schema and its two ends (common/audit.h).
 */
#include "config.h"

#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "audit.h"
#include "log.h"
#include "util.h"

/* Every member a record may hold, in the order the broker writes them. */
static const struct member {
	const char *name;
	json_type type; /* JSON_TRUE stands for a boolean */
	bool required;
} members[] = {
	{"time", JSON_STRING, true},         {"request", JSON_INTEGER, true},
	{"method", JSON_STRING, true},       {"url", JSON_STRING, true},
	{"decision", JSON_STRING, true},     {"rule", JSON_STRING, false},
	{"address", JSON_STRING, false},     {"status", JSON_INTEGER, true},
	{"bytes_in", JSON_INTEGER, true},    {"bytes_out", JSON_INTEGER, true},
	{"duration_ms", JSON_INTEGER, true}, {"error", JSON_STRING, false},
	{"redirects", JSON_INTEGER, true},   {"hop", JSON_INTEGER, true},
	{"final", JSON_TRUE, true},          {"spliced", JSON_INTEGER, false},
	{"via", JSON_STRING, false},         {"kind", JSON_STRING, false},
	{"injected", JSON_STRING, false},
	{"pid", JSON_INTEGER, false},      {"comm", JSON_STRING, false},
	{"exe", JSON_STRING, false},
};

static const char *const decisions[] = {"allowed", "denied", "refused"};

int
aj_audit_encode(const struct aj_audit_record *rec, char **line)
{
	json_t *obj = json_pack("{s:s, s:I, s:s, s:s, s:s, s:s*, s:s*, s:i, s:I, s:I, s:I, s:s*, "
				"s:i, s:i, s:b}",
				"time", rec->time, "request", (json_int_t)rec->request, "method",
				rec->method, "url", rec->url, "decision", rec->decision, "rule",
				rec->rule, "address", rec->address, "status", rec->status,
				"bytes_in", (json_int_t)rec->bytes_in, "bytes_out",
				(json_int_t)rec->bytes_out, "duration_ms",
				(json_int_t)rec->duration_ms, "error", rec->error, "redirects",
				(int)rec->redirects, "hop", (int)rec->hop, "final", rec->final);
	char *text;
	size_t len;

	if (obj != NULL && rec->spliced > 0)
		json_object_set_new(obj, "spliced", json_integer((json_int_t)rec->spliced));
	if (obj != NULL && rec->via != NULL)
		json_object_set_new(obj, "via", json_string(rec->via));
	if (obj != NULL && rec->kind != NULL)
		json_object_set_new(obj, "kind", json_string(rec->kind));
	if (obj != NULL && rec->injected != NULL)
		json_object_set_new(obj, "injected", json_string(rec->injected));
	if (obj != NULL && rec->pid > 0) {
		json_object_set_new(obj, "pid", json_integer((json_int_t)rec->pid));
		json_object_set_new(obj, "comm", json_string(rec->comm ? rec->comm : ""));
		if (rec->exe != NULL && rec->exe[0] != '\0')
			json_object_set_new(obj, "exe", json_string(rec->exe));
	}
	text = obj ? json_dumps(obj, JSON_COMPACT | JSON_ENSURE_ASCII) : NULL;
	json_decref(obj);
	if (text == NULL)
		return -ENOMEM;
	len = strlen(text);
	*line = realloc(text, len + 2);
	if (*line == NULL) {
		free(text);
		return -ENOMEM;
	}
	(*line)[len] = '\n';
	(*line)[len + 1] = '\0';
	return 0;
}

static const struct member *
member_of(const char *name)
{
	for (size_t i = 0; i < AJ_ARRAY_SIZE(members); i++)
		if (strcmp(members[i].name, name) == 0)
			return &members[i];
	return NULL;
}

static bool
has_type(json_t *v, json_type type)
{
	return type == JSON_TRUE ? json_is_boolean(v) : json_typeof(v) == type;
}

int
aj_audit_decode(const char *line, size_t len, json_t **out, bool *final, bool *allowed, char *err,
		size_t errlen)
{
	json_error_t jerr;
	json_t *rec = json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr), *v;
	const char *key, *decision;
	bool known = false;

	if (!json_is_object(rec)) {
		json_decref(rec);
		return aj_err(err, errlen, -EBADMSG, "not a JSON object");
	}
	json_object_foreach(rec, key, v)
	{
		const struct member *m = member_of(key);

		if (m == NULL || !has_type(v, m->type)) {
			char safe[64];

			aj_log_escape(key, safe, sizeof(safe));
			json_decref(rec);
			return aj_err(err, errlen, -EBADMSG, "member '%s' %s", safe,
				      m == NULL ? "is not in the schema" : "has the wrong type");
		}
	}
	for (size_t i = 0; i < AJ_ARRAY_SIZE(members); i++) {
		if (members[i].required && json_object_get(rec, members[i].name) == NULL) {
			json_decref(rec);
			return aj_err(err, errlen, -EBADMSG, "member '%s' is missing",
				      members[i].name);
		}
	}
	decision = json_string_value(json_object_get(rec, "decision"));
	for (size_t i = 0; i < AJ_ARRAY_SIZE(decisions); i++)
		known |= strcmp(decision, decisions[i]) == 0;
	if (!known) {
		json_decref(rec);
		return aj_err(err, errlen, -EBADMSG, "the decision is not one of the three");
	}
	v = json_object_get(rec, "kind");
	if (v != NULL && strcmp(json_string_value(v), "tunnel") != 0) {
		json_decref(rec);
		return aj_err(err, errlen, -EBADMSG, "the kind is not \"tunnel\"");
	}
	*final = json_is_true(json_object_get(rec, "final"));
	*allowed = strcmp(decision, "allowed") == 0;
	*out = rec;
	return 0;
}
