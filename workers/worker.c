/*
 * The worker: accept FastCGI connections from the pool's listening
 * socket, read requests, run the pool's service, write responses.
 *
 * One process multiplexes its connections with epoll so that kept
 * connections (FCGI_KEEP_CONN) never pin it, but handles one request at
 * a time: a request is read completely, then handled synchronously on
 * the worker's database connection, then its response is queued.
 *
 * Signals arrive through a signalfd: TERM/INT retire the worker (stop
 * accepting, finish what was read, exit 0), USR1 reopens the log.
 */
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>

#include <errno.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "workers.h"

#define MAX_EVENTS	64
#define READ_CHUNK	16384
#define ACCEPT_PAUSE_MS	200	/* back-pressure on EMFILE/ENFILE */
#define TRIM_IDLE_MS	500	/* idle this long after requests: give
				   freed memory back to the system */

struct conn {
	int		 fd;
	struct fcgi_parser p;
	struct buf	 in;		/* bytes read, not yet fed */
	struct buf	 out;		/* bytes to write */
	int		 mid_request;	/* some bytes of a request arrived */
	int		 closing;	/* close once out is drained */
	int		 want_out;	/* registered for EPOLLOUT */
	int		 dead;		/* closed; freed after the event batch */
	int64_t		 deadline;	/* ms, monotonic */
	struct conn	*next;
};

struct worker {
	const struct config	*cfg;
	const struct service	*svc;
	struct worker_ctx	 ctx;
	struct fcgi_limits	 lim;
	int			 epfd;
	int			 lfd;		/* -1 once retired */
	int			 sfd;		/* signalfd */
	int			 listening;	/* lfd is in the epoll set */
	int64_t			 resume_accept;	/* ms; after EMFILE */
	int			 retiring;
	uint64_t		 nreq;
	uint64_t		 trimmed_at;	/* nreq at the last trim */
	int64_t			 last_req;	/* ms, monotonic */
	struct conn		*conns;
	size_t			 nconns;
};

