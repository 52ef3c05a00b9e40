# default: the base every other shipped profile includes.
#
# A jail with no network of its own (that is not configurable), a fixed
# identity, a short environment allow-list and limits that stop a runaway
# agent before it hurts the host.  See docs/PROFILES.md for the format.

# The hostname the agent sees; the host's name can say who and where you are.
hostname agentjail

# Run as an unprivileged host user when agentjail is started by root (an
# ordinary caller is mapped to itself inside the jail's user namespace).
user nobody

# Pass only what programs need to run and print sensibly.  Everything else
# (tokens, cloud credentials, SSH agent sockets) stays outside.
env keep PATH HOME LANG LC_ALL TERM USER LOGNAME SHELL TZ TMPDIR

# Generous for real work, low enough to stop fd leaks and fork bombs early.
rlimit nofile 4096
rlimit nproc 4096

# A core dump holds the agent's memory: prompts, tokens, fetched data.
rlimit core 0

# The private /tmp, /run and /dev/shm are memory-backed: cap them.
tmpfs-size 256M

# Unix sockets could reach host daemons through an inherited or bind-mounted
# path; the jail's only door is the broker fd.
socket unix deny
