/*
 * The supervisor's event loop while the jail runs: the jail's init and the
 * broker are watched through pidfds on ev_io watchers, signals are forwarded
 * to the jail, the run's output is written as its files take it, and
 * --timeout kills the whole jail (with a watchdog thread behind the timer).
 * When the agent has a terminal of its own, the loop relays it to the
 * caller's (supervisor/pty.c); under job control, a jail that init reports
 * stopped stops the supervisor too, as a shell's job, until SIGCONT.
 * The loop is private to one run (ev_loop_new), so an embedding program's
 * own loop is untouched.
 */
#include "config.h"

#include <errno.h>
#include <ev.h>
#include <jansson.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "supervisor.h"

/* How long the broker may take to leave after the jail is gone. */
#define BROKER_GRACE_MS 2000
/* How long after the time limit the watchdog kills the jail if the loop's
 * own timer did not. */
#define WATCHDOG_GRACE_SEC 2.0
#define MAX_OUTPUTS 4
/* How long the end of a run waits for the agent's last output to reach
 * the caller's terminal. */
#define PTY_DRAIN_MS 1000

/* The time limit, held by a thread of its own: whatever keeps the loop
 * from running its timer (a bug; a write that blocks where none should),
 * the jail ends at most WATCHDOG_GRACE_SEC after its limit. */
struct watchdog {
	pthread_t thread;
	int stop_fd; /* an eventfd: the run is over */
	int jail_pidfd;
	struct timespec deadline; /* CLOCK_MONOTONIC */
	atomic_bool fired;
	bool running;
};

struct monitor {
	const struct aj_monitor_plan *plan;
	struct ev_loop *loop;
	ev_io jail_w;
	ev_io broker_w;
	ev_io listener_w;
	ev_io audit_w;
	ev_io broker_log_w;
	ev_timer timeout_w;
	ev_timer flush_w;
	bool killed_for_violation;
	bool listener_failed;
	int init_signal; /* init itself died by this signal (the jail was killed) */
	ev_signal sig_w[AJ_INIT_N_FORWARDED];
	ev_prepare outputs_w; /* before each wait: watch the outputs that hold lines */
	ev_io output_w[MAX_OUTPUTS];
	bool broker_alive;
	bool timed_out;
	int status;
	struct watchdog watchdog;
	ev_io setup_w;       /* init's word while the jail runs: STOPPED, AGENT_STATUS */
	bool have_agent_status;
	int agent_status;    /* the agent's raw wait status, once init sent it */
	ev_io pty_in_w, pty_out_w, pty_master_w; /* the agent's terminal, relayed */
};

static int
pidfd_signal(int pidfd, int sig)
{
	return (int)syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0);
}

static int
status_of(const siginfo_t *info)
{
	if (info->si_code == CLD_EXITED)
		return info->si_status;
	return AJ_EXIT_SIGNAL_BASE + info->si_status;
}

static void
on_jail_exit(struct ev_loop *loop, ev_io *w, int revents)
{
	struct monitor *m = w->data;
	siginfo_t info = {0};

	if (waitid(P_PIDFD, m->plan->jail_pidfd, &info, WEXITED | WNOHANG) < 0 || info.si_pid == 0)
		return;
	if (info.si_code != CLD_EXITED)
		m->init_signal = info.si_status;
	m->status = m->listener_failed                                ? AJ_EXIT_SETUP
		    : m->killed_for_violation                         ? AJ_EXIT_VIOLATION
		    : m->timed_out || atomic_load(&m->watchdog.fired) ? AJ_EXIT_TIMEOUT
								      : status_of(&info);
	ev_break(loop, EVBREAK_ALL);
}

/* "expected": the broker left because the agent's side closed (exit 0) or
 * because the supervisor stopped it after the jail ended; anything else
 * means the agent lost its door while it may still have needed it. */
static void
emit_broker_exit(struct monitor *m, const siginfo_t *info, bool stopped)
{
	bool clean = info->si_code == CLD_EXITED && info->si_status == 0;

	aj_events_emit(m->plan->events, "broker_exit",
		       json_pack("{s:s, s:i, s:b}", "how",
				 info->si_code == CLD_EXITED ? "exited" : "killed", "status",
				 info->si_status, "expected", clean || stopped));
}