static int64_t
now_ms(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Close c now; its memory is freed by conn_reap() once no event of
 * the current batch can name it any more. */
static void
conn_close(struct worker *w, struct conn *c)
{
	if (c->dead)
		return;
	epoll_ctl(w->epfd, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	c->fd = -1;
	c->dead = 1;
	w->nconns--;
}

static void
conn_reap(struct worker *w)
{
	struct conn	**pp, *c;

	for (pp = &w->conns; (c = *pp) != NULL; ) {
		if (!c->dead) {
			pp = &c->next;
			continue;
		}
		*pp = c->next;
		fcgi_free(&c->p);
		buf_free(&c->in);
		buf_free(&c->out);
		free(c);
	}
}

static void
conn_arm(struct worker *w, struct conn *c)
{
	struct epoll_event	 ev;
	int			 want = c->out.len > 0;

	if (want == c->want_out)
		return;
	memset(&ev, 0, sizeof(ev));
	ev.events = want ? EPOLLOUT : EPOLLIN;
	ev.data.ptr = c;
	epoll_ctl(w->epfd, EPOLL_CTL_MOD, c->fd, &ev);
	c->want_out = want;
}

/* Write what we can; 0 ok (maybe partial), -1 the connection is dead. */
static int
conn_flush(struct conn *c)
{
	ssize_t	 n;

	while (c->out.len > 0) {
		n = send(c->fd, c->out.data, c->out.len, MSG_NOSIGNAL);
		if (n > 0) {
			buf_consume(&c->out, (size_t)n);
			continue;
		}
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return 0;
		return -1;
	}
	return 0;
}

static void
log_request(const struct worker *w, const struct request *req,
    const struct response *resp, int64_t started)
{
	log_debug("#%llu %s %s %s -> %d (%lld ms)",
	    (unsigned long long)w->nreq, req->remote_addr, req->method,
	    req->uri, resp->status, (long long)(now_ms() - started));
}

/* Run one complete request and queue its response on c->out. */
static void
conn_handle(struct worker *w, struct conn *c)
{
	struct request	 req;
	struct response	 resp;
	struct buf	 raw;
	int64_t		 started = now_ms();
	int		 st;

	memset(&req, 0, sizeof(req));
	response_init(&resp);
	buf_init(&raw);
	w->nreq++;
	w->last_req = started;
	if (c->p.params_too_large)
		response_error(&resp, 431, "too large",
		    "request headers too large");
	else if (c->p.body_too_large)
		response_error(&resp, 413, "too large",
		    "request body too large");
	else if ((st = request_init(&req, &c->p, w->nreq)) != 0)
		response_error(&resp, st, "error", "malformed request line");
	else {
		w->svc->handle(&w->ctx, &req, &resp);
		log_request(w, &req, &resp, started);
	}
	if (response_serialize(&resp, &raw) == -1 || raw.failed) {
		buf_reset(&raw);
		buf_puts(&raw, "Status: 503 Service Unavailable\r\n"
		    "Content-Type: application/json\r\n\r\n"
		    "{\"detail\":\"unavailable\",\"message\":\"out of memory\"}");
	}
	if (fcgi_put_stdout(&c->out, c->p.id, raw.data, raw.len) == -1 ||
	    fcgi_put_stdout(&c->out, c->p.id, NULL, 0) == -1 ||
	    fcgi_put_end(&c->out, c->p.id, 0, FCGI_REQUEST_COMPLETE) == -1)
		c->closing = 1;
	/* A retiring worker keeps no connection: the front end opens a
	 * new one, to a worker of the new generation. */
	if (!c->p.keep_conn || w->retiring)
		c->closing = 1;
	buf_free(&raw);
	request_free(&req);
	response_free(&resp);
}

/*
 * Feed buffered input to the parser and handle every request that
 * completes.  Returns -1 when the connection must be dropped.
 */
static int
conn_process(struct worker *w, struct conn *c)
{
	enum fcgi_status st;
	size_t		 used;

	while (c->in.len > 0 && !c->closing) {
		st = fcgi_feed(&c->p, c->in.data, c->in.len, &used);
		buf_consume(&c->in, used);
		if (c->p.out.len > 0) {	/* management answers */
			buf_add(&c->out, c->p.out.data, c->p.out.len);
			buf_reset(&c->p.out);
		}
		switch (st) {
		case FCGI_NEED_MORE:
			if (c->p.id != 0 && !c->mid_request) {
				c->mid_request = 1;
				c->deadline = now_ms() +
				    (int64_t)w->cfg->read_timeout * 1000;
			}
			return 0;
		case FCGI_READY:
			conn_handle(w, c);
			fcgi_next(&c->p);
			c->mid_request = 0;
			c->deadline = now_ms() +
			    (int64_t)w->cfg->idle_timeout * 1000;
			break;
		case FCGI_ABORTED:
			fcgi_put_end(&c->out, c->p.id, 0,
			    FCGI_REQUEST_COMPLETE);
			fcgi_next(&c->p);
			c->mid_request = 0;
			if (!c->p.keep_conn)
				c->closing = 1;
			break;
		case FCGI_PROTO_ERROR:
			log_warnx("FastCGI protocol error; closing connection");
			return -1;
		}
	}
	return 0;
}

/*
 * Process buffered input and write output until one of them blocks.
 * Pipelined requests wait for the previous response to drain.
 */
static void
conn_pump(struct worker *w, struct conn *c)
{
	for (;;) {
		if (conn_flush(c) == -1 || (c->closing && c->out.len == 0)) {
			conn_close(w, c);
			return;
		}
		if (c->out.len > 0 || c->in.len == 0 || c->closing)
			break;
		if (conn_process(w, c) == -1) {
			conn_close(w, c);
			return;
		}
		if (c->out.len == 0)
			break;		/* need more input */
	}
	conn_arm(w, c);
}

static void
conn_readable(struct worker *w, struct conn *c)
{
	ssize_t	 n;

	for (;;) {
		if (buf_reserve(&c->in, READ_CHUNK) == -1) {
			conn_close(w, c);
			return;
		}
		n = recv(c->fd, c->in.data + c->in.len, READ_CHUNK, 0);
		if (n > 0) {
			c->in.len += (size_t)n;
			if (conn_process(w, c) == -1) {
				conn_close(w, c);
				return;
			}
			/* Answer before reading further. */
			if (c->out.len > 0 || c->closing)
				break;
			continue;
		}
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			/* A kept connection waits without a read
			 * buffer: dozens of them may sit idle. */
			if (c->in.len == 0)
				buf_free(&c->in);
			break;
		}
		/* EOF or error: the peer is gone. */
		conn_close(w, c);
		return;
	}
	conn_pump(w, c);
}

static void
conn_writable(struct worker *w, struct conn *c)
{
	conn_pump(w, c);
}

static void
listen_toggle(struct worker *w, int on)
{
	struct epoll_event	 ev;

	if (w->lfd == -1 || w->listening == on)
		return;
	memset(&ev, 0, sizeof(ev));
	ev.events = EPOLLIN;
	ev.data.ptr = NULL;
	epoll_ctl(w->epfd, on ? EPOLL_CTL_ADD : EPOLL_CTL_DEL, w->lfd, &ev);
	w->listening = on;
}

static int
worker_accept(struct worker *w)
{
	struct epoll_event	 ev;
	struct conn		*c;
	int			 fd;

	fd = accept4(w->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd == -1) {
		if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
		    errno == ENOMEM) {
			/* Out of descriptors: stop accepting for a moment
			 * instead of spinning on a ready listen socket. */
			log_warn("accept: pausing %d ms", ACCEPT_PAUSE_MS);
			listen_toggle(w, 0);
			w->resume_accept = now_ms() + ACCEPT_PAUSE_MS;
		}
		return -1;
	}
	if ((c = calloc(1, sizeof(*c))) == NULL) {
		close(fd);
		return -1;
	}
	c->fd = fd;
	fcgi_init(&c->p, &w->lim);
	buf_init(&c->in);
	buf_init(&c->out);
	c->deadline = now_ms() + (int64_t)w->cfg->read_timeout * 1000;
	c->mid_request = 1;	/* a fresh connection owes us a request */
	memset(&ev, 0, sizeof(ev));
	ev.events = EPOLLIN;
	ev.data.ptr = c;
	if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, fd, &ev) == -1) {
		fcgi_free(&c->p);
		close(fd);
		free(c);
		return -1;
	}
	c->next = w->conns;
	w->conns = c;
	w->nconns++;
	return 0;
}

