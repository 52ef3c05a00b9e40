/*
 * try: the attempt helper that integration tests run inside real jails, in
 * the spirit of bubblewrap's try-syscall.  Each verb makes one dangerous
 * call with arguments that cannot harm if it succeeds, and reports the
 * result on stdout as "VERB ok" or "VERB EPERM" (errno name).  Exit status:
 * 0 when the call succeeded, 1 when it failed, 2 on usage errors.  Built
 * static, without sanitizers, so it runs under the strict filter as is.
 *
 * Inspection verbs print what they see instead: fds (open fd numbers),
 * fd-links (N:TARGET per fd), readlink PATH, procs (pid:comm per process).
 * fchdir N and openat N NAME try to use an inherited fd as a directory.
 * net-ifs lists the network interfaces each open fd answers for.
 * tcooff stops output on the terminal at fd 2 (tcflow), as an agent may.
 * loop-socket N and fork-then-socket MARKER drive the violation tests;
 * connect-tcp, connect-udp, send{to,msg,mmsg}-udp IP PORT and tcp-local IP
 * the loopback socket mode's.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/io_uring.h>
#include <linux/netlink.h>
#include <linux/perf_event.h>
#include <linux/seccomp.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <linux/sched.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/personality.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <net/if.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <termios.h>
#include <unistd.h>

#ifndef AF_VSOCK
#define AF_VSOCK 40
#endif

static const char *
errname(int e)
{
	switch (e) {
	case EPERM:
		return "EPERM";
	case EACCES:
		return "EACCES";
	case ENOSYS:
		return "ENOSYS";
	case ENOENT:
		return "ENOENT";
	case EROFS:
		return "EROFS";
	case EINVAL:
		return "EINVAL";
	case ECONNREFUSED:
		return "ECONNREFUSED";
	case ENETUNREACH:
		return "ENETUNREACH";
	case EAFNOSUPPORT:
		return "EAFNOSUPPORT";
	case ESRCH:
		return "ESRCH";
	case EBADF:
		return "EBADF";
	case ENOTTY:
		return "ENOTTY";
	case EIO:
		return "EIO";
	case ENOTDIR:
		return "ENOTDIR";
	case ENOTSOCK:
		return "ENOTSOCK";
	case EAGAIN:
		return "EAGAIN";
	case ENETDOWN:
		return "ENETDOWN";
	case EADDRNOTAVAIL:
		return "EADDRNOTAVAIL";
	case ENOEXEC:
		return "ENOEXEC";
	default: {
		static char buf[32];
		snprintf(buf, sizeof(buf), "errno%d", e);
		return buf;
	}
	}
}

static int
report(const char *verb, long rc)
{
	if (rc < 0) {
		printf("%s %s\n", verb, errname(errno));
		return 1;
	}
	printf("%s ok\n", verb);
	return 0;
}

static int
try_socket_protocol(const char *verb, int family, int type, int protocol)
{
	return report(verb, socket(family, type, protocol));
}

static int
try_socket(const char *verb, int family, int type)
{
	return try_socket_protocol(verb, family, type, 0);
}

/* IP (v4 or v6) and PORT as a socket address; its length, or 0. */
static socklen_t
inet_address(const char *ip, const char *port, struct sockaddr_storage *ss)
{
	struct sockaddr_in *in = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;

	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, ip, &in->sin_addr) == 1) {
		in->sin_family = AF_INET;
		in->sin_port = htons(atoi(port));
		return sizeof(*in);
	}
	if (inet_pton(AF_INET6, ip, &in6->sin6_addr) == 1) {
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons(atoi(port));
		return sizeof(*in6);
	}
	return 0;
}

/*
 * connect-tcp, connect-udp, sendto-udp, sendmsg-udp, sendmmsg-udp IP PORT:
 * one call that names IP:PORT as where the socket's bytes go.
 */
