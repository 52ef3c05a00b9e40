/*
 * The smallest shared helpers: nothing here knows a program.
 */
#ifndef AJ_UTIL_H
#define AJ_UTIL_H

#define AJ_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

#endif /* AJ_UTIL_H */
