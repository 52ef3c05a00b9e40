/*
 * The tokens and numbers of agentjail's line-oriented text (profiles and
 * the fetch rules inside them): one lexer, so that a value means the same
 * wherever it is written.  Pure functions.
 */
#ifndef AJ_LEXER_H
#define AJ_LEXER_H

#include <stdint.h>

/* Cut a comment ('#' at the start or after a blank) and trailing blanks
 * from LINE, in place. */
void aj_lexer_strip_comment(char *line);

/* P after any spaces and tabs. */
char *aj_lexer_skip_blanks(char *p);

/* Next space/tab-separated token of *CURSOR, NUL-terminated in place; NULL
 * at the end of the line. */
char *aj_lexer_token(char **cursor);

/* Decimal digits at S (at least one, no sign) up to INT64_MAX into *OUT,
 * *END after them.  Returns 0, -EINVAL or -ERANGE. */
int aj_lexer_number(const char *s, const char **end, uint64_t *out);

/* A size: "64M", "1G", "4096": bytes, K/M/G/T suffixes (powers of 1024,
 * upper case only).  Returns 0, -EINVAL (not a size) or -ERANGE (2^63
 * bytes or more). */
int aj_lexer_size(const char *s, uint64_t *out);

#endif /* AJ_LEXER_H */
