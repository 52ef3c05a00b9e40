/*
 * The jail's network: a fresh namespace whose only link is `lo`.  It is
 * brought UP through libnl-route (no `ip` binary is needed or trusted), then
 * the link list is read back: any other link is a possible route out and is
 * fatal.  libnl's NLE_* codes are translated here, once.
 */
#include "config.h"

#include <errno.h>
#include <net/if.h>
#include <netlink/netlink.h>
#include <netlink/route/link.h>
#include <string.h>

#include "supervisor.h"

static int
nl_to_errno(int nle)
{
	switch (nle < 0 ? -nle : nle) {
	case NLE_NOMEM:
		return -ENOMEM;
	case NLE_PERM:
		return -EPERM;
	case NLE_NODEV:
	case NLE_OBJ_NOTFOUND:
		return -ENODEV;
	case NLE_EXIST:
		return -EEXIST;
	case NLE_INVAL:
		return -EINVAL;
	case NLE_AGAIN:
		return -EAGAIN;
	case NLE_BUSY:
		return -EBUSY;
	case NLE_OPNOTSUPP:
		return -EOPNOTSUPP;
	default:
		return -EIO;
	}
}

static int
bring_lo_up(struct nl_sock *sk, char *err, size_t errlen)
{
	struct rtnl_link *lo = NULL, *change = NULL;
	int r;

	r = rtnl_link_get_kernel(sk, 0, "lo", &lo);
	if (r < 0)
		return aj_err(err, errlen, nl_to_errno(r), "looking up lo: %s", nl_geterror(r));
	change = rtnl_link_alloc();
	if (change == NULL) {
		rtnl_link_put(lo);
		return aj_err(err, errlen, -ENOMEM, "rtnl_link_alloc: out of memory");
	}
	rtnl_link_set_flags(change, IFF_UP);
	r = rtnl_link_change(sk, lo, change, 0);
	rtnl_link_put(change);
	rtnl_link_put(lo);
	if (r < 0)
		return aj_err(err, errlen, nl_to_errno(r), "setting lo up: %s", nl_geterror(r));
	return 0;
}

static int
check_only_lo(struct nl_sock *sk, char *err, size_t errlen)
{
	struct nl_cache *cache = NULL;
	struct nl_object *obj;
	int r, n = 0;

	r = rtnl_link_alloc_cache(sk, AF_UNSPEC, &cache);
	if (r < 0)
		return aj_err(err, errlen, nl_to_errno(r), "listing links: %s", nl_geterror(r));
	r = 0;
	for (obj = nl_cache_get_first(cache); obj != NULL && r == 0; obj = nl_cache_get_next(obj)) {
		struct rtnl_link *link = (struct rtnl_link *)obj;
		const char *name = rtnl_link_get_name(link);

		n++;
		if (name == NULL || strcmp(name, "lo") != 0) {
			char safe[64];
			aj_log_escape(name ? name : "(unnamed)", safe, sizeof(safe));
			r = aj_err(err, errlen, -EEXIST, "unexpected link '%s'", safe);
		} else if (!(rtnl_link_get_flags(link) & IFF_UP)) {
			r = aj_err(err, errlen, -ENETDOWN, "lo is not UP after setting it up");
		}
	}
	if (r == 0 && n != 1)
		r = aj_err(err, errlen, -ENODEV, "expected exactly one link (lo), found %d", n);
	nl_cache_free(cache);
	return r;
}

int
aj_netns_setup_loopback(char *err, size_t errlen)
{
	struct nl_sock *sk = nl_socket_alloc();
	int r;

	if (sk == NULL)
		return aj_err(err, errlen, -ENOMEM, "nl_socket_alloc: out of memory");
	r = nl_connect(sk, NETLINK_ROUTE);
	if (r < 0) {
		r = aj_err(err, errlen, nl_to_errno(r), "connecting to rtnetlink: %s",
			   nl_geterror(r));
		goto out;
	}
	r = bring_lo_up(sk, err, errlen);
	if (r == 0)
		r = check_only_lo(sk, err, errlen);
out:
	nl_socket_free(sk);
	return r;
}
