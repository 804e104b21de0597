/*
 * handoff.c — a worker's idle kept connections, passed to another
 * worker of its pool.
 *
 * nginx sends a request on any idle kept connection, whether or not the
 * worker holding it is busy, so a worker stuck in a slow request (a row
 * lock, a slow database) would hold every request sent on its other
 * kept connections.  The pool therefore has a handoff socket (a
 * SOCK_SEQPACKET pair made by the master, both ends in every worker):
 * the worker lists its idle kept connections where a signal handler
 * can see them, and the scoreboard says how many there are; when a
 * request has run for a tick of the master's (100 ms) the master sends
 * SIGURG, and the handler passes those connections (SCM_RIGHTS) to
 * whichever idle worker reads the socket next.  Nothing is lost: a
 * request nginx already sent waits in the connection's kernel buffer,
 * and a connection with bytes of ours buffered is never listed.  A
 * retiring worker (HUP, max_requests) hands its kept connections over
 * the same way instead of closing them under nginx; only at a full
 * stop are they closed.
 */
#include <sys/socket.h>
#include <sys/uio.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <string.h>
#include <unistd.h>

#include "worker.h"

#define KEPT_MAX	256	/* idle kept connections the SIGURG
				   handler can hand off */

/*
 * kept: the idle kept connections the URG handler may pass to another
 * worker (see the top of the file); process-wide, because a signal
 * handler can reach nothing else.  The main loop lists a connection
 * by clearing gone[i] and then storing its descriptor in fd[i]; it
 * takes one back (before touching it at all) by storing -1 in fd[i]
 * and then reading gone[i].  The handler sends fd[i] when it is listed
 * and not yet gone, and then sets gone[i] and handed.  A handler that
 * interrupts the main loop anywhere in between sees either a listed
 * connection or none, and the main loop learns of every handoff.
 */
static struct {
	int			 txfd;		/* handoff: send, or -1 */
	_Atomic uint64_t	*count;		/* the pool's handoffs, or NULL */
	volatile sig_atomic_t	 n;		/* fd[0, n) have been used */
	volatile sig_atomic_t	 handed;	/* some gone[] set since the
						   main loop last looked */
	volatile sig_atomic_t	 fd[KEPT_MAX];	/* -1: not listed */
	volatile sig_atomic_t	 gone[KEPT_MAX];
} kept = { .txfd = -1 };

/* Room for the one descriptor a handoff message carries. */
union handoff_cmsg {
	struct cmsghdr	 h;
	char		 buf[CMSG_SPACE(sizeof(int))];
};

/* A handoff message: one byte (*byte) and room for one descriptor (u).
 * Async-signal-safe. */
static void
handoff_msg(struct msghdr *msg, struct iovec *iov, char *byte,
    union handoff_cmsg *u)
{
	memset(u, 0, sizeof(*u));
	memset(msg, 0, sizeof(*msg));
	iov->iov_base = byte;
	iov->iov_len = 1;
	msg->msg_iov = iov;
	msg->msg_iovlen = 1;
	msg->msg_control = u->buf;
	msg->msg_controllen = sizeof(u->buf);
}

/* Pass descriptor fd over the handoff socket: 0, or -1 (errno) if it
 * cannot go now.  Async-signal-safe. */
static int
handoff_send(int txfd, int fd)
{
	union handoff_cmsg u;
	struct msghdr	 msg;
	struct iovec	 iov;
	struct cmsghdr	*cm;
	char		 byte = 'c';

	handoff_msg(&msg, &iov, &byte, &u);
	cm = CMSG_FIRSTHDR(&msg);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &fd, sizeof(int));
	return sendmsg(txfd, &msg, MSG_DONTWAIT | MSG_NOSIGNAL) == 1 ? 0 : -1;
}

/* SIGURG: the master sees this worker stuck in a request; pass every
 * listed idle kept connection to another worker.  Only
 * async-signal-safe calls. */
void
worker_handoff_handler(int sig)
{
	int	 saved = errno, i, fd;

	(void)sig;
	for (i = 0; i < kept.n; i++) {
		if ((fd = kept.fd[i]) < 0 || kept.gone[i])
			continue;
		if (handoff_send(kept.txfd, fd) == -1)
			break;
		kept.gone[i] = 1;
		kept.handed = 1;
		if (kept.count != NULL)
			atomic_fetch_add_explicit(kept.count, 1,
			    memory_order_relaxed);
	}
	errno = saved;
}

static void
kept_publish(struct worker *w)
{
	if (w->slot != NULL)
		atomic_store_explicit(&w->slot->kept, w->nkept,
		    memory_order_relaxed);
}

/* List idle connection c for the handler, if there is room. */
void
kept_list(struct worker *w, struct conn *c)
{
	int	 i;

	if (kept.txfd == -1 || c->kept != -1)
		return;
	for (i = 0; i < KEPT_MAX; i++)
		if (kept.fd[i] == -1)
			break;
	if (i == KEPT_MAX)
		return;
	kept.gone[i] = 0;
	if (i >= kept.n)
		kept.n = i + 1;
	kept.fd[i] = c->fd;
	c->kept = i;
	w->nkept++;
	kept_publish(w);
}

