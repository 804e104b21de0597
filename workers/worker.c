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
 * USR2 is the exception: the master sends it when the request in hand
 * has run past request_timeout, and since the worker is then stuck in
 * that request, a real handler answers it (504) and exits.
 *
 * The worker keeps its scoreboard slot current (idle, reading, working
 * on METHOD PATH since T) and adds each answer to its pool's counters.
 * After max_requests it retires itself, and the master replaces it.
 *
 * Idle kept connections are passed to another worker of the pool when
 * this one is stuck in a slow request or retires: handoff.c.
 */
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>

#include <errno.h>
#include <poll.h>
#include <fcntl.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "worker.h"

/* Sanitizer builds (make check): see worker_main()'s end. */
#if defined(__SANITIZE_ADDRESS__)
#define WORKER_LSAN	1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define WORKER_LSAN	1
#endif
#endif
#ifdef WORKER_LSAN
#include <sanitizer/lsan_interface.h>
#endif

#define MAX_EVENTS	64
#define READ_CHUNK	16384
#define EXIT_TIMEOUT	3	/* exit status after answering 504 */
#define SLOW_MS		100	/* a request still arriving after this no
				   longer keeps the worker from accepting */
#define TRIM_IDLE_MS	500	/* idle this long after requests: give
				   freed memory back to the system */

static void	conn_idle(struct worker *, struct conn *);

/*
 * Process-wide state, because a signal handler can reach nothing else
 * (handoff.c keeps the other piece, its list of kept connections).
 *
 * timeout_reply: the answer the USR2 handler writes when the master
 * gives up on the request in hand: a complete FastCGI response (504,
 * JSON) for the connection and request id being handled.  Filled
 * before the handler runs and armed last; the handler only reads it.
 */
static struct {
	volatile sig_atomic_t	 armed;
	int			 fd;
	uint16_t		 id;		/* request id bytes were made for */
	size_t			 len;		/* 0: not made yet */
	uint8_t			 bytes[512];
} timeout_reply;


/* Close c now; its memory is freed by conn_reap() once no event of
 * the current batch can name it any more. */
