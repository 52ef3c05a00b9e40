/*
 * Integration-test helper: one run's `--events` stream, parsed with
 * jansson and checked against what holds for every run (docs/EVENTS.md):
 * start first, exit last, one jail id, seq 1..n, the fields of each type,
 * and the violation counts of the exit event equal to what was reported.
 * Used by the suites that read events (violations, loopback).
 */
#ifndef AJ_TEST_EVENT_STREAM_H
#define AJ_TEST_EVENT_STREAM_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

/* One run's events, parsed, plus the stream's text for messages. */
struct stream {
	json_t **ev;
	size_t n;
	const char *text;
};

/* Parse and check TEXT (with ONLY_OBJECTS, lines not starting with '{'
 * are skipped: the agent's own output when the events go to stdout). */
void stream_parse(struct stream *s, const char *text, bool only_objects);
void stream_free(struct stream *s);

/* How many events of TYPE; the one of TYPE (asserted one); the last. */
size_t count_type(const struct stream *s, const char *type);
json_t *only(const struct stream *s, const char *type);
json_t *exit_event(const struct stream *s);

/* OBJ's member KEY as a string (NULL when it is not one); as an integer
 * (asserted one; LINE for the message); an event's "time" in seconds. */
const char *str_of(json_t *obj, const char *key);
json_int_t int_of(json_t *obj, const char *key, const char *line);
double time_of(json_t *ev);

/* ACTUAL has every member of the JSON object text WANT, equal. */
void assert_has_members(json_t *actual, const char *want, const char *context);

#endif
