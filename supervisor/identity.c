/*
 * Who the agent and the broker run as, decided before anything starts.
 * Started by root, neither may stay root: they become the profile's `user`
 * and `broker-user` (host users, never uid or gid 0), so a jail escape or a
 * broker bug lands on an unprivileged account.  Started by anyone else,
 * both run as the caller: there is nothing to drop to.
 */
#include "config.h"

#include <errno.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "supervisor.h"

/* NAME (a user name or id; ROLE is the directive that named it) as a host
 * uid and gid, never root's.  A numeric id need not exist in the password
 * database: a uid of its own, unknown to the host, is the safest there is. */
static int
identity_user(const struct aj_profile *profile, const char *name, const char *role, uid_t *uid,
	      gid_t *gid, char *err, size_t errlen)
{
	const char *who = strcmp(role, "user") == 0 ? "agent" : "broker";
	struct passwd pw, *res = NULL;
	char buf[4096], *end;
	unsigned long n;

	errno = 0;
	n = strtoul(name, &end, 10);
	if (*end == '\0' && end != name) {
		/* (uid_t)-1 means "unchanged" to set*id: never a valid id. */
		if (errno != 0 || n >= (unsigned long)(uid_t)-1)
			return aj_err(err, errlen, -EINVAL, "profile %s: %s id %s is out of range",
				      profile->path, role, name);
		if (getpwuid_r((uid_t)n, &pw, buf, sizeof(buf), &res) != 0 || res == NULL) {
			*uid = (uid_t)n;
			*gid = (gid_t)n;
			res = NULL;
		}
	} else if (getpwnam_r(name, &pw, buf, sizeof(buf), &res) != 0 || res == NULL) {
		return aj_err(err, errlen, -ENOENT,
			      "profile %s: %s '%s' does not exist on this host (it is the user "
			      "the %s runs as when agentjail is started by root)",
			      profile->path, role, name, who);
	}
	if (res != NULL) {
		*uid = res->pw_uid;
		*gid = res->pw_gid;
	}
	if (*uid == 0 || *gid == 0)
		return aj_err(err, errlen, -EPERM,
			      "profile %s: refusing to run the %s as host root (%s '%s')",
			      profile->path, who, role, name);
	return 0;
}

int
aj_identity_resolve(const struct aj_profile *profile, struct aj_identity *out, char *err,
		    size_t errlen)
{
	struct aj_identity id = {0};
	int r;

	/* A set-user-ID supervisor would hand the caller's choice of profile
	 * and command another user's privileges. */
	if (getuid() != geteuid())
		return aj_err(err, errlen, -EPERM,
			      "agentjail must not run set-user-ID: install it as a normal program");
	if (geteuid() != 0) {
		id.uid = id.broker_uid = getuid();
		id.gid = id.broker_gid = getgid();
		*out = id;
		return 0;
	}
	r = identity_user(profile, profile->user, "user", &id.uid, &id.gid, err, errlen);
	if (r == 0)
		r = identity_user(profile, profile->broker_user, "broker-user", &id.broker_uid,
				  &id.broker_gid, err, errlen);
	if (r < 0)
		return r;
	id.drop = true;
	*out = id;
	return 0;
}