static int
try_inet(const char *verb, const char *ip, const char *port)
{
	struct sockaddr_storage ss;
	socklen_t len = inet_address(ip, port, &ss);
	bool stream = !strcmp(verb, "connect-tcp");
	struct iovec iov = {.iov_base = "x", .iov_len = 1};
	struct msghdr h = {.msg_name = &ss, .msg_namelen = len, .msg_iov = &iov, .msg_iovlen = 1};
	struct mmsghdr mh = {.msg_hdr = h};
	int fd;

	if (len == 0) {
		fprintf(stderr, "try: bad address '%s'\n", ip);
		return 2;
	}
	fd = socket(ss.ss_family, stream ? SOCK_STREAM : SOCK_DGRAM, 0);
	if (fd < 0)
		return report(verb, -1);
	if (!strcmp(verb, "sendto-udp"))
		return report(verb, sendto(fd, "x", 1, 0, (struct sockaddr *)&ss, len));
	if (!strcmp(verb, "sendmsg-udp"))
		return report(verb, sendmsg(fd, &h, 0));
	if (!strcmp(verb, "sendmmsg-udp"))
		return report(verb, sendmmsg(fd, &mh, 1, 0));
	return report(verb, connect(fd, (struct sockaddr *)&ss, len));
}

/* tcp-local IP: listen on IP (an ephemeral port), connect to it, pass one
 * byte: what an agent's own local server and its client do. */
static int
tcp_local(const char *verb, const char *ip)
{
	struct sockaddr_storage ss;
	socklen_t len = inet_address(ip, "0", &ss);
	int lfd, cfd, afd;
	char c = 0;

	if (len == 0) {
		fprintf(stderr, "try: bad address '%s'\n", ip);
		return 2;
	}
	lfd = socket(ss.ss_family, SOCK_STREAM, 0);
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&ss, len) < 0 || listen(lfd, 1) < 0 ||
	    getsockname(lfd, (struct sockaddr *)&ss, &len) < 0)
		return report(verb, -1);
	cfd = socket(ss.ss_family, SOCK_STREAM, 0);
	if (cfd < 0 || connect(cfd, (struct sockaddr *)&ss, len) < 0)
		return report(verb, -1);
	afd = accept(lfd, NULL, NULL);
	if (afd < 0 || send(cfd, "y", 1, 0) != 1 || recv(afd, &c, 1, 0) != 1)
		return report(verb, -1);
	return report(verb, c == 'y' ? 0 : (errno = EIO, -1));
}

static int
try_connect_unix(const char *verb, const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	socklen_t len;
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);

	if (fd < 0)
		return report(verb, -1);
	if (path[0] == '@') {
		/* abstract socket: leading NUL, no terminator */
		strncpy(sa.sun_path + 1, path + 1, sizeof(sa.sun_path) - 2);
		len = offsetof(struct sockaddr_un, sun_path) + strlen(path);
	} else {
		strncpy(sa.sun_path, path, sizeof(sa.sun_path) - 1);
		len = sizeof(sa);
	}
	return report(verb, connect(fd, (struct sockaddr *)&sa, len));
}

static int
list_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int self;

	if (d == NULL)
		return report("fds", -1);
	self = dirfd(d);
	printf("fds");
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.' || atoi(e->d_name) == self)
			continue;
		printf(" %s", e->d_name);
	}
	printf("\n");
	closedir(d);
	return 0;
}

/* Print "N:TARGET" for every open fd (what /proc/self/fd/N points at). */
static int
list_fd_links(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int self;

	if (d == NULL)
		return report("fd-links", -1);
	self = dirfd(d);
	printf("fd-links");
	while ((e = readdir(d)) != NULL) {
		char path[300], target[4096];
		ssize_t n;

		if (e->d_name[0] == '.' || atoi(e->d_name) == self)
			continue;
		snprintf(path, sizeof(path), "/proc/self/fd/%s", e->d_name);
		n = readlink(path, target, sizeof(target) - 1);
		if (n < 0)
			snprintf(target, sizeof(target), "?%s", errname(errno));
		else
			target[n] = '\0';
		printf(" %s:%s", e->d_name, target);
	}
	printf("\n");
	closedir(d);
	return 0;
}

/* "readlink TARGET" or "readlink ERRNO". */
static int
try_readlink(const char *path)
{
	char target[4096];
	ssize_t n = readlink(path, target, sizeof(target) - 1);

	if (n < 0)
		return report("readlink", -1);
	target[n] = '\0';
	printf("readlink %s\n", target);
	return 0;
}