/* Take c back from the handler before touching it: 1 if the handler
 * already passed it to another worker (which now owns the connection:
 * only our descriptor is left to close), else 0. */
int
kept_claim(struct worker *w, struct conn *c)
{
	int	 i = c->kept, gone;

	if (i == -1)
		return 0;
	kept.fd[i] = -1;
	gone = kept.gone[i];
	c->kept = -1;
	w->nkept--;
	kept_publish(w);
	return gone;
}

/* A connection another worker handed over, if one is still there. */
void
worker_adopt(struct worker *w)
{
	union handoff_cmsg u;
	struct msghdr	 msg;
	struct iovec	 iov;
	struct cmsghdr	*cm;
	char		 byte;
	int		 fd;

	/*
	 * A descriptor passed to a process without a free slot is lost
	 * in transfer, and its connection with it.  So one slot is kept
	 * free (a spare /dev/null) and given up just for the receipt; a
	 * worker that cannot get its spare back leaves the connections
	 * to others and pauses as it does on accept's EMFILE.
	 */
	if (w->spare_fd == -1 &&
	    (w->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC)) == -1) {
		log_warn("handoff: pausing %d ms", ACCEPT_PAUSE_MS);
		listen_toggle(w, 0);
		w->resume_accept = mono_ms() + ACCEPT_PAUSE_MS;
		return;
	}
	close(w->spare_fd);
	w->spare_fd = -1;
	handoff_msg(&msg, &iov, &byte, &u);
	if (recvmsg(w->rxfd, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC) <= 0)
		return;
	cm = CMSG_FIRSTHDR(&msg);
	if (cm == NULL || cm->cmsg_level != SOL_SOCKET ||
	    cm->cmsg_type != SCM_RIGHTS ||
	    cm->cmsg_len != CMSG_LEN(sizeof(int))) {
		/* MSG_CTRUNC: out of descriptors, the kernel dropped it */
		log_warnx("handoff: a connection was lost in transfer");
		return;
	}
	memcpy(&fd, CMSG_DATA(cm), sizeof(int));
	w->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	conn_new(w, fd, 0);
}

/* 1 if an idle kept connection has bytes waiting in the kernel: a
 * request the front end already sent, which closing would lose. */
static int
conn_pending(const struct conn *c)
{
	char	 b;

	return recv(c->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT) > 0;
}

/* 1 if a connection this worker lets go of can go to another worker:
 * the pool has a handoff socket and the master is not stopping. */
int
worker_can_hand(const struct worker *w)
{
	return kept.txfd != -1 && (w->ctx.sb == NULL ||
	    !atomic_load_explicit(&w->ctx.sb->stopping,
	    memory_order_relaxed));
}

/*
 * Pass idle kept connection c to another worker of the pool (unless the
 * URG handler already did) and close our descriptor: 1, or 0 if it
 * cannot go now (c is then left open and no longer listed).
 */
static int
conn_pass(struct worker *w, struct conn *c)
{
	if (!kept_claim(w, c)) {
		if (!worker_can_hand(w) || handoff_send(kept.txfd, c->fd) == -1)
			return 0;
		if (w->pool != NULL)
			atomic_fetch_add_explicit(&w->pool->handoffs, 1,
			    memory_order_relaxed);
	}
	conn_close(w, c);
	return 1;
}

/*
 * Let go of idle kept connection c: hand it to another worker of the
 * pool, or where nobody can take it close it, unless a request is
 * already waiting in it (closing would lose that: it is served).
 */
void
conn_hand(struct worker *w, struct conn *c)
{
	if (!conn_pass(w, c) && !conn_pending(c))
		conn_close(w, c);
}

/* ctx->let_go: pass every idle kept connection on, while the pool's
 * handoff socket takes them. */
void
worker_let_go(struct worker_ctx *ctx)
{
	struct worker	*w = (struct worker *)(void *)((char *)ctx -
	    offsetof(struct worker, ctx));
	struct conn	*c;

	if (!worker_can_hand(w))
		return;
	for (c = w->conns; c != NULL; c = c->next)
		if (!c->dead && c->kept != -1 && !conn_pass(w, c)) {
			kept_list(w, c);	/* the socket is full */
			break;
		}
}

/* Close our descriptors of connections the URG handler passed on. */
void
worker_sweep(struct worker *w)
{
	struct conn	*c;

	kept.handed = 0;
	for (c = w->conns; c != NULL; c = c->next)
		if (!c->dead && c->kept != -1 && kept.gone[c->kept])
			conn_close(w, c);
}

void
handoff_setup(struct worker *w, const int handoff[2])
{
	struct sigaction	 sa;
	int			 i;

	for (i = 0; i < KEPT_MAX; i++)
		kept.fd[i] = -1;
	kept.txfd = handoff[0];
	w->rxfd = handoff[1];
	w->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	kept.count = w->pool != NULL ? &w->pool->handoffs : NULL;
	/* Restarted: the database calls it interrupts go on. */
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = worker_handoff_handler;
	sa.sa_flags = SA_RESTART;
	sigfillset(&sa.sa_mask);
	sigaction(SIGURG, &sa, NULL);
}

int
handoff_handed(void)
{
	return kept.handed;
}