static void
on_broker_exit(struct ev_loop *loop, ev_io *w, int revents)
{
	struct monitor *m = w->data;
	siginfo_t info = {0};

	if (waitid(P_PIDFD, m->plan->broker_pidfd, &info, WEXITED | WNOHANG) < 0 ||
	    info.si_pid == 0)
		return;
	ev_io_stop(loop, w);
	m->broker_alive = false;
	emit_broker_exit(m, &info, false);
	/* A clean exit means every agent-side end of the socketpair closed.
	 * Anything else leaves the agent without its door: say so. */
	if (!m->plan->quiet && info.si_code == CLD_EXITED &&
	    info.si_status == AJ_BROKER_EXIT_CONFINE)
		aj_log_error("the broker could not load its own seccomp filter; "
			     "the agent can no longer fetch");
	else if (!m->plan->quiet && !(info.si_code == CLD_EXITED && info.si_status == 0))
		aj_log_error("the broker exited (%s %d); the agent can no longer fetch",
			     info.si_code == CLD_EXITED ? "status" : "signal", info.si_status);
}

static void
on_audit(struct ev_loop *loop, ev_io *w, int revents)
{
	struct monitor *m = w->data;

	if (aj_audit_read(m->plan->audit) != 0)
		ev_io_stop(loop, w);
}

/* The broker's stderr, relayed to ours through the queue: its log lines
 * are whole (one write each, under PIPE_BUF), so a read holds whole lines.
 * Returns false at EOF. */
static bool
relay_broker_log(struct monitor *m)
{
	char buf[PIPE_BUF * 4];

	for (;;) {
		ssize_t n = read(m->plan->broker_log_fd, buf, sizeof(buf));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return errno == EAGAIN;
		if (n == 0)
			return false;
		if (m->plan->stderr_out != NULL)
			aj_output_line(m->plan->stderr_out, buf, (size_t)n);
	}
}

static void
on_broker_log(struct ev_loop *loop, ev_io *w, int revents)
{
	if (!relay_broker_log(w->data))
		ev_io_stop(loop, w);
}

static void
on_timeout(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct monitor *m = w->data;
	siginfo_t info = {0};

	/* The agent may have finished just as the timer fired: then its own
	 * status stands. */
	if (waitid(P_PIDFD, m->plan->jail_pidfd, &info, WEXITED | WNOHANG | WNOWAIT) == 0 &&
	    info.si_pid != 0)
		return;
	m->timed_out = true;
	/* Killing init takes down every process of the jail's pid namespace. */
	(void)pidfd_signal(m->plan->jail_pidfd, SIGKILL);
	if (!m->plan->quiet)
		aj_log_info("timeout after %gs: killed the jail", m->plan->timeout_sec);
}

static void
on_notification(struct ev_loop *loop, ev_io *w, int revents)
{
	struct monitor *m = w->data;
	int r = aj_violations_handle(m->plan->violations);

	if (r == -EPIPE) {
		/* Every task under the filter is gone; the jail's exit is
		 * reported by its pidfd. */
		ev_io_stop(loop, w);
		return;
	}
	if (r < 0) {
		/* Fail closed: with nobody answering, the next escape attempt
		 * would hang the agent and go unreported. */
		ev_io_stop(loop, w);
		m->listener_failed = true;
		(void)pidfd_signal(m->plan->jail_pidfd, SIGKILL);
		aj_log_error("the violation listener failed (%s): killed the jail", strerror(-r));
		return;
	}
	if (r > 0 && !m->killed_for_violation) {
		/* Already killed inside aj_violations_handle, before the
		 * event was written; signalling again costs nothing. */
		(void)pidfd_signal(m->plan->jail_pidfd, SIGKILL);
		m->killed_for_violation = true;
		if (!m->plan->quiet)
			aj_log_info("escape attempt: killed the jail (profile: on-violation kill)");
	}
}

static void
on_flush(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct monitor *m = w->data;

	aj_violations_flush(m->plan->violations);
}

static void
on_signal(struct ev_loop *loop, ev_signal *w, int revents)
{
	struct monitor *m = w->data;

	/* The agent's own terminal takes the caller's size; the kernel
	 * signals the agent's foreground group. */
	if (w->signum == SIGWINCH && m->plan->pty != NULL) {
		aj_pty_resize(m->plan->pty);
		return;
	}
	/* Init forwards it to the agent's process group. */
	(void)pidfd_signal(m->plan->jail_pidfd, w->signum);
}

/* The caller's terminal in raw mode while the agent has it (ON), or the
 * caller's own modes; the supervisor's lines to it end to match. */