/* Print the comm of every process visible in /proc. */
static int
list_procs(void)
{
	DIR *d = opendir("/proc");
	struct dirent *e;

	if (d == NULL)
		return report("procs", -1);
	printf("procs");
	while ((e = readdir(d)) != NULL) {
		char path[300], comm[64] = "?";
		FILE *f;

		if (e->d_name[0] < '0' || e->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%s/comm", e->d_name);
		f = fopen(path, "r");
		if (f != NULL) {
			if (fgets(comm, sizeof(comm), f) != NULL)
				comm[strcspn(comm, "\n")] = '\0';
			fclose(f);
		}
		printf(" %s:%s", e->d_name, comm);
	}
	printf("\n");
	closedir(d);
	return 0;
}

static long
x32_getpid(void)
{
	/* The x32 ABI sets bit 30 of the syscall number. */
	return syscall(0x40000000 | SYS_getpid);
}

static long
int80_getpid(void)
{
	long ret = 20; /* i386 getpid */
	__asm__ volatile("int $0x80" : "+a"(ret) : : "memory");
	return ret;
}

static long
int80_socketcall(void)
{
	/* i386 socketcall(SYS_SOCKET, {AF_INET, SOCK_STREAM, 0}) */
	static unsigned int args[3] = {AF_INET, SOCK_STREAM, 0};
	long ret = 102;
	__asm__ volatile("int $0x80"
			 : "+a"(ret)
			 : "b"(1), "c"((unsigned int)(uintptr_t)args)
			 : "memory");
	return ret;
}

/* Harness verbs (run outside jails, around agentjail itself) that make a
 * kernel feature unavailable for real, for the fail-closed tests. */

static int
errno_by_name(const char *name)
{
	static const struct {
		const char *name;
		int value;
	} names[] = {
		{"EPERM", EPERM},   {"EACCES", EACCES}, {"ENOSYS", ENOSYS},
		{"EINVAL", EINVAL}, {"ENOSPC", ENOSPC}, {"ENOMEM", ENOMEM},
	};
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (!strcmp(name, names[i].name))
			return names[i].value;
	return -1;
}

/* with-errno NR ERRNO -- CMD...: run CMD under a seccomp filter that fails
 * system call NR with ERRNO and allows everything else. */
static int
with_errno(int argc, char **argv)
{
	int e = argc > 3 ? errno_by_name(argv[3]) : -1;
	struct sock_filter insns[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, argc > 2 ? (unsigned)atoi(argv[2]) : ~0u, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ((unsigned)e & SECCOMP_RET_DATA)),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = {.len = sizeof(insns) / sizeof(insns[0]), .filter = insns};

	if (argc < 6 || e < 0 || strcmp(argv[4], "--") != 0) {
		fprintf(stderr, "usage: try with-errno NR ERRNO -- CMD...\n");
		return 2;
	}
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 ||
	    syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) < 0) {
		perror("try with-errno: seccomp");
		return 2;
	}
	execv(argv[5], argv + 5);
	perror(argv[5]);
	return 127;
}

/* with-errno-flag NR ARG FLAG ERRNO -- CMD...: like with-errno, but only
 * when argument ARG of the call has a bit of FLAG set (low 32 bits): for
 * example seccomp() with SECCOMP_FILTER_FLAG_NEW_LISTENER, to play a
 * kernel without user notification. */
static int
with_errno_flag(int argc, char **argv)
{
	int e = argc > 5 ? errno_by_name(argv[5]) : -1;
	unsigned arg = argc > 3 ? (unsigned)atoi(argv[3]) : 0;
	struct sock_filter insns[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, argc > 2 ? (unsigned)atoi(argv[2]) : ~0u, 0, 3),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
			 offsetof(struct seccomp_data, args) + 8 * (arg % 6)),
		BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K,
			 argc > 4 ? (unsigned)strtoul(argv[4], NULL, 0) : 0, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ((unsigned)e & SECCOMP_RET_DATA)),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = {.len = sizeof(insns) / sizeof(insns[0]), .filter = insns};

	if (argc < 8 || e < 0 || arg > 5 || strcmp(argv[6], "--") != 0) {
		fprintf(stderr, "usage: try with-errno-flag NR ARG FLAG ERRNO -- CMD...\n");
		return 2;
	}
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 ||
	    syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) < 0) {
		perror("try with-errno-flag: seccomp");
		return 2;
	}
	execv(argv[7], argv + 7);
	perror(argv[7]);
	return 127;
}

static void
on_usr1(int sig)
{
	(void)sig;
}

/* socket-under-signals N: N attempts of socket(AF_INET) while a child
 * showers us with SIGUSR1 (no SA_RESTART), so some attempts are withdrawn
 * by a signal half-way; then, with the shower over, one last attempt under
 * a 3 s alarm must still be answered (EPERM), not left hanging (EINTR from
 * the alarm) by a supervisor that stopped listening. */
