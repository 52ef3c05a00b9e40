/*
 * The profile's resource limits, applied in the agent process before exec.
 * Soft and hard limits are set together so the agent cannot raise them.
 */
#include "config.h"

#include <errno.h>
#include <string.h>
#include <sys/resource.h>

#include "supervisor.h"

int
aj_rlimits_apply(const struct aj_profile *profile, char *err, size_t errlen)
{
	for (int k = 0; k < AJ_RLIMIT__COUNT; k++) {
		struct rlimit rl;

		if (!profile->rlimits[k].set)
			continue;
		rl.rlim_cur = profile->rlimits[k].value == AJ_RLIM_UNLIMITED
				      ? RLIM_INFINITY
				      : (rlim_t)profile->rlimits[k].value;
		rl.rlim_max = rl.rlim_cur;
		if (setrlimit(aj_profile_rlimit_resource(k), &rl) < 0)
			return aj_err(err, errlen, -errno, "rlimit %s: %s",
				      aj_profile_rlimit_name(k), strerror(errno));
	}
	return 0;
}