static void
terminal_raw(struct monitor *m, bool on)
{
	struct aj_pty *pty = m->plan->pty;
	int r;

	if (pty == NULL)
		return;
	if (on) {
		r = aj_pty_enter(pty);
		if (r < 0 && !m->plan->quiet)
			aj_log_warn("warning: cannot put the terminal in raw mode (%s); keys reach "
				    "the agent line by line",
				    strerror(-r));
		aj_pty_resize(pty);
	} else {
		aj_pty_relay(pty);
		aj_pty_leave(pty);
	}
	if (m->plan->stderr_out != NULL)
		aj_output_set_crlf(m->plan->stderr_out, aj_pty_is_raw_on(pty, STDERR_FILENO));
}

/* Init stopped the jail (the agent stopped at the caller's terminal, or
 * SIGTSTP came): give the terminal back and stop, as a shell's job does;
 * `fg` (SIGCONT) continues us here, and we continue the jail. */
static void
suspend(struct monitor *m)
{
	terminal_raw(m, false);
	if (m->plan->stderr_out != NULL)
		(void)aj_output_flush(m->plan->stderr_out);
	(void)kill(getpid(), SIGSTOP);
	terminal_raw(m, true);
	(void)pidfd_signal(m->plan->jail_pidfd, SIGCONT);
}

static void
on_setup_msg(struct ev_loop *loop, ev_io *w, int revents)
{
	struct monitor *m = w->data;
	struct aj_setup_msg msg;
	int passed, r = aj_setup_recv(m->plan->status_fd, &msg, &passed);

	if (passed >= 0)
		close(passed);
	if (r <= 0) {
		ev_io_stop(loop, w);
		return;
	}
	if (msg.type == AJ_SETUP_STOPPED && m->plan->job_control) {
		suspend(m);
	} else if (msg.type == AJ_SETUP_AGENT_STATUS) {
		m->agent_status = msg.err;
		m->have_agent_status = true;
		ev_io_stop(loop, w);
	}
}

static void
on_pty(struct ev_loop *loop, ev_io *w, int revents)
{
	struct monitor *m = w->data;

	aj_pty_relay(m->plan->pty);
}

/* W watches FD for EVENTS (0: not at all) from now on. */
static void
watch(struct ev_loop *loop, ev_io *w, int fd, int events)
{
	if (ev_is_active(w) && (w->events & (EV_READ | EV_WRITE)) == events)
		return;
	ev_io_stop(loop, w);
	if (events == 0 || fd < 0)
		return;
	ev_io_set(w, fd, events);
	ev_io_start(loop, w);
}

/* Watch each side of the relay for what it waits for, no more: a side
 * that takes nothing cannot spin the loop. */
static void
prepare_pty(struct monitor *m)
{
	struct aj_pty_wants want;
	int in, out, master;

	if (m->plan->pty == NULL)
		return;
	aj_pty_wants(m->plan->pty, &want);
	aj_pty_fds(m->plan->pty, &in, &out, &master);
	watch(m->loop, &m->pty_in_w, in, want.read_caller ? EV_READ : 0);
	watch(m->loop, &m->pty_out_w, out, want.write_caller ? EV_WRITE : 0);
	watch(m->loop, &m->pty_master_w, master,
	      (want.read_master ? EV_READ : 0) | (want.write_master ? EV_WRITE : 0));
}

static void
stop_pty(struct monitor *m)
{
	if (m->plan->pty == NULL)
		return;
	ev_io_stop(m->loop, &m->pty_in_w);
	ev_io_stop(m->loop, &m->pty_out_w);
	ev_io_stop(m->loop, &m->pty_master_w);
}

static void
on_output_room(struct ev_loop *loop, ev_io *w, int revents)
{
	(void)aj_output_flush(w->data);
}

/* Watch for room only where lines wait: an idle output costs nothing, and
 * a terminal that takes nothing cannot spin the loop. */
static void
on_prepare_outputs(struct ev_loop *loop, ev_prepare *w, int revents)
{
	struct monitor *m = w->data;

	for (size_t i = 0; i < m->plan->n_outputs && i < MAX_OUTPUTS; i++) {
		bool waiting = aj_output_waiting(m->plan->outputs[i]);

		if (waiting && !ev_is_active(&m->output_w[i]))
			ev_io_start(loop, &m->output_w[i]);
		else if (!waiting && ev_is_active(&m->output_w[i]))
			ev_io_stop(loop, &m->output_w[i]);
	}
	prepare_pty(m);
}