void
conn_close(struct worker *w, struct conn *c)
{
	if (c->dead)
		return;
	(void)kept_claim(w, c);
	/* close() takes a socket out of the epoll set only with its last
	 * descriptor, and a connection handed over (or taken over, whose
	 * sender may not have closed its descriptor yet) has another. */
	if (c->watched)
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

/* Wait for what c needs next: output to drain, or input.  A
 * connection enters the epoll set only when it first has to wait. */
static void
conn_arm(struct worker *w, struct conn *c)
{
	struct epoll_event	 ev;
	int			 want = c->out.len > 0;

	if (c->watched && want == c->want_out)
		return;
	memset(&ev, 0, sizeof(ev));
	ev.events = want ? EPOLLOUT : EPOLLIN;
	ev.data.ptr = c;
	if (epoll_ctl(w->epfd, c->watched ? EPOLL_CTL_MOD : EPOLL_CTL_ADD,
	    c->fd, &ev) == -1) {
		log_warn("epoll_ctl");
		conn_close(w, c);
		return;
	}
	c->watched = 1;
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

/* SIGUSR2: write the prepared 504, if any, and exit at once.  Only
 * async-signal-safe calls. */
static void
worker_timeout_handler(int sig)
{
	size_t	 off = 0;
	ssize_t	 n;

	(void)sig;
	/* The idle kept connections go on living in another worker. */
	worker_handoff_handler(SIGURG);
	if (timeout_reply.armed)
		while (off < timeout_reply.len) {
			n = write(timeout_reply.fd, timeout_reply.bytes + off,
			    timeout_reply.len - off);
			if (n <= 0)
				break;
			off += (size_t)n;
		}
	_exit(EXIT_TIMEOUT);
}

/* Prepare the 504 for request id on c, unless c already has output
 * queued (the 504 would land in the middle of it).  The records are
 * made again only when the id changes (nginx always uses 1). */
static void
timeout_arm(struct conn *c, uint16_t id)
{
	static const char body[] = "Status: 504 Gateway Timeout\r\n"
	    "Content-Type: application/json\r\n\r\n"
	    "{\"detail\":\"timeout\",\"message\":\"the request took too "
	    "long and was stopped\"}";
	struct buf	 b;

	timeout_reply.armed = 0;
	if (c->out.len > 0)
		return;
	if (timeout_reply.len == 0 || timeout_reply.id != id) {
		timeout_reply.len = 0;
		buf_init(&b);
		if (fcgi_put_stdout(&b, id, body, sizeof(body) - 1) == 0 &&
		    fcgi_put_stdout(&b, id, NULL, 0) == 0 &&
		    fcgi_put_end(&b, id, 0, FCGI_REQUEST_COMPLETE) == 0 &&
		    !b.failed && b.len <= sizeof(timeout_reply.bytes)) {
			memcpy(timeout_reply.bytes, b.data, b.len);
			timeout_reply.len = b.len;
			timeout_reply.id = id;
		}
		buf_free(&b);
		if (timeout_reply.len == 0)
			return;
	}
	timeout_reply.fd = c->fd;
	atomic_signal_fence(memory_order_seq_cst);
	timeout_reply.armed = 1;
}

static void
worker_state(struct worker *w, enum sb_state st, const char *method,
    const char *path)
{
	if (w->slot == NULL || (st == w->state && st != SB_WORKING))
		return;
	sb_slot_set(w->slot, st, mono_ms(), method, path);
	w->state = st;
}

/* Say what the worker is busy with: the method and the path without
 * its query (which is the client's business), truncated. */
static void
worker_working(struct worker *w, const struct fcgi_parser *p)
{
	const char	*uri = fcgi_param(p, "REQUEST_URI");
	char		 path[SB_PATH_MAX];
	size_t		 n;

	if (w->slot == NULL)
		return;
	if (uri == NULL)
		uri = "";
	n = strcspn(uri, "?");
	if (n >= sizeof(path))
		n = sizeof(path) - 1;
	memcpy(path, uri, n);
	path[n] = '\0';
	worker_state(w, SB_WORKING, fcgi_param(p, "REQUEST_METHOD"), path);
}

/* Add one answer to the pool's counters, and any reconnects the
 * database connection made meanwhile. */
static void
worker_count(struct worker *w, int status, int64_t usec)
{
	uint64_t	 conns, rec;

	if (w->slot == NULL)
		return;
	sb_count(w->pool, status, usec);
	atomic_fetch_add_explicit(&w->slot->requests, 1,
	    memory_order_relaxed);
	if (w->ctx.db != NULL) {
		conns = db_connects(w->ctx.db);
		rec = conns > 1 ? conns - 1 : 0;
		if (rec > w->reconnects) {
			atomic_fetch_add_explicit(&w->pool->db_reconnects,
			    rec - w->reconnects, memory_order_relaxed);
			w->reconnects = rec;
		}
	}
}

static void
log_request(const struct worker *w, const struct request *req,
    const struct response *resp, int64_t started)
{
	/* No client address: shortd never logs (nor stores) one. */
	log_debug("#%llu %s %s -> %d (%lld ms)",
	    (unsigned long long)w->nreq, req->method,
	    req->uri, resp->status, (long long)(mono_ms() - started));
}

/* ctx->progress: the request in hand restarts its request_timeout
 * clock (the master measures from the slot's since). */
static void
worker_progress(struct worker_ctx *ctx)
{
	struct worker	*w = (struct worker *)(void *)((char *)ctx -
	    offsetof(struct worker, ctx));

	if (w->cur != NULL)
		worker_working(w, &w->cur->p);
}

/* The parser's body_limit: the shortener's POST /import may bring
 * import_max_bytes, every other request max_body. */
static size_t
worker_body_limit(const struct fcgi_parser *p, void *arg)
{
	const struct worker	*w = arg;
	const struct config	*cfg = w->cfg;
	const char		*uri = fcgi_param(p, "REQUEST_URI");

	if (w->svc == &shortener_service && uri != NULL &&
	    strncmp(uri, "/import", 7) == 0 &&
	    (uri[7] == '\0' || uri[7] == '?'))
		return cfg->import_max_bytes > cfg->max_body ?
		    cfg->import_max_bytes : cfg->max_body;
	return cfg->max_body;
}

/* A streamed response's way out (struct response_sink). */
struct conn_sink {
	struct response_sink	 base;
	struct worker		*w;
	struct conn		*c;
};

/*
 * Frame the bytes as STDOUT records of c's request and write them now,
 * waiting while the front end's socket is full; a front end that takes
 * nothing for read_timeout seconds is given up.  Once bytes went out,
 * a timeout's 504 could only corrupt them: it is disarmed.
 */
static int
conn_sink_send(struct response_sink *base, const void *data, size_t len)
{
	struct conn_sink	*k = (struct conn_sink *)(void *)base;
	struct conn		*c = k->c;
	struct pollfd		 pfd;
	int			 n;

	timeout_reply.armed = 0;
	if (fcgi_put_stdout(&c->out, c->p.id, data, len) == -1 ||
	    c->out.failed)
		return -1;
	for (;;) {
		if (conn_flush(c) == -1)
			return -1;
		if (c->out.len == 0)
			break;
		pfd.fd = c->fd;
		pfd.events = POLLOUT;
		pfd.revents = 0;
		n = poll(&pfd, 1, k->w->cfg->read_timeout * 1000);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
	}
	worker_progress(&k->w->ctx);
	return 0;
}

/* Run one complete request and queue its response on c->out (a
 * streamed one went out already: only its end is queued). */
static void
conn_handle(struct worker *w, struct conn *c)
{
	struct request	 req;
	struct response	 resp;
	struct conn_sink sink;
	struct buf	 raw;
	struct timespec	 t0, t1;
	int64_t		 started = mono_ms();
	int		 st;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	memset(&req, 0, sizeof(req));
	response_init(&resp);
	buf_init(&raw);
	sink.base.send = conn_sink_send;
	sink.w = w;
	sink.c = c;
	resp.sink = &sink.base;
	w->nreq++;
	w->cur = c;
	timeout_arm(c, c->p.id);
	worker_working(w, &c->p);
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
	w->cur = NULL;
	if (resp.streamed) {
		/* A broken stream cannot be ended well: closing the
		 * connection tells the front end the answer is cut. */
		if (resp.broken) {
			log_warnx("#%llu: streamed response broken off; "
			    "closing the connection",
			    (unsigned long long)w->nreq);
			buf_reset(&c->out);
			c->closing = 1;
		} else if (fcgi_put_stdout(&c->out, c->p.id, NULL, 0) == -1 ||
		    fcgi_put_end(&c->out, c->p.id, 0,
		    FCGI_REQUEST_COMPLETE) == -1)
			c->closing = 1;
	} else if (response_serialize(&resp, &raw) == -1 || raw.failed) {
		buf_reset(&raw);
		buf_puts(&raw, "Status: 503 Service Unavailable\r\n"
		    "Content-Type: application/json\r\n\r\n"
		    "{\"detail\":\"unavailable\",\"message\":\"out of memory\"}");
	}
	if (!resp.streamed &&
	    (fcgi_put_stdout(&c->out, c->p.id, raw.data, raw.len) == -1 ||
	    fcgi_put_stdout(&c->out, c->p.id, NULL, 0) == -1 ||
	    fcgi_put_end(&c->out, c->p.id, 0, FCGI_REQUEST_COMPLETE) == -1))
		c->closing = 1;
	/* A retiring worker keeps no connection: it hands the kept one
	 * to a worker of the pool (conn_idle()), or at a full stop closes
	 * it, and the front end opens a new one. */
	if (!c->p.keep_conn || (w->retiring && !worker_can_hand(w)))
		c->closing = 1;
	timeout_reply.armed = 0;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	worker_count(w, resp.status, (int64_t)(t1.tv_sec - t0.tv_sec) *
	    1000000 + (t1.tv_nsec - t0.tv_nsec) / 1000);
	worker_state(w, SB_IDLE, NULL, NULL);
	buf_free(&raw);
	request_free(&req);
	response_free(&resp);
}

/* A request is over (answered or aborted): wait for the next one. */
static void
conn_next(struct worker *w, struct conn *c)
{
	fcgi_next(&c->p);
	c->mid_request = 0;
	c->deadline = mono_ms() + (int64_t)w->cfg->idle_timeout * 1000;
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
				c->began = mono_ms();
				c->deadline = c->began +
				    (int64_t)w->cfg->read_timeout * 1000;
			}
			return 0;
		case FCGI_READY:
			conn_handle(w, c);
			conn_next(w, c);
			break;
		case FCGI_ABORTED:
			fcgi_put_end(&c->out, c->p.id, 0,
			    FCGI_REQUEST_COMPLETE);
			/* keep_conn belongs to the request fcgi_next()
			 * forgets: read it first. */
			if (!c->p.keep_conn)
				c->closing = 1;
			conn_next(w, c);
			break;
		case FCGI_PROTO_ERROR:
			log_warnx("FastCGI protocol error; closing connection");
			if (c->out.len == 0)
				return -1;
			/* Answers to what came whole before the junk
			 * still go out; then the connection closes. */
			buf_reset(&c->in);
			c->closing = 1;
			return 0;
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
	if (!c->dead && c->out.len == 0 && c->in.len == 0 && !c->closing &&
	    !c->mid_request && c->p.id == 0)
		conn_idle(w, c);
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

void
listen_toggle(struct worker *w, int on)
{
	struct epoll_event	 ev;

	if (w->lfd == -1 || w->listening == on)
		return;
	memset(&ev, 0, sizeof(ev));
	/* Not EPOLLEXCLUSIVE: the one worker it wakes may be unable to
	 * accept (out of descriptors: it pauses, and the connection would
	 * wait for the next wakeup while the others sleep).  With kept
	 * connections new ones are few, and the herd is cheap. */
	ev.events = EPOLLIN;
	ev.data.ptr = NULL;
	epoll_ctl(w->epfd, on ? EPOLL_CTL_ADD : EPOLL_CTL_DEL, w->lfd, &ev);
	/* Connections handed over by busy or retiring workers come to a
	 * worker that would accept a new one. */
	if (w->rxfd != -1) {
		ev.data.ptr = &w->rxfd;
		epoll_ctl(w->epfd, on ? EPOLL_CTL_ADD : EPOLL_CTL_DEL,
		    w->rxfd, &ev);
	}
	w->listening = on;
}

/*
 * Take connection fd on: fresh from accept4() (it owes us a request) or
 * handed over by another worker (a kept connection between requests,
 * a request perhaps already waiting in it).
 */
void
conn_new(struct worker *w, int fd, int fresh)
{
	struct conn	*c;

	if ((c = calloc(1, sizeof(*c))) == NULL) {
		close(fd);
		return;
	}
	c->fd = fd;
	c->kept = -1;
	fcgi_init(&c->p, &w->lim);
	buf_init(&c->in);
	buf_init(&c->out);
	c->began = mono_ms();
	c->mid_request = fresh;
	c->deadline = c->began + (int64_t)(fresh ? w->cfg->read_timeout :
	    w->cfg->idle_timeout) * 1000;
	c->next = w->conns;
	w->conns = c;
	w->nconns++;
	/*
	 * nginx writes the request as soon as it has connected, so it is
	 * usually here already: read it now.  A request that came whole
	 * is answered and, without keep-alive, the connection closed
	 * before it ever enters the epoll set; conn_arm() adds it only
	 * when it has to wait.
	 */
	conn_readable(w, c);
}

static void
worker_accept(struct worker *w)
{
	int	 fd;

	fd = accept4(w->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd == -1) {
		if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
		    errno == ENOMEM) {
			/* Out of descriptors: stop accepting for a moment
			 * instead of spinning on a ready listen socket. */
			log_warn("accept: pausing %d ms", ACCEPT_PAUSE_MS);
			listen_toggle(w, 0);
			w->resume_accept = mono_ms() + ACCEPT_PAUSE_MS;
		}
		return;
	}
	if (w->pool != NULL)
		atomic_fetch_add_explicit(&w->pool->conns, 1,
		    memory_order_relaxed);
	conn_new(w, fd, 1);
}

/* c waits for its next request: list it for the URG handler, or, in a
 * retiring worker, let go of it. */
static void
conn_idle(struct worker *w, struct conn *c)
{
	/* Dozens may wait between requests: they keep no buffers. */
	buf_free(&c->in);
	buf_free(&c->out);
	fcgi_shrink(&c->p);
	if (w->retiring)
		conn_hand(w, c);
	else
		kept_list(w, c);
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
		    c->in.len == 0 && c->p.id == 0)
			conn_hand(w, c);
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

/*
 * Accept only while no connection has a request on its way in.  A
 * worker that accepted a second connection and then blocked in the
 * first one's request would hold the second hostage while other
 * workers sit idle; left in the listen queue, it goes to the next free
 * worker (and the master sees the queue and grows the pool).  Kept
 * connections between requests do not count, and neither does one
 * whose request is still arriving after SLOW_MS: a front end sends a
 * request at once (nginx buffers it whole), so that is a slow or
 * stalled sender, and it must not keep the worker from serving others
 * until read_timeout drops it.
 */
static void
worker_listen(struct worker *w)
{
	struct conn	*c;
	int64_t		 now = mono_ms();
	int		 want;

	want = !w->retiring && w->resume_accept == 0;
	for (c = w->conns; want && c != NULL; c = c->next)
		if (!c->dead && c->mid_request && now - c->began < SLOW_MS)
			want = 0;
	listen_toggle(w, want);
}

/* Drop connections past their deadline; return ms to the next one. */
static int
worker_expire(struct worker *w)
{
	struct conn	*c, *next;
	int64_t		 now = mono_ms(), wait = 1000;

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
		/* wake when it turns slow: worker_listen() then accepts */
		if (c->mid_request && now - c->began < SLOW_MS &&
		    c->began + SLOW_MS - now < wait)
			wait = c->began + SLOW_MS - now;
	}
	if (w->resume_accept > 0) {
		if (w->resume_accept <= now) {
			w->resume_accept = 0;
			worker_listen(w);
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
	left = w->last_req + TRIM_IDLE_MS - mono_ms();
	if (left > 0)
		return left < timeout ? (int)left : timeout;
#ifdef __GLIBC__
	malloc_trim(0);
#endif
	w->trimmed_at = w->nreq;
	return timeout;
}

static int
worker_setup(struct worker *w, int listen_fd, const int *handoff)
{
	struct epoll_event	 ev;
	struct sigaction	 sa;
	sigset_t		 set, usr2;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = worker_timeout_handler;
	sigfillset(&sa.sa_mask);
	sigaction(SIGUSR2, &sa, NULL);
	w->rxfd = -1;
	w->spare_fd = -1;
	if (handoff != NULL)
		handoff_setup(w, handoff);
	sigemptyset(&usr2);
	sigaddset(&usr2, SIGUSR2);
	sigaddset(&usr2, SIGURG);
	sigprocmask(SIG_UNBLOCK, &usr2, NULL);
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGQUIT);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGUSR1);
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

/* Between requests: reading if some connection has begun one, else
 * idle.  After max_requests, stop taking new ones. */
static void
worker_between(struct worker *w, uint64_t max_requests)
{
	struct conn	*c;
	enum sb_state	 st = SB_IDLE;

	for (c = w->conns; c != NULL; c = c->next)
		if (!c->dead && c->p.id != 0) {
			st = SB_READING;
			break;
		}
	worker_state(w, st, NULL, NULL);
	worker_listen(w);
	if (max_requests > 0 && w->nreq >= max_requests && !w->retiring) {
		log_debug("served %llu requests (max_requests); exiting",
		    (unsigned long long)w->nreq);
		if (w->slot != NULL)
			atomic_store(&w->slot->exit_reason, SB_EXIT_RECYCLE);
		worker_retire(w);
	}
}

/*
 * Run a worker of service svc on listen_fd until retired.  sb and slot
 * are the scoreboard and this worker's slot in it (slot -1: none; the
 * status process reads the scoreboard but has no slot).  Returns the
 * exit status for the process.
 */
int
worker_main(const struct config *cfg, const struct service *svc,
    int listen_fd, const int *handoff, struct scoreboard *sb, int slot,
    const struct shc_map *cachemap)
{
	struct epoll_event	 evs[MAX_EVENTS];
	struct worker		 w;
	uint64_t		 max_requests = 0;
	char			 tok[256];
	int			 i, n, timeout, pool, t;

	memset(&w, 0, sizeof(w));
	w.cfg = cfg;
	w.svc = svc;
	w.lfd = -1;
	w.ctx.cfg = cfg;
	w.ctx.sb = sb;
	w.ctx.sbc = sb != NULL ? &sb->cache : NULL;
	w.ctx.cachemap = cachemap;
	w.ctx.let_go = worker_let_go;
	w.ctx.progress = worker_progress;
	w.lim.max_params = cfg->max_params;
	w.lim.max_body = cfg->max_body;
	w.lim.body_limit = worker_body_limit;
	w.lim.arg = &w;
	w.lim.max_nparams = 512;
	if (sb != NULL && slot >= 0) {
		w.slot = &sb->slot[slot];
		pool = atomic_load(&w.slot->pool);
		w.pool = &sb->pool[pool];
		w.ctx.flush_lease = &w.pool->flush_lease;
		w.ctx.orphan_visits = &w.pool->orphan_visits;
		max_requests = (uint64_t)cfg->pool[pool].max_requests;
		atomic_store(&w.slot->pid, (int32_t)getpid());
		w.state = SB_STARTING;
	}
	prctl(PR_SET_NAME, svc == &auth_service ? "shortd-auth" :
	    svc == &status_service ? "shortd-status" : "shortd-short");
	log_setident(svc->name);
	if (worker_setup(&w, listen_fd, handoff) == -1) {
		log_warn("worker setup");
		return 1;
	}
	if (!svc->no_db && (w.ctx.db = db_new(cfg)) == NULL) {
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
	if (w.ctx.db != NULL)
		(void)db_ensure(w.ctx.db);
	/* Likewise libcrypto, which sets itself up (about 2 MB) at its
	 * first HMAC: that memory belongs to an idle worker, and that
	 * time to no request. */
	(void)jwt_sign((const uint8_t *)"warm-up", 7, "warm-up", 0, 0, tok,
	    sizeof(tok));
	worker_state(&w, SB_IDLE, NULL, NULL);

	while (!w.retiring || w.nconns > 0) {
		if (handoff_handed()) {
			worker_sweep(&w);
			conn_reap(&w);
		}
		timeout = worker_trim(&w, worker_expire(&w));
		/* The service's periodic work (visit counts). */
		if (svc->tick != NULL && (t = svc->tick(&w.ctx)) >= 0 &&
		    t < timeout)
			timeout = t;
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
					worker_accept(&w);
			} else if (ptr == &w.rxfd) {
				if (!w.retiring)
					worker_adopt(&w);
			} else if (((struct conn *)ptr)->dead)
				continue;
			else if (kept_claim(&w, ptr))
				conn_close(&w, ptr);	/* handed over */
			else if (evs[i].events & EPOLLOUT)
				conn_writable(&w, ptr);
			else
				conn_readable(&w, ptr);
		}
		conn_reap(&w);
		worker_between(&w, max_requests);
	}
	for (struct conn *c = w.conns; c != NULL; c = c->next)
		conn_close(&w, c);
	conn_reap(&w);
	if (svc->fini != NULL)
		svc->fini(&w.ctx);
	db_free(w.ctx.db);
	close(w.epfd);
	close(w.sfd);
	if (w.spare_fd != -1)
		close(w.spare_fd);
#ifdef WORKER_LSAN
	/* The process ends in _exit(), which skips LeakSanitizer's check
	 * at exit: run it now, on what this worker leaves behind. */
	__lsan_do_leak_check();
#endif
	return 0;
}
