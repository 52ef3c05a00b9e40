/*
 * May a file be trusted to hold policy?  A profile decides what the next
 * jail may do, so it must be one that nobody but the caller (and root) can
 * have written or swapped: the file, every directory the path passes
 * through and every symlink on the way are owned by root or the caller and
 * not writable by group or others.  A world-writable directory with the
 * sticky bit (/tmp) passes as a directory: others may add entries to it but
 * cannot rename or remove ours, and whatever the path takes from it next
 * is checked for its owner anyway.  OpenSSH checks authorized_keys paths
 * the same way (auth.c, safe_path()).  An owner the current user namespace
 * cannot name counts as root (is_unmapped_owner()).
 *
 * The walk resolves the path itself, one component at a time, so that a
 * symlink is judged where it lives as well as where it points.
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "supervisor.h"

#define TRUST_MAX_SYMLINKS 40 /* as the kernel's MAXSYMLINKS */

/*
 * In a user namespace that does not map it, an owner shows as the overflow
 * uid (65534): in a rootless container, root's files do.  No process this
 * namespace can start holds such an id (a jail maps only ids of this
 * namespace), so no earlier jail can have written them: they count as
 * root's.  Where the overflow uid is mapped (on the host it is `nobody`,
 * the agent's own uid when root starts a jail), it is an owner like any.
 */
static bool
is_unmapped_owner(uid_t uid)
{
	unsigned long inside, outside, count, overflow = 65534;
	bool mapped = false;
	FILE *f;

	f = fopen("/proc/sys/kernel/overflowuid", "re");
	if (f != NULL) {
		if (fscanf(f, "%lu", &overflow) != 1)
			overflow = 65534;
		fclose(f);
	}
	if (uid != overflow)
		return false;
	f = fopen("/proc/self/uid_map", "re");
	if (f == NULL)
		return false;
	while (!mapped && fscanf(f, "%lu %lu %lu", &inside, &outside, &count) == 3)
		mapped = uid >= inside && uid - inside < count;
	fclose(f);
	return !mapped;
}

static bool
owner_is_trusted(const struct stat *st)
{
	return st->st_uid == 0 || st->st_uid == geteuid() || is_unmapped_owner(st->st_uid);
}

/* Why ST (of PATH) cannot be trusted, into WHY; 0 when it can. */
static int
judge(const char *path, const struct stat *st, char *why, size_t whylen)
{
	mode_t w = st->st_mode & (S_IWGRP | S_IWOTH);

	if (!owner_is_trusted(st))
		return aj_err(why, whylen, -EPERM, "%s is owned by uid %u", path,
			      (unsigned)st->st_uid);
	if (S_ISLNK(st->st_mode) || w == 0)
		return 0;
	if (S_ISDIR(st->st_mode) && (st->st_mode & S_ISVTX))
		return 0;
	return aj_err(why, whylen, -EPERM, "%s is writable by %s (mode %04o)", path,
		      w == (S_IWGRP | S_IWOTH) ? "group and others"
		      : w == S_IWGRP           ? "group"
					       : "others",
		      (unsigned)(st->st_mode & 07777));
}

/* Put the components of PREFIX in front of REST (both '/'-separated). */
static int
push_front(char *rest, size_t len, const char *prefix)
{
	char tmp[PATH_MAX * 2];

	if ((size_t)snprintf(tmp, sizeof(tmp), "%s%s%s", prefix, rest[0] != '\0' ? "/" : "",
			     rest) >= sizeof(tmp) ||
	    strlen(tmp) >= len)
		return -ENAMETOOLONG;
	memcpy(rest, tmp, strlen(tmp) + 1);
	return 0;
}

int
aj_trust_check(const char *path, char *why, size_t whylen)
{
	char rest[PATH_MAX * 2], cur[PATH_MAX], next[PATH_MAX + NAME_MAX + 2], target[PATH_MAX];
	unsigned links = 0;
	struct stat st;
	int r;

	if (path == NULL || path[0] == '\0')
		return aj_err(why, whylen, -EINVAL, "an empty path");
	if (path[0] == '/') {
		if (strlen(path) >= sizeof(rest))
			return aj_err(why, whylen, -ENAMETOOLONG, "%s: path too long", path);
		memcpy(rest, path, strlen(path) + 1);
	} else {
		if (getcwd(cur, sizeof(cur)) == NULL)
			return aj_err(why, whylen, -errno, "the current directory: %s",
				      strerror(errno));
		if ((size_t)snprintf(rest, sizeof(rest), "%s/%s", cur, path) >= sizeof(rest))
			return aj_err(why, whylen, -ENAMETOOLONG, "%s: path too long", path);
	}
	/* CUR is the resolved directory reached so far, checked already. */
	strcpy(cur, "/");
	if (lstat("/", &st) < 0)
		return aj_err(why, whylen, -errno, "/: %s", strerror(errno));
	if ((r = judge("/", &st, why, whylen)) < 0)
		return r;

	for (;;) {
		char *comp = rest, *slash;

		while (*comp == '/')
			comp++;
		if (*comp == '\0')
			break;
		slash = strchr(comp, '/');
		if (slash != NULL)
			*slash = '\0';
		if (strcmp(comp, ".") == 0) {
			/* nothing */
		} else if (strcmp(comp, "..") == 0) {
			/* CUR's parent is a prefix of CUR: already checked. */
			char *last = strrchr(cur, '/');
			if (last != NULL)
				last[last == cur ? 1 : 0] = '\0';
		} else {
			if ((size_t)snprintf(next, sizeof(next), "%s%s%s", cur,
					     strcmp(cur, "/") == 0 ? "" : "/",
					     comp) >= sizeof(cur))
				return aj_err(why, whylen, -ENAMETOOLONG, "%s: path too long",
					      path);
			if (lstat(next, &st) < 0)
				return aj_err(why, whylen, -errno, "%s: %s", next,
					      strerror(errno));
			if ((r = judge(next, &st, why, whylen)) < 0)
				return r;
			if (S_ISLNK(st.st_mode)) {
				ssize_t n;

				if (++links > TRUST_MAX_SYMLINKS)
					return aj_err(why, whylen, -ELOOP,
						      "%s: too many symbolic links", path);
				n = readlink(next, target, sizeof(target) - 1);
				if (n < 0)
					return aj_err(why, whylen, -errno, "%s: %s", next,
						      strerror(errno));
				target[n] = '\0';
				/* The link's target, then what followed it. */
				memmove(rest, slash != NULL ? slash + 1 : "",
					slash != NULL ? strlen(slash + 1) + 1 : 1);
				if (push_front(rest, sizeof(rest), target) < 0)
					return aj_err(why, whylen, -ENAMETOOLONG,
						      "%s: path too long", path);
				if (target[0] == '/')
					strcpy(cur, "/");
				continue;
			}
			if (slash != NULL && !S_ISDIR(st.st_mode))
				return aj_err(why, whylen, -ENOTDIR, "%s: %s", next,
					      strerror(ENOTDIR));
			memcpy(cur, next, strlen(next) + 1);
		}
		if (slash == NULL)
			break;
		memmove(rest, slash + 1, strlen(slash + 1) + 1);
	}
	return 0;
}