static void
start_outputs(struct monitor *m)
{
	ev_prepare_init(&m->outputs_w, on_prepare_outputs);
	m->outputs_w.data = m;
	ev_prepare_start(m->loop, &m->outputs_w);
	for (size_t i = 0; i < m->plan->n_outputs && i < MAX_OUTPUTS; i++) {
		struct aj_output *o = m->plan->outputs[i];

		ev_io_init(&m->output_w[i], on_output_room, aj_output_fd(o), EV_WRITE);
		m->output_w[i].data = o;
	}
	if (m->plan->pty != NULL) {
		ev_io *pty_w[] = {&m->pty_in_w, &m->pty_out_w, &m->pty_master_w};

		for (size_t i = 0; i < AJ_ARRAY_SIZE(pty_w); i++) {
			ev_init(pty_w[i], on_pty);
			pty_w[i]->data = m;
		}
	}
}

static void
stop_outputs(struct monitor *m)
{
	ev_prepare_stop(m->loop, &m->outputs_w);
	for (size_t i = 0; i < m->plan->n_outputs && i < MAX_OUTPUTS; i++)
		ev_io_stop(m->loop, &m->output_w[i]);
}

static void *
watchdog_main(void *p)
{
	struct watchdog *w = p;
	struct pollfd pfd = {.fd = w->stop_fd, .events = POLLIN};

	for (;;) {
		struct timespec now;
		double left;

		clock_gettime(CLOCK_MONOTONIC, &now);
		left = (double)(w->deadline.tv_sec - now.tv_sec) +
		       (double)(w->deadline.tv_nsec - now.tv_nsec) / 1e9;
		if (left <= 0)
			break;
		if (poll(&pfd, 1, left > 3600 ? 3600 * 1000 : (int)(left * 1000) + 1) != 0)
			return NULL; /* stopped (or a broken eventfd: the loop's timer stands) */
	}
	atomic_store(&w->fired, true);
	(void)pidfd_signal(w->jail_pidfd, SIGKILL);
	return NULL;
}

static void
start_watchdog(struct watchdog *w, int jail_pidfd, double timeout_sec)
{
	double after = timeout_sec + WATCHDOG_GRACE_SEC;

	w->stop_fd = eventfd(0, EFD_CLOEXEC);
	if (w->stop_fd < 0)
		return;
	w->jail_pidfd = jail_pidfd;
	clock_gettime(CLOCK_MONOTONIC, &w->deadline);
	w->deadline.tv_sec += (time_t)after;
	w->deadline.tv_nsec += (long)((after - (double)(time_t)after) * 1e9);
	if (w->deadline.tv_nsec >= 1000000000L) {
		w->deadline.tv_sec++;
		w->deadline.tv_nsec -= 1000000000L;
	}
	w->running = pthread_create(&w->thread, NULL, watchdog_main, w) == 0;
	if (!w->running) {
		aj_log_warn("no watchdog thread for the time limit (%s); the loop's timer "
			    "alone enforces it",
			    strerror(errno));
		close(w->stop_fd);
		w->stop_fd = -1;
	}
}

static void
stop_watchdog(struct watchdog *w)
{
	uint64_t one = 1;

	if (!w->running)
		return;
	(void)!write(w->stop_fd, &one, sizeof(one));
	pthread_join(w->thread, NULL);
	close(w->stop_fd);
	w->running = false;
}

static void
stop_broker(struct monitor *m)
{
	struct pollfd pfd = {.fd = m->plan->broker_pidfd, .events = POLLIN};
	siginfo_t info;

	if (!m->broker_alive)
		return;
	/* The broker leaves on its own when the agent's end closes; give it
	 * a moment, then make sure (a SIGKILL to a broker that already left
	 * changes nothing: INFO is still how it ended). */
	(void)poll(&pfd, 1, BROKER_GRACE_MS);
	aj_process_kill_and_reap(-1, m->plan->broker_pidfd, &info);
	m->broker_alive = false;
	emit_broker_exit(m, &info, true);
}

/* N if the agent died by signal N, as init reported just before it
 * exited; 0 otherwise (and when init itself was killed). */
static int
agent_signal_of(const struct monitor *m)
{
	int st = m->agent_status;

	if (m->have_agent_status || aj_spawn_agent_status(m->plan->status_fd, &st))
		return WIFSIGNALED(st) ? WTERMSIG(st) : 0;
	/* No word from init: it was killed, and the agent with it. */
	return m->init_signal;
}