static int
socket_under_signals(int n)
{
	struct sigaction sa = {.sa_handler = on_usr1};
	pid_t parent = getpid(), child;
	int st;

	sigaction(SIGUSR1, &sa, NULL);
	sigaction(SIGALRM, &sa, NULL);
	child = fork();
	if (child == 0) {
		for (;;)
			kill(parent, SIGUSR1);
	}
	for (int i = 0; i < n; i++)
		(void)socket(AF_INET, SOCK_STREAM, 0);
	kill(child, SIGKILL);
	waitpid(child, &st, 0);
	alarm(3);
	return report("socket-under-signals", socket(AF_INET, SOCK_STREAM, 0));
}

/* One fd's view of the network, through the ioctls any socket answers
 * from the namespace it was made in: "net-ifs N if NAME" per interface that
 * SIOCGIFCONF lists or an index names, "net-ifs N hwaddr NAME XX:..". */
static void
net_ifs_of(int fd)
{
	struct ifreq reqs[32];
	struct ifconf conf = {.ifc_len = sizeof(reqs), .ifc_req = reqs};

	if (ioctl(fd, SIOCGIFCONF, &conf) == 0)
		for (size_t i = 0; i < (size_t)conf.ifc_len / sizeof(reqs[0]); i++)
			printf("net-ifs %d if %s\n", fd, reqs[i].ifr_name);
	for (int index = 1; index <= 64; index++) {
		struct ifreq q = {.ifr_ifindex = index};
		const unsigned char *mac;

		if (ioctl(fd, SIOCGIFNAME, &q) < 0)
			continue;
		printf("net-ifs %d if %s\n", fd, q.ifr_name);
		if (ioctl(fd, SIOCGIFHWADDR, &q) < 0)
			continue;
		mac = (const unsigned char *)q.ifr_hwaddr.sa_data;
		printf("net-ifs %d hwaddr %s %02x:%02x:%02x:%02x:%02x:%02x\n", fd, q.ifr_name,
		       mac[0], mac[1], mac[2], mac[3], mac[4], mac[5]);
	}
}

/* net-ifs: every fd this process holds, asked for the network. */
static int
net_ifs(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;

	if (d == NULL)
		return report("net-ifs", -1);
	while ((e = readdir(d)) != NULL) {
		int fd = atoi(e->d_name);

		if (e->d_name[0] == '.' || fd == dirfd(d))
			continue;
		printf("net-ifs %d held\n", fd);
		net_ifs_of(fd);
	}
	closedir(d);
	return 0;
}