/* 1 if an idle kept connection has bytes waiting in the kernel: a
 * request the front end already sent, which closing would lose. */
static int
conn_pending(const struct conn *c)
{
	char	 b;

	return recv(c->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT) > 0;
}

/* Stop accepting; what was accepted is still served, and each
 * connection closed after its request. */
static void
worker_retire(struct worker *w)
{
	struct conn	*c, *next;

	if (w->retiring)
		return;
	w->retiring = 1;
	listen_toggle(w, 0);
	if (w->lfd != -1) {
		close(w->lfd);
		w->lfd = -1;
	}
	for (c = w->conns; c != NULL; c = next) {
		next = c->next;
		if (!c->dead && !c->mid_request && c->out.len == 0 &&
		    c->in.len == 0 && !conn_pending(c))
			conn_close(w, c);
	}
}

static void
worker_signal(struct worker *w)
{
	struct signalfd_siginfo	 si;

	while (read(w->sfd, &si, sizeof(si)) == sizeof(si)) {
		switch (si.ssi_signo) {
		case SIGTERM:
		case SIGINT:
		case SIGQUIT:
			worker_retire(w);
			break;
		case SIGUSR1:
			log_reopen();
			break;
		default:
			break;
		}
	}
}

/* Drop connections past their deadline; return ms to the next one. */
static int
worker_expire(struct worker *w)
{
	struct conn	*c, *next;
	int64_t		 now = now_ms(), wait = 1000;

	for (c = w->conns; c != NULL; c = next) {
		next = c->next;
		if (c->dead)
			continue;
		if (c->deadline <= now) {
			if (c->mid_request && c->in.len + c->p.body.len > 0)
				log_warnx("read timeout; closing connection");
			conn_close(w, c);
			continue;
		}
		if (c->deadline - now < wait)
			wait = c->deadline - now;
	}
	if (!w->listening && !w->retiring && w->resume_accept > 0) {
		if (w->resume_accept <= now) {
			w->resume_accept = 0;
			listen_toggle(w, 1);
		} else if (w->resume_accept - now < wait)
			wait = w->resume_accept - now;
	}
	return (int)(wait < 0 ? 0 : wait);
}

