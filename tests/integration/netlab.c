/*
 * netlab: run a command in a fresh network namespace whose only link is
 * `lo`, so the fetch and SSRF tests can talk to servers on 127.0.0.x and
 * have every other address fail at once with ENETUNREACH, whatever network
 * the machine running the suite has.
 *
 *     netlab [--resolv FILE] [--hosts FILE] -- CMD [ARGS...]
 *
 * As root only the network and mount namespaces are new.  Anyone else also
 * gets a user namespace, with their uid and gid mapped to themselves, not
 * to root: the program under test (agentjail) behaves differently as root,
 * and the unprivileged run must see an unprivileged caller.  The
 * capabilities of that user namespace are gone at execve (the uid is not
 * 0), so every privileged step is done here, before exec.  The command can
 * still make user namespaces of its own: agentjail does.
 *
 * --resolv and --hosts bind FILE over /etc/resolv.conf and /etc/hosts, in
 * the private mount namespace only; with ip_unprivileged_port_start set to
 * 0 in the new namespace, a test's DNS server can listen on 127.0.0.x:53
 * without privileges.
 *
 * Any failure: one line "netlab: STEP: reason" and exit status 125, before
 * the command runs.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <unistd.h>

#define NETLAB_FAILED 125
/* Not 127.0.0.1, and out of the way of the tests' servers (see
 * lo_add_address). */
#define NETLAB_EXTRA_ADDR "127.255.255.254"

static void die(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
static void usage(void) __attribute__((noreturn));

static void
die(const char *fmt, ...)
{
	int e = errno;
	va_list ap;

	fputs("netlab: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, ": %s\n", strerror(e));
	exit(NETLAB_FAILED);
}

static void
usage(void)
{
	fputs("usage: netlab [--resolv FILE] [--hosts FILE] -- CMD [ARGS...]\n", stderr);
	exit(NETLAB_FAILED);
}

/* Write TEXT to a /proc file in one write(2), as the kernel wants for
 * uid_map and friends. */
static void
write_proc(const char *path, const char *text)
{
	size_t len = strlen(text);
	int fd = open(path, O_WRONLY | O_CLOEXEC);

	if (fd < 0)
		die("open %s", path);
	if (write(fd, text, len) != (ssize_t)len)
		die("write %s", path);
	if (close(fd) < 0)
		die("close %s", path);
}

/* Map ID to itself.  setgroups must be denied before an unprivileged
 * process may write gid_map. */
static void
map_self(uid_t uid, gid_t gid)
{
	char line[64];

	write_proc("/proc/self/setgroups", "deny");
	snprintf(line, sizeof(line), "%u %u 1\n", (unsigned)uid, (unsigned)uid);
	write_proc("/proc/self/uid_map", line);
	snprintf(line, sizeof(line), "%u %u 1\n", (unsigned)gid, (unsigned)gid);
	write_proc("/proc/self/gid_map", line);
}

static void
lo_up(void)
{
	struct ifreq ifr;
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		die("lo up: socket");
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "lo");
	if (ioctl(fd, SIOCGIFFLAGS, &ifr) < 0)
		die("lo up: SIOCGIFFLAGS");
	ifr.ifr_flags |= IFF_UP;
	if (ioctl(fd, SIOCSIFFLAGS, &ifr) < 0)
		die("lo up: SIOCSIFFLAGS");
	close(fd);
}

/* glibc's AI_ADDRCONFIG counts every IPv4 address but 127.0.0.1 as a
 * configured one; with none, getaddrinfo(AF_INET, AI_ADDRCONFIG) (as in
 * `getent ahostsv4`) fails without asking DNS at all.  A second loopback
 * address makes the namespace look like an IPv4 host without adding any
 * route: all of 127/8 is local already. */
static void
lo_add_address(const char *addr)
{
	struct {
		struct nlmsghdr nh;
		struct ifaddrmsg ifa;
		struct rtattr rta;
		struct in_addr in;
	} req;
	struct {
		struct nlmsghdr nh;
		struct nlmsgerr err;
	} ack;
	struct sockaddr_nl kernel = {.nl_family = AF_NETLINK};
	unsigned int lo = if_nametoindex("lo");
	ssize_t n;
	int fd;

	if (lo == 0)
		die("lo address: if_nametoindex");
	memset(&req, 0, sizeof(req));
	req.nh.nlmsg_len = sizeof(req);
	req.nh.nlmsg_type = RTM_NEWADDR;
	req.nh.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL;
	req.nh.nlmsg_seq = 1;
	req.ifa.ifa_family = AF_INET;
	req.ifa.ifa_prefixlen = 32;
	req.ifa.ifa_scope = RT_SCOPE_HOST;
	req.ifa.ifa_index = lo;
	req.rta.rta_type = IFA_LOCAL;
	req.rta.rta_len = RTA_LENGTH(sizeof(req.in));
	if (inet_pton(AF_INET, addr, &req.in) != 1) {
		errno = EINVAL;
		die("lo address %s", addr);
	}

	fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
	if (fd < 0)
		die("lo address: netlink socket");
	if (sendto(fd, &req, sizeof(req), 0, (struct sockaddr *)&kernel, sizeof(kernel)) < 0)
		die("lo address: netlink send");
	n = recv(fd, &ack, sizeof(ack), 0);
	if (n < 0)
		die("lo address: netlink recv");
	if ((size_t)n < sizeof(ack) || ack.nh.nlmsg_type != NLMSG_ERROR) {
		errno = EPROTO;
		die("lo address: netlink answer");
	}
	if (ack.err.error != 0) {
		errno = -ack.err.error;
		die("lo address %s", addr);
	}
	close(fd);
}

static void
bind_over(const char *file, const char *target)
{
	if (mount(file, target, NULL, MS_BIND, NULL) < 0)
		die("bind %s over %s", file, target);
}

int
main(int argc, char **argv)
{
	const char *resolv = NULL, *hosts = NULL;
	uid_t uid = geteuid();
	gid_t gid = getegid();
	int i;

	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--") == 0) {
			i++;
			break;
		} else if (strcmp(argv[i], "--resolv") == 0 && i + 1 < argc) {
			resolv = argv[++i];
		} else if (strcmp(argv[i], "--hosts") == 0 && i + 1 < argc) {
			hosts = argv[++i];
		} else {
			usage();
		}
	}
	if (i >= argc)
		usage();

	/* 1. New namespaces; without root, a user namespace that maps the
	 *    caller to itself gives the capabilities for the steps below. */
	if (uid == 0) {
		if (unshare(CLONE_NEWNET | CLONE_NEWNS) < 0)
			die("unshare");
	} else {
		if (unshare(CLONE_NEWUSER | CLONE_NEWNET | CLONE_NEWNS) < 0)
			die("unshare");
		map_self(uid, gid);
	}

	/* 2. Nothing mounted from here on may leak back to the host. */
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		die("make mounts private");

	/* 3. The namespace's only link; down until told otherwise. */
	lo_up();
	lo_add_address(NETLAB_EXTRA_ADDR);

	/* 4. Any port for anyone, in this namespace only: the DNS server of
	 *    an unprivileged test listens on 53. */
	write_proc("/proc/sys/net/ipv4/ip_unprivileged_port_start", "0");

	/* 5. The test's resolver configuration, seen by this process tree
	 *    only. */
	if (resolv != NULL)
		bind_over(resolv, "/etc/resolv.conf");
	if (hosts != NULL)
		bind_over(hosts, "/etc/hosts");

	execvp(argv[i], argv + i);
	die("exec %s", argv[i]);
}
