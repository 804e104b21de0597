/*
 * worker.h — what worker.c (the loop, connections, requests) shares
 * with handoff.c (passing idle kept connections to another worker),
 * and nothing else includes.  workers.h is the folder's interface.
 */
#ifndef SHORTD_WORKER_H
#define SHORTD_WORKER_H

#include <stdint.h>

#include "workers.h"

#define ACCEPT_PAUSE_MS	200	/* back-pressure on EMFILE/ENFILE */

struct conn {
	int		 fd;
	struct fcgi_parser p;
	struct buf	 in;		/* bytes read, not yet fed */
	struct buf	 out;		/* bytes to write */
	int		 mid_request;	/* some bytes of a request arrived */
	int		 closing;	/* close once out is drained */
	int		 watched;	/* in the epoll set */
	int		 kept;		/* index in kept.fd[], or -1 */
	int		 want_out;	/* registered for EPOLLOUT */
	int		 dead;		/* closed; freed after the event batch */
	int64_t		 deadline;	/* ms, monotonic */
	int64_t		 began;		/* ms: mid_request since */
	struct conn	*next;
};

struct worker {
	const struct config	*cfg;
	const struct service	*svc;
	struct worker_ctx	 ctx;
	struct fcgi_limits	 lim;
	int			 epfd;
	int			 lfd;		/* -1 once retired */
	int			 rxfd;		/* handoff: receive, or -1 */
	int			 spare_fd;	/* kept free for a connection
						   received (-1: none now) */
	int			 sfd;		/* signalfd */
	int			 listening;	/* lfd is in the epoll set */
	int64_t			 resume_accept;	/* ms; after EMFILE */
	int			 retiring;
	uint64_t		 nreq;
	uint64_t		 trimmed_at;	/* nreq at the last trim */
	int64_t			 last_req;	/* ms, monotonic */
	struct conn		*conns;
	struct conn		*cur;		/* whose request is handled */
	size_t			 nconns;
	struct sb_slot		*slot;		/* NULL: no scoreboard */
	struct sb_pool		*pool;
	enum sb_state		 state;		/* as last written to slot */
	uint64_t		 reconnects;	/* as last added to pool */
	uint32_t		 nkept;		/* conns listed in kept.fd[] */
};

/* worker.c */
/* A connection accepted (fresh: its request is on its way) or handed
 * over by another worker. */
void	conn_new(struct worker *, int fd, int fresh);
void	conn_close(struct worker *, struct conn *);
void	listen_toggle(struct worker *, int on);

/* handoff.c */
/* With the pool's handoff socket pair: list kept connections for the
 * SIGURG handler, which passes them on. */
void	handoff_setup(struct worker *, const int handoff[2]);
/* 1 if the handler passed some connection on since worker_sweep(). */
int	handoff_handed(void);
/* The SIGURG handler, async-signal-safe: pass every listed connection
 * on now (the USR2 handler calls it too, before exiting). */
void	worker_handoff_handler(int sig);
void	kept_list(struct worker *, struct conn *);
int	kept_claim(struct worker *, struct conn *);
void	worker_adopt(struct worker *);
int	worker_can_hand(const struct worker *);
void	conn_hand(struct worker *, struct conn *);
void	worker_let_go(struct worker_ctx *);
void	worker_sweep(struct worker *);

#endif /* SHORTD_WORKER_H */
