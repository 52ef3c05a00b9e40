/*
 * agentjail-broker: the agent's one door.  This first version only holds
 * its end of the socketpair (fd 3, AGENTJAIL_FD) so the jail's side of the
 * door exists and its lifecycle is real: it answers nothing yet and leaves
 * when the agent's end closes.  Fetching arrives with the wire protocol.
 */
#include "config.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "internal.h"

int
main(void)
{
	char buf[65536];
	const char *fdenv = getenv("AGENTJAIL_FD");
	int fd = fdenv ? atoi(fdenv) : AJ_BROKER_FD;

	for (;;) {
		ssize_t n = recv(fd, buf, sizeof(buf), 0);

		if (n == 0)
			return 0; /* the agent's end is closed: the jail is gone */
		if (n < 0 && errno != EINTR) {
			fprintf(stderr, "agentjail-broker[%d]: recv: %m\n", (int)getpid());
			return 1;
		}
	}
}