int
aj_monitor_run(const struct aj_monitor_plan *plan, int *status, int *agent_signal, char *err,
	       size_t errlen)
{
	struct monitor m = {.plan = plan, .status = -1, .watchdog = {.stop_fd = -1}};

	/* signalfd: the forwarded signals stay blocked (aj_run blocked them
	 * before the jail started) and any that arrived meanwhile are read. */
	m.loop = ev_loop_new(EVFLAG_AUTO | EVFLAG_NOENV | EVFLAG_SIGNALFD);
	if (m.loop == NULL)
		return aj_err(err, errlen, -ENOMEM, "cannot create the event loop");

	ev_io_init(&m.jail_w, on_jail_exit, plan->jail_pidfd, EV_READ);
	m.jail_w.data = &m;
	ev_io_start(m.loop, &m.jail_w);

	if (plan->broker_pidfd >= 0) {
		ev_io_init(&m.broker_w, on_broker_exit, plan->broker_pidfd, EV_READ);
		m.broker_w.data = &m;
		ev_io_start(m.loop, &m.broker_w);
		m.broker_alive = true;
	}
	if (plan->listener_fd >= 0 && plan->violations != NULL) {
		ev_io_init(&m.listener_w, on_notification, plan->listener_fd, EV_READ);
		m.listener_w.data = &m;
		ev_io_start(m.loop, &m.listener_w);
		/* Counts held back by the rate limit reach the stream within
		 * a second. */
		ev_timer_init(&m.flush_w, on_flush, 1., 1.);
		m.flush_w.data = &m;
		ev_timer_start(m.loop, &m.flush_w);
	}
	if (plan->broker_log_fd >= 0) {
		ev_io_init(&m.broker_log_w, on_broker_log, plan->broker_log_fd, EV_READ);
		m.broker_log_w.data = &m;
		ev_io_start(m.loop, &m.broker_log_w);
	}
	if (plan->audit != NULL) {
		ev_io_init(&m.audit_w, on_audit, aj_audit_fd(plan->audit), EV_READ);
		m.audit_w.data = &m;
		ev_io_start(m.loop, &m.audit_w);
	}
	if (plan->timeout_sec > 0) {
		ev_timer_init(&m.timeout_w, on_timeout, plan->timeout_sec, 0.);
		m.timeout_w.data = &m;
		ev_timer_start(m.loop, &m.timeout_w);
		start_watchdog(&m.watchdog, plan->jail_pidfd, plan->timeout_sec);
	}
	start_outputs(&m);
	if (plan->status_fd >= 0) {
		ev_io_init(&m.setup_w, on_setup_msg, plan->status_fd, EV_READ);
		m.setup_w.data = &m;
		ev_io_start(m.loop, &m.setup_w);
	}
	terminal_raw(&m, true);
	if (plan->forward_signals) {
		for (size_t i = 0; i < AJ_INIT_N_FORWARDED; i++) {
			ev_signal_init(&m.sig_w[i], on_signal, aj_init_forwarded_signals[i]);
			m.sig_w[i].data = &m;
			ev_signal_start(m.loop, &m.sig_w[i]);
		}
	}

	ev_run(m.loop, 0);
	stop_watchdog(&m.watchdog);
	stop_outputs(&m);
	stop_pty(&m);
	if (plan->status_fd >= 0)
		ev_io_stop(m.loop, &m.setup_w);
	/* The jail is gone: its terminal's last output, then the caller's
	 * modes back before the supervisor's last lines. */
	if (plan->pty != NULL)
		aj_pty_drain(plan->pty, PTY_DRAIN_MS);
	terminal_raw(&m, false);

	/* Notifications that raced the jail's exit are still answered and
	 * counted: the stream is complete. */
	if (plan->listener_fd >= 0 && plan->violations != NULL) {
		struct pollfd pfd = {.fd = plan->listener_fd, .events = POLLIN};
		while (poll(&pfd, 1, 0) == 1 && (pfd.revents & POLLIN) &&
		       aj_violations_handle(plan->violations) >= 0)
			;
	}

	if (plan->forward_signals)
		for (size_t i = 0; i < AJ_INIT_N_FORWARDED; i++)
			ev_signal_stop(m.loop, &m.sig_w[i]);
	ev_loop_destroy(m.loop);
	stop_broker(&m);
	/* The broker is gone: its last records and lines are in the pipes. */
	if (plan->audit != NULL)
		(void)aj_audit_read(plan->audit);
	if (plan->broker_log_fd >= 0)
		(void)relay_broker_log(&m);

	if (m.status < 0)
		return aj_err(err, errlen, -EIO, "the event loop ended before the jail did");
	*status = m.status;
	*agent_signal = agent_signal_of(&m);
	return 0;
}