/*
 * Once the worker has been idle for TRIM_IDLE_MS after requests, hand
 * the memory they freed back to the system: glibc keeps it otherwise,
 * e.g. the argon2 block of a login (m KiB) or the buffers of a burst
 * of connections.  Returns the wait for epoll, at most timeout.
 */
static int
worker_trim(struct worker *w, int timeout)
{
	int64_t	 left;

	if (w->nreq == w->trimmed_at)
		return timeout;
	left = w->last_req + TRIM_IDLE_MS - now_ms();
	if (left > 0)
		return left < timeout ? (int)left : timeout;
#ifdef __GLIBC__
	malloc_trim(0);
#endif
	w->trimmed_at = w->nreq;
	return timeout;
}

static int
worker_setup(struct worker *w, int listen_fd)
{
	struct epoll_event	 ev;
	sigset_t		 set;

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGQUIT);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGUSR1);
	sigaddset(&set, SIGUSR2);
	sigprocmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
	/* The master may die without telling us. */
	prctl(PR_SET_PDEATHSIG, SIGTERM);
	if ((w->sfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC)) == -1)
		return -1;
	if ((w->epfd = epoll_create1(EPOLL_CLOEXEC)) == -1)
		return -1;
	memset(&ev, 0, sizeof(ev));
	ev.events = EPOLLIN;
	ev.data.ptr = &w->sfd;
	if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, w->sfd, &ev) == -1)
		return -1;
	w->lfd = listen_fd;
	listen_toggle(w, 1);
	return 0;
}

/*
 * Run a worker of service svc on listen_fd until retired.  notify_fd
 * is reserved for the scoreboard (ignored when -1).  Returns the exit
 * status for the process.
 */
int
worker_main(const struct config *cfg, const struct service *svc,
    int listen_fd, int notify_fd)
{
	struct epoll_event	 evs[MAX_EVENTS];
	struct worker		 w;
	char			 tok[256];
	int			 i, n, timeout;

	(void)notify_fd;
	memset(&w, 0, sizeof(w));
	w.cfg = cfg;
	w.svc = svc;
	w.lfd = -1;
	w.ctx.cfg = cfg;
	w.lim.max_params = cfg->max_params;
	w.lim.max_body = cfg->max_body;
	w.lim.max_nparams = 512;
	prctl(PR_SET_NAME, svc == &auth_service ? "shortd-auth" :
	    "shortd-short");
	log_setident(svc->name);
	if (worker_setup(&w, listen_fd) == -1) {
		log_warn("worker setup");
		return 1;
	}
	if ((w.ctx.db = db_new(cfg)) == NULL) {
		log_warnx("out of memory");
		return 1;
	}
	if (svc->init != NULL && svc->init(&w.ctx) == -1) {
		log_warnx("%s service failed to start", svc->name);
		db_free(w.ctx.db);
		return 1;
	}
	/* Connect now so the first request does not pay for it; failure
	 * is not fatal: requests answer 503 until the database is back. */
	(void)db_ensure(w.ctx.db);
	/* Likewise libcrypto, which sets itself up (about 2 MB) at its
	 * first HMAC: that memory belongs to an idle worker, and that
	 * time to no request. */
	(void)jwt_sign((const uint8_t *)"warm-up", 7, "warm-up", 0, 0, tok,
	    sizeof(tok));

	while (!w.retiring || w.nconns > 0) {
		timeout = worker_trim(&w, worker_expire(&w));
		n = epoll_wait(w.epfd, evs, MAX_EVENTS, timeout);
		if (n == -1) {
			if (errno == EINTR)
				continue;
			log_warn("epoll_wait");
			break;
		}
		for (i = 0; i < n; i++) {
			void *ptr = evs[i].data.ptr;

			if (ptr == &w.sfd)
				worker_signal(&w);
			else if (ptr == NULL) {
				if (!w.retiring)
					(void)worker_accept(&w);
			} else if (((struct conn *)ptr)->dead)
				continue;
			else if (evs[i].events & EPOLLOUT)
				conn_writable(&w, ptr);
			else
				conn_readable(&w, ptr);
		}
		conn_reap(&w);
	}
	for (struct conn *c = w.conns; c != NULL; c = c->next)
		conn_close(&w, c);
	conn_reap(&w);
	db_free(w.ctx.db);
	close(w.epfd);
	close(w.sfd);
	return 0;
}
