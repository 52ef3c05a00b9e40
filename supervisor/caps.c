/*
 * Capabilities: every set emptied (effective, permitted, inheritable,
 * ambient and the bounding set), securebits locked so that uid 0 inside the
 * jail gains nothing on exec, and no_new_privs so setuid and file
 * capabilities grant nothing either.  The result is read back: a drop that
 * silently did not happen must fail the run.
 */
#include "config.h"

#include <errno.h>
#include <linux/securebits.h>
#include <string.h>
#include <sys/capability.h>
#include <sys/prctl.h>

#include "supervisor.h"

/* Lock every securebit we set, so nothing can turn them back off. */
#define AJ_SECUREBITS                                                                              \
	(SECBIT_NOROOT | SECBIT_NOROOT_LOCKED | SECBIT_NO_SETUID_FIXUP |                           \
	 SECBIT_NO_SETUID_FIXUP_LOCKED | SECBIT_KEEP_CAPS_LOCKED | SECBIT_NO_CAP_AMBIENT_RAISE |   \
	 SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED)

static int
verify_dropped(char *err, size_t errlen)
{
	cap_t now = cap_get_proc();
	cap_t none = cap_init();
	int r = 0;

	if (now == NULL || none == NULL) {
		r = aj_err(err, errlen, -ENOMEM, "reading capabilities back failed");
		goto out;
	}
	if (cap_compare(now, none) != 0)
		r = aj_err(err, errlen, -EPERM, "a capability survived the drop");
	for (cap_value_t c = 0; r == 0 && c <= CAP_LAST_CAP; c++) {
		int in_bound = prctl(PR_CAPBSET_READ, c, 0, 0, 0);
		if (in_bound > 0)
			r = aj_err(err, errlen, -EPERM,
				   "capability %d is still in the bounding set", c);
	}
	if (r == 0 && prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) != 1)
		r = aj_err(err, errlen, -EPERM, "no_new_privs did not stick");
out:
	cap_free(now);
	cap_free(none);
	return r;
}

int
aj_caps_drop_all(char *err, size_t errlen)
{
	cap_t empty;
	int max = (int)cap_max_bits();

	/* The bounding set and securebits need CAP_SETPCAP: do them first. */
	for (cap_value_t c = 0; c < max; c++) {
		if (prctl(PR_CAPBSET_READ, c, 0, 0, 0) <= 0)
			continue;
		if (cap_drop_bound(c) < 0)
			return aj_err(err, errlen, -errno,
				      "dropping capability %d from the bounding set: %s", c,
				      strerror(errno));
	}
	if (cap_reset_ambient() < 0)
		return aj_err(err, errlen, -errno, "clearing ambient capabilities: %s",
			      strerror(errno));
	if (cap_set_secbits(AJ_SECUREBITS) < 0)
		return aj_err(err, errlen, -errno, "locking securebits: %s", strerror(errno));

	empty = cap_init();
	if (empty == NULL)
		return aj_err(err, errlen, -ENOMEM, "cap_init: out of memory");
	if (cap_set_proc(empty) < 0) {
		int e = errno;
		cap_free(empty);
		return aj_err(err, errlen, -e, "clearing capability sets: %s", strerror(e));
	}
	cap_free(empty);

	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return aj_err(err, errlen, -errno, "setting no_new_privs: %s", strerror(errno));
	return verify_dropped(err, errlen);
}