static int
hexval(int c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* broker-send HEX: send the bytes HEX as one message on $AGENTJAIL_FD and
 * print the broker's answer: "broker-send reply TYPE LEN PAYLOAD" or
 * "broker-send eof". */
static int
broker_send(const char *hex)
{
	unsigned char msg[4096], reply[70000];
	size_t n = 0;
	ssize_t got;
	const char *env = getenv("AGENTJAIL_FD");
	int fd = env ? atoi(env) : 3;

	for (; hex[0] && hex[1] && n < sizeof(msg); hex += 2)
		msg[n++] = (unsigned char)(hexval(hex[0]) << 4 | hexval(hex[1]));
	if (send(fd, msg, n, MSG_NOSIGNAL) < 0)
		return report("broker-send", -1);
	got = recv(fd, reply, sizeof(reply) - 1, 0);
	if (got < 0)
		return report("broker-send", -1);
	if (got == 0) {
		printf("broker-send eof\n");
		return 0;
	}
	reply[got] = '\0';
	printf("broker-send reply %u %zd %s\n", reply[1], got, got > 16 ? (char *)reply + 16 : "");
	return 0;
}

static int
write_file(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = write(fd, text, strlen(text));
	close(fd);
	return n == (ssize_t)strlen(text) ? 0 : -1;
}

/* no-userns -- CMD...: run CMD in a new user namespace (same ids: root's 0
 * and nobody, or the caller's own) whose user.max_user_namespaces is 0, so
 * CMD cannot create user namespaces, as on a kernel with them disabled. */
static int
no_userns(int argc, char **argv)
{
	int go[2], ready[2], st;
	char c = 0, path[64], map[64];
	pid_t pid;

	if (argc < 4 || strcmp(argv[2], "--") != 0) {
		fprintf(stderr, "usage: try no-userns -- CMD...\n");
		return 2;
	}
	if (pipe(go) < 0 || pipe(ready) < 0)
		return 2;
	pid = fork();
	if (pid == 0) {
		if (unshare(CLONE_NEWUSER) < 0) {
			perror("try no-userns: unshare");
			_exit(2);
		}
		(void)!write(ready[1], &c, 1);
		if (read(go[0], &c, 1) != 1 || c != 1)
			_exit(2);
		/* Still holding every capability in the new namespace (no
		 * exec yet): lower its limit, then become CMD. */
		if (write_file("/proc/sys/user/max_user_namespaces", "0\n") < 0) {
			perror("try no-userns: max_user_namespaces");
			_exit(2);
		}
		execv(argv[3], argv + 3);
		perror(argv[3]);
		_exit(127);
	}
	if (read(ready[0], &c, 1) != 1)
		return 2;
	/* The parent writes the maps: root may map 0 and nobody (agentjail,
	 * started as root, drops to nobody), a user only itself. */
	snprintf(path, sizeof(path), "/proc/%d/uid_map", (int)pid);
	if (getuid() == 0)
		snprintf(map, sizeof(map), "0 0 1\n65534 65534 1\n");
	else
		snprintf(map, sizeof(map), "%u %u 1\n", getuid(), getuid());
	c = write_file(path, map) == 0;
	snprintf(path, sizeof(path), "/proc/%d/setgroups", (int)pid);
	if (c && getuid() != 0)
		c = write_file(path, "deny") == 0;
	snprintf(path, sizeof(path), "/proc/%d/gid_map", (int)pid);
	if (getuid() == 0)
		snprintf(map, sizeof(map), "0 0 1\n65534 65534 1\n");
	else
		snprintf(map, sizeof(map), "%u %u 1\n", getgid(), getgid());
	if (c)
		c = write_file(path, map) == 0;
	if (!c)
		perror("try no-userns: writing maps");
	(void)!write(go[1], &c, 1);
	if (waitpid(pid, &st, 0) < 0)
		return 2;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* loop-socket N: N attempts of socket(AF_INET), as an agent stuck in a
 * retry loop would make; prints "loop-socket EPERM COUNT" (how many were
 * refused with EPERM) and, if any attempt ended otherwise, one line
 * "loop-socket other COUNT" (a success or another errno). */
static int
loop_socket(const char *verb, const char *count)
{
	long n = atol(count), eperm = 0, other = 0;

	for (long i = 0; i < n; i++) {
		int fd = socket(AF_INET, SOCK_STREAM, 0);
		if (fd >= 0) {
			close(fd);
			other++;
		} else if (errno == EPERM) {
			eperm++;
		} else {
			other++;
		}
	}
	printf("%s EPERM %ld\n", verb, eperm);
	if (other > 0)
		printf("%s other %ld\n", verb, other);
	return eperm == n ? 1 : 0;
}

/* fork-then-socket MARKER: fork a child that becomes `sleep MARKER` (a
 * cmdline the test can look for on the host), print "fork-then-socket
 * child PID" once it runs, then attempt socket(AF_INET) and wait for the
 * child: only a jail that is killed ends this. */
static int
fork_then_socket(const char *verb, const char *marker)
{
	int p[2], e = 0;
	pid_t pid;

	if (pipe2(p, O_CLOEXEC) < 0)
		return report(verb, -1);
	pid = fork();
	if (pid < 0)
		return report(verb, -1);
	if (pid == 0) {
		char *argv[] = {"sleep", (char *)marker, NULL};
		close(p[0]);
		execv("/bin/sleep", argv);
		e = errno;
		(void)!write(p[1], &e, sizeof(e));
		_exit(127);
	}
	close(p[1]);
	/* EOF: the exec closed the pipe; data: the exec failed. */
	if (read(p[0], &e, sizeof(e)) == (ssize_t)sizeof(e)) {
		errno = e;
		return report(verb, -1);
	}
	printf("%s child %d\n", verb, (int)pid);
	report(verb, socket(AF_INET, SOCK_STREAM, 0));
	waitpid(pid, NULL, 0);
	return 0;
}

static int
try_process_vm(const char *verb, int write)
{
	char local[8] = "x", remote[8] = "y";
	struct iovec l = {.iov_base = local, .iov_len = 1};
	struct iovec r = {.iov_base = remote, .iov_len = 1};

	/* pid 1, the jail's init (mapped like us: same binary layout or not,
	 * the call is refused before the kernel looks). */
	return report(verb, syscall(write ? SYS_process_vm_writev : SYS_process_vm_readv, 1, &l, 1,
				    &r, 1, 0));
}

static int
try_perf_event_open(const char *verb)
{
	struct perf_event_attr attr = {
		.type = PERF_TYPE_SOFTWARE,
		.size = sizeof(attr),
		.config = PERF_COUNT_SW_CPU_CLOCK,
		.disabled = 1,
	};
	return report(verb, syscall(SYS_perf_event_open, &attr, 0, -1, -1, 0));
}

/* setns into our own network namespace: harmless if it worked. */
static int
try_setns(const char *verb)
{
	int fd = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return report(verb, -1);
	return report(verb, setns(fd, CLONE_NEWNET));
}

int
main(int argc, char **argv)
{
	const char *v = argc > 1 ? argv[1] : "";

	setvbuf(stdout, NULL, _IONBF, 0);
	if (!strcmp(v, "socket-inet"))
		return try_socket(v, AF_INET, SOCK_STREAM);
	if (!strcmp(v, "socket-inet-udp"))
		return try_socket(v, AF_INET, SOCK_DGRAM);
	if (!strcmp(v, "socket-inet6"))
		return try_socket(v, AF_INET6, SOCK_STREAM);
	if (!strcmp(v, "socket-raw"))
		return try_socket(v, AF_INET, SOCK_RAW);
	if (!strcmp(v, "socket-packet"))
		return try_socket(v, AF_PACKET, SOCK_RAW);
	if (!strcmp(v, "socket-netlink")) /* NETLINK_ROUTE, as glibc's getaddrinfo */
		return try_socket(v, AF_NETLINK, SOCK_RAW);
	if (!strcmp(v, "socket-netlink-audit"))
		return try_socket_protocol(v, AF_NETLINK, SOCK_RAW, NETLINK_AUDIT);
	if (!strcmp(v, "socket-vsock"))
		return try_socket(v, AF_VSOCK, SOCK_STREAM);
	if (!strcmp(v, "socket-alg"))
		return try_socket(v, AF_ALG, SOCK_SEQPACKET);
	if (!strcmp(v, "socket-unix"))
		return try_socket(v, AF_UNIX, SOCK_STREAM);
	if (!strcmp(v, "socketpair-unix")) {
		int sv[2];
		return report(v, socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
	}
	if (!strcmp(v, "dgram-pair-sendto") && argc == 3) {
		/* A datagram socket from socketpair() can address any socket
		 * path: the way around a ban on socket(AF_UNIX). */
		struct sockaddr_un sa = {.sun_family = AF_UNIX};
		int sv[2];
		if (socketpair(AF_UNIX, SOCK_DGRAM, 0, sv) < 0)
			return report(v, -1);
		strncpy(sa.sun_path, argv[2], sizeof(sa.sun_path) - 1);
		return report(v, sendto(sv[0], "x", 1, 0, (struct sockaddr *)&sa, sizeof(sa)));
	}
	if ((!strcmp(v, "connect-tcp") || !strcmp(v, "connect-udp") || !strcmp(v, "sendto-udp") ||
	     !strcmp(v, "sendmsg-udp") || !strcmp(v, "sendmmsg-udp")) &&
	    argc == 4)
		return try_inet(v, argv[2], argv[3]);
	if (!strcmp(v, "tcp-local") && argc == 3)
		return tcp_local(v, argv[2]);
	if (!strcmp(v, "connect-unix") && argc == 3)
		return try_connect_unix(v, argv[2]);
	if (!strcmp(v, "io_uring_setup")) {
		struct io_uring_params p = {0};
		return report(v, syscall(SYS_io_uring_setup, 1, &p));
	}
	if (!strcmp(v, "ptrace-attach-1"))
		return report(v, ptrace(PTRACE_ATTACH, 1, 0, 0));
	if (!strcmp(v, "open-proc-1-mem"))
		return report(v, open("/proc/1/mem", O_RDONLY));
	if (!strcmp(v, "clone3")) {
		struct clone_args a = {.exit_signal = SIGCHLD};
		long r = syscall(SYS_clone3, &a, sizeof(a));
		if (r == 0)
			_exit(0);
		return report(v, r);
	}
	if (!strcmp(v, "clone-newnet")) {
		long r = syscall(SYS_clone, CLONE_NEWNET | SIGCHLD, 0, 0, 0, 0);
		if (r == 0)
			_exit(0);
		return report(v, r);
	}
	if (!strcmp(v, "unshare-user"))
		return report(v, unshare(CLONE_NEWUSER));
	if (!strcmp(v, "unshare-net"))
		return report(v, unshare(CLONE_NEWNET));
	if (!strcmp(v, "mount-tmpfs"))
		return report(v, mount("none", "/mnt", "tmpfs", 0, NULL));
	if (!strcmp(v, "tiocsti"))
		return report(v, ioctl(0, TIOCSTI, "x"));
	if (!strcmp(v, "tiocsti-high"))
		return report(v, syscall(SYS_ioctl, 0, TIOCSTI | (1UL << 32), "x"));
	if (!strcmp(v, "personality-exec"))
		return report(v, personality(0x0400000));
	if (!strcmp(v, "open_by_handle_at")) {
		struct {
			struct file_handle h;
			unsigned char data[128];
		} fh = {.h.handle_bytes = 8};
		return report(v, syscall(SYS_open_by_handle_at, AT_FDCWD, &fh.h, O_RDONLY));
	}
	if (!strcmp(v, "bpf"))
		return report(v, syscall(SYS_bpf, 0, NULL, 0));
	if (!strcmp(v, "userfaultfd"))
		return report(v, syscall(SYS_userfaultfd, 0));
	if (!strcmp(v, "keyctl"))
		return report(v, syscall(SYS_keyctl, 0, 0, 0, 0, 0));
	if (!strcmp(v, "open-core-pattern-write"))
		return report(v, open("/proc/sys/kernel/core_pattern", O_WRONLY));
	if (!strcmp(v, "kill-all"))
		return report(v, kill(-1, SIGKILL));
	if (!strcmp(v, "x32-getpid"))
		return report(v, x32_getpid());
	if (!strcmp(v, "int80-getpid"))
		return report(v, int80_getpid());
	if (!strcmp(v, "int80-socketcall"))
		return report(v, int80_socketcall());
	if (!strcmp(v, "fds"))
		return list_fds();
	if (!strcmp(v, "fd-links"))
		return list_fd_links();
	if (!strcmp(v, "net-ifs"))
		return net_ifs();
	if (!strcmp(v, "tcooff"))
		return report(v, tcflow(STDERR_FILENO, TCOOFF));
	if (!strcmp(v, "readlink") && argc == 3)
		return try_readlink(argv[2]);
	if (!strcmp(v, "fchdir") && argc == 3)
		return report(v, fchdir(atoi(argv[2])));
	if (!strcmp(v, "openat") && argc == 4)
		return report(v, openat(atoi(argv[2]), argv[3], O_RDONLY));
	if (!strcmp(v, "with-errno"))
		return with_errno(argc, argv);
	if (!strcmp(v, "socket-under-signals") && argc == 3)
		return socket_under_signals(atoi(argv[2]));
	if (!strcmp(v, "broker-send") && argc == 3)
		return broker_send(argv[2]);
	if (!strcmp(v, "with-errno-flag"))
		return with_errno_flag(argc, argv);
	if (!strcmp(v, "no-userns"))
		return no_userns(argc, argv);
	if (!strcmp(v, "procs"))
		return list_procs();
	if (!strcmp(v, "socketpair-inet")) {
		int sv[2];
		return report(v, socketpair(AF_INET, SOCK_STREAM, 0, sv));
	}
	if (!strcmp(v, "process_vm_readv"))
		return try_process_vm(v, 0);
	if (!strcmp(v, "process_vm_writev"))
		return try_process_vm(v, 1);
	if (!strcmp(v, "perf_event_open"))
		return try_perf_event_open(v);
	if (!strcmp(v, "setns"))
		return try_setns(v);
	if (!strcmp(v, "tioclinux")) {
		char sub = 0; /* TIOCL_... subcode 0: nothing */
		return report(v, ioctl(0, TIOCLINUX, &sub));
	}
	if (!strcmp(v, "loop-socket") && argc == 3)
		return loop_socket(v, argv[2]);
	if (!strcmp(v, "fork-then-socket") && argc == 3)
		return fork_then_socket(v, argv[2]);
	fprintf(stderr, "try: unknown verb '%s'\n", v);
	return 2;
}
