#!/bin/bash
# The workload scripts/bench-fetch runs inside each sandbox (an agentjail
# jail, bubblewrap, firejail, srt) and on the host: the same loop around
# whatever fetch command it is given, so only that command differs.
#
#   fetch-workload.sh [--mark] MODE ARGS...
#   fetch-workload.sh seq N WARMUP URL CMD [ARGS...]
#       N sequential `CMD ARGS... URL` after WARMUP untimed ones; prints
#       "T MICROSECONDS" per timed fetch
#   fetch-workload.sh dl K URL CMD [ARGS...]
#       K sequential downloads of URL; "T MICROSECONDS" each
#   fetch-workload.sh conc ROUNDS P URL CMD [ARGS...]
#       P workers started at once, each doing ROUNDS sequential fetches;
#       "T MICROSECONDS" from the start until the last worker has ended
#   fetch-workload.sh exec PROGRAM [ARGS...]
#       runs PROGRAM (a harness from bench/) and prints what it prints
#
# A fetch that fails prints "FAIL EXIT-STATUS" instead of (seq, dl) or
# besides (conc) its time.  With --mark the script prints "@@MARK" at the
# end and waits (at most 60 s) for a line on its standard input, so that
# scripts/bench-fetch can read the broker's /proc entry while the jail is
# still alive.  bash, not sh: $EPOCHREALTIME times without starting a
# process.
set -u
export LC_ALL=C # $EPOCHREALTIME's decimal point is a '.'

mark=0
if [ "${1:-}" = --mark ]; then
	mark=1
	shift
fi
mode=$1
shift
case $mode in
seq)
	n=$1 warmup=$2 url=$3
	shift 3
	for ((i = 0; i < warmup + n; i++)); do
		t0=${EPOCHREALTIME/./}
		"$@" "$url"
		rc=$?
		t1=${EPOCHREALTIME/./}
		if [ $rc -ne 0 ]; then
			echo "FAIL $rc"
		elif ((i >= warmup)); then
			echo "T $((t1 - t0))"
		fi
	done
	;;
dl)
	k=$1 url=$2
	shift 2
	for ((i = 0; i < k; i++)); do
		t0=${EPOCHREALTIME/./}
		"$@" "$url"
		rc=$?
		t1=${EPOCHREALTIME/./}
		if [ $rc -ne 0 ]; then
			echo "FAIL $rc"
		else
			echo "T $((t1 - t0))"
		fi
	done
	;;
conc)
	rounds=$1 p=$2 url=$3
	shift 3
	t0=${EPOCHREALTIME/./}
	for ((j = 0; j < p; j++)); do
		for ((r = 0; r < rounds; r++)); do
			"$@" "$url" || echo "FAIL $?"
		done &
	done
	wait
	t1=${EPOCHREALTIME/./}
	echo "T $((t1 - t0))"
	;;
exec)
	"$@"
	rc=$?
	[ $rc -eq 0 ] || echo "FAIL $rc"
	;;
*)
	echo "fetch-workload.sh: unknown mode '$mode'" >&2
	exit 2
	;;
esac
if [ $mark -eq 1 ]; then
	echo "@@MARK"
	read -r -t 60 _ || true
fi
exit 0
