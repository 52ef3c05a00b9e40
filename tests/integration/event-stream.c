/*
 * The event stream's parser and invariants for the integration suites
 * (event-stream.h).
 */
#include "config.h"

#include <criterion/criterion.h>
#include <ctype.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "event-stream.h"

static const char *const known_types[] = {"start", "violation", "violation_repeated", "broker_exit",
					  "exit"};

const char *
str_of(json_t *obj, const char *key)
{
	json_t *v = json_object_get(obj, key);
	return json_is_string(v) ? json_string_value(v) : NULL;
}

static bool
is_hex(const char *s, size_t len)
{
	if (s == NULL || strlen(s) != len)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!isxdigit((unsigned char)s[i]) || isupper((unsigned char)s[i]))
			return false;
	return true;
}

/* "2026-11-25T02:53:50.066Z" */
static bool
is_time(const char *s)
{
	struct tm tm = {0};
	const char *rest;

	if (s == NULL)
		return false;
	rest = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
	if (rest == NULL)
		return false;
	if (*rest == '.') {
		rest++;
		if (!isdigit((unsigned char)*rest))
			return false;
		while (isdigit((unsigned char)*rest))
			rest++;
	}
	return strcmp(rest, "Z") == 0;
}

/* The "time" of EV as seconds since the epoch. */
double
time_of(json_t *ev)
{
	const char *s = str_of(ev, "time"), *rest;
	struct tm tm = {0};
	double t;

	cr_assert(is_time(s), "bad time in %s", json_dumps(ev, JSON_COMPACT));
	rest = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
	t = (double)timegm(&tm);
	if (*rest == '.')
		t += strtod(rest, NULL);
	return t;
}

json_int_t
int_of(json_t *obj, const char *key, const char *line)
{
	json_t *v = json_object_get(obj, key);

	cr_assert(json_is_integer(v), "'%s' is not an integer in: %s", key, line);
	return json_integer_value(v);
}

/*
 * Parse TEXT (one run's stream; with ONLY_OBJECTS, lines not starting with
 * '{' are skipped: the agent's own output when the events go to stdout)
 * and check what holds for every run: each line is a JSON object of a
 * known type with jail (32 hex, one for the whole run), seq (1, 2, 3...)
 * and time; start first, exit last, once each; the fields of each type;
 * and violation events + violation_repeated counts == exit.violations,
 * per summary == exit.violation_counts.
 */
void
stream_parse(struct stream *s, const char *text, bool only_objects)
{
	const char *jail = NULL;
	json_t *seen = json_object();
	json_int_t seen_total = 0;

	*s = (struct stream){.text = text};
	cr_assert(text[0] != '\0', "the event stream is empty");
	cr_assert(text[strlen(text) - 1] == '\n', "the stream's last line is unterminated:\n%s",
		  text);
	for (const char *p = text; *p;) {
		const char *nl = strchr(p, '\n');
		char *line = strndup(p, (size_t)(nl - p));
		json_error_t jerr;
		json_t *ev;
		const char *type;
		bool known = false;

		p = nl + 1;
		if (only_objects && line[0] != '{') {
			free(line);
			continue;
		}
		ev = json_loads(line, JSON_REJECT_DUPLICATES, &jerr);
		cr_assert_not_null(ev, "line %zu is not JSON (%s): '%s'", s->n + 1, jerr.text,
				   line);
		cr_assert(json_is_object(ev), "line %zu is not an object: %s", s->n + 1, line);
		type = str_of(ev, "type");
		for (size_t i = 0; type && i < sizeof(known_types) / sizeof(known_types[0]); i++)
			known |= strcmp(type, known_types[i]) == 0;
		cr_assert(known, "unknown or missing type: %s", line);
		cr_assert(is_hex(str_of(ev, "jail"), 32), "jail is not 32 hex digits: %s", line);
		if (jail == NULL)
			jail = str_of(ev, "jail");
		cr_assert_str_eq(str_of(ev, "jail"), jail, "two jail ids in one run:\n%s", text);
		cr_assert_eq(int_of(ev, "seq", line), (json_int_t)s->n + 1,
			     "seq %lld where %zu was due:\n%s", (long long)int_of(ev, "seq", line),
			     s->n + 1, text);
		cr_assert(is_time(str_of(ev, "time")), "time is not an RFC 3339 UTC time: %s",
			  line);
		cr_assert_eq(strcmp(type, "start") == 0, s->n == 0,
			     "start must be the first event and only the first:\n%s", text);

		if (strcmp(type, "violation") == 0) {
			const char *sum = str_of(ev, "summary"), *action = str_of(ev, "action");
			const char *name = str_of(ev, "syscall");
			cr_assert(name && name[0], "violation without a syscall: %s", line);
			(void)int_of(ev, "nr", line);
			cr_assert(sum && sum[0], "violation without a summary: %s", line);
			cr_assert(json_is_object(json_object_get(ev, "args")), "args: %s", line);
			cr_assert_gt(int_of(ev, "pid", line), 0, "%s", line);
			cr_assert_not_null(str_of(ev, "comm"), "%s", line);
			cr_assert_not_null(str_of(ev, "exe"), "%s", line);
			cr_assert(action && (!strcmp(action, "deny") || !strcmp(action, "kill")),
				  "action: %s", line);
			json_object_set_new(
				seen, sum,
				json_integer(json_integer_value(json_object_get(seen, sum)) + 1));
			seen_total++;
		} else if (strcmp(type, "violation_repeated") == 0) {
			const char *sum = str_of(ev, "summary");
			json_int_t count = int_of(ev, "count", line),
				   total = int_of(ev, "total", line);
			json_int_t before = json_integer_value(json_object_get(seen, sum));

			cr_assert(sum && sum[0], "violation_repeated without a summary: %s", line);
			cr_assert_gt(count, 0, "an empty violation_repeated: %s", line);
			/* total: this kind's attempts so far, at least all reported. */
			cr_assert_geq(total, before + count, "total below what was reported: %s",
				      line);
			json_object_set_new(seen, sum, json_integer(before + count));
			seen_total += count;
		} else if (strcmp(type, "broker_exit") == 0) {
			cr_assert_not_null(str_of(ev, "how"), "%s", line);
			(void)int_of(ev, "status", line);
			cr_assert(json_is_boolean(json_object_get(ev, "expected")), "%s", line);
		} else if (strcmp(type, "exit") == 0) {
			json_t *sig = json_object_get(ev, "signal"),
			       *f = json_object_get(ev, "fetches");
			json_t *dur = json_object_get(ev, "duration_ms");

			(void)int_of(ev, "status", line);
			cr_assert(json_is_null(sig) || json_is_integer(sig), "signal: %s", line);
			cr_assert(json_is_number(dur) && json_number_value(dur) >= 0, "%s", line);
			cr_assert(json_is_object(f), "fetches: %s", line);
			cr_assert_eq(int_of(f, "allowed", line), 0, "%s", line);
			cr_assert_eq(int_of(f, "denied", line), 0, "%s", line);
			cr_assert_eq(int_of(ev, "violations", line), seen_total,
				     "exit.violations %lld, the stream reports %lld attempts:\n%s",
				     (long long)int_of(ev, "violations", line),
				     (long long)seen_total, text);
			cr_assert(json_equal(json_object_get(ev, "violation_counts"), seen),
				  "exit.violation_counts disagrees with the stream (%s):\n%s",
				  json_dumps(seen, JSON_COMPACT | JSON_SORT_KEYS), text);
		}
		s->ev = realloc(s->ev, (s->n + 1) * sizeof(*s->ev));
		s->ev[s->n++] = ev;
		free(line);
	}
	json_decref(seen);
	cr_assert_gt(s->n, 0, "no events in:\n%s", text);
	for (size_t i = 0; i < s->n; i++)
		cr_assert_eq(strcmp(str_of(s->ev[i], "type"), "exit") == 0, i == s->n - 1,
			     "exit must be the last event and only the last:\n%s", text);
}

void
stream_free(struct stream *s)
{
	for (size_t i = 0; i < s->n; i++)
		json_decref(s->ev[i]);
	free(s->ev);
	*s = (struct stream){0};
}

size_t
count_type(const struct stream *s, const char *type)
{
	size_t n = 0;

	for (size_t i = 0; i < s->n; i++)
		n += strcmp(str_of(s->ev[i], "type"), type) == 0;
	return n;
}

/* The one event of TYPE (asserted one). */
json_t *
only(const struct stream *s, const char *type)
{
	json_t *found = NULL;

	cr_assert_eq(count_type(s, type), 1, "want exactly one %s event:\n%s", type, s->text);
	for (size_t i = 0; i < s->n; i++)
		if (strcmp(str_of(s->ev[i], "type"), type) == 0)
			found = s->ev[i];
	return found;
}

json_t *
exit_event(const struct stream *s)
{
	return s->ev[s->n - 1];
}

/* Does JSON object ACTUAL have every member of the JSON text WANT, equal? */
void
assert_has_members(json_t *actual, const char *want, const char *context)
{
	json_t *w = json_loads(want, 0, NULL), *v;
	const char *key;

	cr_assert_not_null(w, "bad expectation %s", want);
	json_object_foreach(w, key, v)
	{
		cr_assert(json_equal(json_object_get(actual, key), v), "want %s: %s in %s", key,
			  json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY), context);
	}
	json_decref(w);
}

