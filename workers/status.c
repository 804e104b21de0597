/*
 * status.c — the routes of the status process, which the master forks
 * next to the pools (not in them) so that it answers while every pool
 * worker is busy.  It reads the scoreboard and never the database.
 *
 *	/metrics	GET, HEAD	Prometheus text format 0.0.4
 *	/status		GET, HEAD	JSON: pools and workers
 *
 * nginx exposes both to loopback clients only (etc/nginx-local.conf.in).
 *
 * The listen queue of each pool comes from the kernel's sock_diag
 * netlink interface, by the socket's inode (the master records it in
 * the scoreboard): for a listening socket, unix or TCP, the kernel
 * reports the connections waiting to be accepted and the backlog.
 * Where that fails (no sock_diag, say) the queue is left out.
 */
#include <sys/socket.h>
#include <sys/time.h>

#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>
#include <linux/unix_diag.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "workers.h"

#define STATUS_ALLOW	"GET, HEAD"

static void	 status_handle(struct worker_ctx *, const struct request *,
		    struct response *);

const struct service status_service = {
	"status",
	NULL,
	status_handle,
	1			/* no database */
};

static const char *status_pools[SB_POOLS] = { "auth", "shortener" };
static const char *status_classes[5] = { "1xx", "2xx", "3xx", "4xx", "5xx" };
static const char *status_reasons[SB_NRESTARTS] = {
	"crash", "max_requests", "request_timeout"
};

/* What one look at the scoreboard found, per pool. */
struct status_pool {
	uint64_t	 states[SB_NSTATES];
	int		 have_queue;
	uint32_t	 queue;		/* waiting to be accepted */
	uint32_t	 backlog;	/* the most that may wait */
};

static int
status_netlink(void)
{
	struct timeval	 tv = { 1, 0 };
	int		 fd;

	fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
	if (fd == -1)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	return fd;
}

/*
 * Read netlink answers until NLMSG_DONE (or, for a single answer,
 * the first message), calling match() on each payload.  0 if match()
 * found the socket, -1 otherwise.
 */
static int
status_nl_read(int fd, int dump, int (*match)(const struct nlmsghdr *,
    uint64_t, struct status_pool *), uint64_t ino, struct status_pool *sp)
{
	char			 buf[16384] __attribute__((aligned(8)));
	const struct nlmsghdr	*h;
	ssize_t			 n;
	size_t			 len;
	int			 found = -1;

	for (;;) {
		n = recv(fd, buf, sizeof(buf), 0);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			return found;
		len = (size_t)n;
		for (h = (const struct nlmsghdr *)buf; NLMSG_OK(h, len);
		    h = NLMSG_NEXT(h, len)) {
			if (h->nlmsg_type == NLMSG_DONE ||
			    h->nlmsg_type == NLMSG_ERROR)
				return found;
			if (found == -1 && match(h, ino, sp) == 0)
				found = 0;
			if (!dump)
				return found;
		}
	}
}

static int
status_match_unix(const struct nlmsghdr *h, uint64_t ino,
    struct status_pool *sp)
{
	const struct unix_diag_msg	*m = NLMSG_DATA(h);
	const struct rtattr		*a;
	const struct unix_diag_rqlen	*q;
	int				 len;

	if (h->nlmsg_len < NLMSG_LENGTH(sizeof(*m)) || m->udiag_ino != ino)
		return -1;
	len = (int)(h->nlmsg_len - NLMSG_LENGTH(sizeof(*m)));
	for (a = (const struct rtattr *)(m + 1); RTA_OK(a, len);
	    a = RTA_NEXT(a, len))
		if (a->rta_type == UNIX_DIAG_RQLEN &&
		    RTA_PAYLOAD(a) >= (int)sizeof(*q)) {
			q = RTA_DATA(a);
			sp->queue = q->udiag_rqueue;
			sp->backlog = q->udiag_wqueue;
			return 0;
		}
	return -1;
}

static int
status_match_inet(const struct nlmsghdr *h, uint64_t ino,
    struct status_pool *sp)
{
	const struct inet_diag_msg	*m = NLMSG_DATA(h);

	if (h->nlmsg_len < NLMSG_LENGTH(sizeof(*m)) || m->idiag_inode != ino)
		return -1;
	sp->queue = m->idiag_rqueue;
	sp->backlog = m->idiag_wqueue;
	return 0;
}

/* The accept queue of the listening unix socket with inode ino. */
static int
status_queue_unix(uint64_t ino, struct status_pool *sp)
{
	struct {
		struct nlmsghdr		 nlh;
		struct unix_diag_req	 req;
	} msg;
	int	 fd, rc = -1;

	if ((fd = status_netlink()) == -1)
		return -1;
	memset(&msg, 0, sizeof(msg));
	msg.nlh.nlmsg_len = sizeof(msg);
	msg.nlh.nlmsg_type = SOCK_DIAG_BY_FAMILY;
	msg.nlh.nlmsg_flags = NLM_F_REQUEST;
	msg.req.sdiag_family = AF_UNIX;
	msg.req.udiag_states = ~0u;
	msg.req.udiag_ino = (uint32_t)ino;
	msg.req.udiag_show = UDIAG_SHOW_RQLEN;
	msg.req.udiag_cookie[0] = INET_DIAG_NOCOOKIE;
	msg.req.udiag_cookie[1] = INET_DIAG_NOCOOKIE;
	if (send(fd, &msg, sizeof(msg), 0) == (ssize_t)sizeof(msg))
		rc = status_nl_read(fd, 0, status_match_unix, ino, sp);
	close(fd);
	return rc;
}

/* The accept queue of the listening TCP socket with inode ino: dump
 * the (few) listening sockets of both families and pick it out. */
static int
status_queue_tcp(uint64_t ino, struct status_pool *sp)
{
	struct {
		struct nlmsghdr		 nlh;
		struct inet_diag_req_v2	 req;
	} msg;
	const int	 families[2] = { AF_INET, AF_INET6 };
	int		 fd, i, rc = -1;

	for (i = 0; i < 2 && rc == -1; i++) {
		if ((fd = status_netlink()) == -1)
			return -1;
		memset(&msg, 0, sizeof(msg));
		msg.nlh.nlmsg_len = sizeof(msg);
		msg.nlh.nlmsg_type = SOCK_DIAG_BY_FAMILY;
		msg.nlh.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
		msg.req.sdiag_family = (uint8_t)families[i];
		msg.req.sdiag_protocol = IPPROTO_TCP;
		msg.req.idiag_states = 1u << TCP_LISTEN;
		if (send(fd, &msg, sizeof(msg), 0) == (ssize_t)sizeof(msg))
			rc = status_nl_read(fd, 1, status_match_inet, ino, sp);
		close(fd);
	}
	return rc;
}

/* Count the workers by pool and state, and ask for the queues. */
static void
status_collect(const struct scoreboard *sb, struct status_pool sp[SB_POOLS])
{
	struct sb_view	 v;
	uint32_t	 i, hwm = atomic_load(&sb->hwm);
	uint64_t	 ino;
	int		 p, rc;

	memset(sp, 0, SB_POOLS * sizeof(*sp));
	for (i = 0; i < hwm && i < sb->nslots; i++)
		if (sb_slot_read(sb, i, &v) == 0 && v.pool >= 0 &&
		    v.pool < SB_POOLS && (unsigned)v.state < SB_NSTATES)
			sp[v.pool].states[v.state]++;
	for (p = 0; p < SB_POOLS; p++) {
		if ((ino = atomic_load(&sb->pool[p].listen_ino)) == 0)
			continue;
		rc = atomic_load(&sb->pool[p].listen_tcp) ?
		    status_queue_tcp(ino, &sp[p]) :
		    status_queue_unix(ino, &sp[p]);
		sp[p].have_queue = rc == 0;
	}
}

static uint64_t
ld(const _Atomic uint64_t *v)
{
	return atomic_load_explicit(v, memory_order_relaxed);
}

static void
metric_head(struct buf *b, const char *name, const char *type,
    const char *help)
{
	buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void
status_metrics(const struct worker_ctx *ctx, struct buf *b)
{
	const struct scoreboard	*sb = ctx->sb;
	const struct sb_pool	*sp;
	struct status_pool	 cur[SB_POOLS];
	uint64_t		 cum;
	int			 p, i;

	status_collect(sb, cur);
	metric_head(b, "shortd_build_info", "gauge", "Version of shortd.");
	buf_printf(b, "shortd_build_info{version=\"%s\"} 1\n", SHORTD_VERSION);
	metric_head(b, "shortd_start_time_seconds", "gauge",
	    "When the master started, in seconds since the epoch.");
	buf_printf(b, "shortd_start_time_seconds %lld\n",
	    (long long)sb->started_unix);
	metric_head(b, "shortd_generation", "gauge",
	    "Configuration generation: 0 at start, one more per reload.");
	buf_printf(b, "shortd_generation %u\n", atomic_load(&sb->gen));

	metric_head(b, "shortd_requests_total", "counter",
	    "Requests answered by the pool's workers, by status class.");
	for (p = 0; p < SB_POOLS; p++)
		for (i = 0; i < 5; i++)
			buf_printf(b, "shortd_requests_total{pool=\"%s\","
			    "class=\"%s\"} %llu\n", status_pools[p],
			    status_classes[i], (unsigned long long)
			    ld(&sb->pool[p].requests[i]));

	metric_head(b, "shortd_request_duration_seconds", "histogram",
	    "Time from a complete request to its complete response.");
	for (p = 0; p < SB_POOLS; p++) {
		sp = &sb->pool[p];
		for (i = 0, cum = 0; i < SB_BUCKETS; i++) {
			cum += ld(&sp->latency[i]);
			buf_printf(b, "shortd_request_duration_seconds_bucket"
			    "{pool=\"%s\",le=\"%g\"} %llu\n", status_pools[p],
			    (double)sb_bucket_us[i] / 1e6,
			    (unsigned long long)cum);
		}
		cum += ld(&sp->latency[SB_BUCKETS]);
		buf_printf(b, "shortd_request_duration_seconds_bucket"
		    "{pool=\"%s\",le=\"+Inf\"} %llu\n", status_pools[p],
		    (unsigned long long)cum);
		buf_printf(b, "shortd_request_duration_seconds_sum"
		    "{pool=\"%s\"} %.6f\n", status_pools[p],
		    (double)ld(&sp->latency_sum_us) / 1e6);
		buf_printf(b, "shortd_request_duration_seconds_count"
		    "{pool=\"%s\"} %llu\n", status_pools[p],
		    (unsigned long long)cum);
	}

	metric_head(b, "shortd_workers", "gauge",
	    "Worker processes by pool and state.");
	for (p = 0; p < SB_POOLS; p++)
		for (i = SB_STARTING; i < SB_NSTATES; i++)
			buf_printf(b, "shortd_workers{pool=\"%s\",state=\"%s\"} "
			    "%llu\n", status_pools[p], sb_state_name(i),
			    (unsigned long long)cur[p].states[i]);
	metric_head(b, "shortd_workers_min", "gauge",
	    "Configured lower bound of the pool.");
	for (p = 0; p < SB_POOLS; p++)
		if (ctx->cfg->pool[p].enabled)
			buf_printf(b, "shortd_workers_min{pool=\"%s\"} %d\n",
			    status_pools[p], ctx->cfg->pool[p].workers_min);
	metric_head(b, "shortd_workers_max", "gauge",
	    "Configured upper bound of the pool.");
	for (p = 0; p < SB_POOLS; p++)
		if (ctx->cfg->pool[p].enabled)
			buf_printf(b, "shortd_workers_max{pool=\"%s\"} %d\n",
			    status_pools[p], ctx->cfg->pool[p].workers_max);
	metric_head(b, "shortd_workers_max_reached_total", "counter",
	    "Times the pool needed more workers than workers_max allows.");
	for (p = 0; p < SB_POOLS; p++)
		buf_printf(b, "shortd_workers_max_reached_total{pool=\"%s\"} "
		    "%llu\n", status_pools[p], (unsigned long long)
		    ld(&sb->pool[p].max_reached));
	metric_head(b, "shortd_worker_restarts_total", "counter",
	    "Workers replaced, by reason.");
	for (p = 0; p < SB_POOLS; p++)
		for (i = 0; i < SB_NRESTARTS; i++)
			buf_printf(b, "shortd_worker_restarts_total{pool=\"%s\","
			    "reason=\"%s\"} %llu\n", status_pools[p],
			    status_reasons[i], (unsigned long long)
			    ld(&sb->pool[p].restarts[i]));
	metric_head(b, "shortd_db_reconnects_total", "counter",
	    "Database connections re-established by the pool's workers.");
	for (p = 0; p < SB_POOLS; p++)
		buf_printf(b, "shortd_db_reconnects_total{pool=\"%s\"} %llu\n",
		    status_pools[p], (unsigned long long)
		    ld(&sb->pool[p].db_reconnects));
	metric_head(b, "shortd_fastcgi_connections_total", "counter",
	    "FastCGI connections accepted by the pool's workers (fewer than "
	    "requests when the front end keeps them).");
	for (p = 0; p < SB_POOLS; p++)
		buf_printf(b, "shortd_fastcgi_connections_total{pool=\"%s\"} "
		    "%llu\n", status_pools[p], (unsigned long long)
		    ld(&sb->pool[p].conns));
	metric_head(b, "shortd_handoffs_total", "counter",
	    "Idle kept connections a busy or retiring worker passed to "
	    "another worker of the pool.");
	for (p = 0; p < SB_POOLS; p++)
		buf_printf(b, "shortd_handoffs_total{pool=\"%s\"} %llu\n",
		    status_pools[p], (unsigned long long)
		    ld(&sb->pool[p].handoffs));
	metric_head(b, "shortd_orphan_visits_total", "counter",
	    "Redirects (GET) of ids that do not exist.");
	buf_printf(b, "shortd_orphan_visits_total %llu\n",
	    (unsigned long long)ld(&sb->pool[POOL_SHORTENER].orphan_visits));
	metric_head(b, "shortd_redirect_cache_hits_total", "counter",
	    "Redirects answered from the shortener pool's cache.");
	buf_printf(b, "shortd_redirect_cache_hits_total %llu\n",
	    (unsigned long long)ld(&sb->cache.hits));
	metric_head(b, "shortd_redirect_cache_misses_total", "counter",
	    "Redirects looked up in the pool's cache and read from the "
	    "database.");
	buf_printf(b, "shortd_redirect_cache_misses_total %llu\n",
	    (unsigned long long)ld(&sb->cache.misses));
	metric_head(b, "shortd_redirect_cache_corrupt_total", "counter",
	    "Cache entries found with a wrong checksum: emptied, and the "
	    "link read from the database.");
	buf_printf(b, "shortd_redirect_cache_corrupt_total %llu\n",
	    (unsigned long long)ld(&sb->cache.corrupt));
	metric_head(b, "shortd_listen_queue", "gauge",
	    "Connections waiting to be accepted on the pool's socket.");
	for (p = 0; p < SB_POOLS; p++)
		if (cur[p].have_queue)
			buf_printf(b, "shortd_listen_queue{pool=\"%s\"} %u\n",
			    status_pools[p], cur[p].queue);
	metric_head(b, "shortd_listen_queue_max", "gauge",
	    "Backlog of the pool's socket (listen_backlog, capped by the "
	    "kernel).");
	for (p = 0; p < SB_POOLS; p++)
		if (cur[p].have_queue)
			buf_printf(b, "shortd_listen_queue_max{pool=\"%s\"} %u\n",
			    status_pools[p], cur[p].backlog);
}

static void
json_counts(struct buf *b, const char *const *names,
    const _Atomic uint64_t *v, int n)
{
	int	 i;

	buf_puts(b, "{");
	for (i = 0; i < n; i++)
		buf_printf(b, "%s\"%s\":%llu", i ? "," : "", names[i],
		    (unsigned long long)ld(&v[i]));
	buf_puts(b, "}");
}

static void
status_json_pool(const struct worker_ctx *ctx, struct buf *b, int p,
    const struct status_pool *cur)
{
	const struct pool_config *pc = &ctx->cfg->pool[p];
	const struct sb_pool	*sp = &ctx->sb->pool[p];
	int			 i;

	buf_printf(b, "{\"name\":\"%s\",\"enabled\":%s,\"listen\":",
	    status_pools[p], pc->enabled ? "true" : "false");
	json_put_str(b, pc->listen, strlen(pc->listen));
	buf_printf(b, ",\"workers_min\":%d,\"workers_max\":%d,"
	    "\"spare_min\":%d,\"spare_max\":%d,\"max_requests\":%d,"
	    "\"request_timeout\":%d,\"workers\":{", pc->workers_min,
	    pc->workers_max, pc->spare_min, pc->spare_max, pc->max_requests,
	    pc->request_timeout);
	for (i = SB_STARTING; i < SB_NSTATES; i++)
		buf_printf(b, "%s\"%s\":%llu", i > SB_STARTING ? "," : "",
		    sb_state_name(i), (unsigned long long)cur->states[i]);
	buf_puts(b, "},\"requests\":");
	json_counts(b, status_classes, sp->requests, 5);
	buf_puts(b, ",\"restarts\":");
	json_counts(b, status_reasons, sp->restarts, SB_NRESTARTS);
	buf_printf(b, ",\"max_reached\":%llu,\"db_reconnects\":%llu",
	    (unsigned long long)ld(&sp->max_reached),
	    (unsigned long long)ld(&sp->db_reconnects));
	if (cur->have_queue)
		buf_printf(b, ",\"listen_queue\":%u,\"listen_queue_max\":%u",
		    cur->queue, cur->backlog);
	else
		buf_puts(b, ",\"listen_queue\":null,\"listen_queue_max\":null");
	buf_puts(b, "}");
}

static void
status_json(const struct worker_ctx *ctx, struct buf *b)
{
	const struct scoreboard	*sb = ctx->sb;
	struct status_pool	 cur[SB_POOLS];
	struct sb_view		 v;
	uint32_t		 i, hwm = atomic_load(&sb->hwm);
	int64_t			 now = mono_ms();
	int			 p, n = 0;

	status_collect(sb, cur);
	buf_printf(b, "{\"version\":\"%s\",\"master_pid\":%d,"
	    "\"generation\":%u,\"uptime_seconds\":%.3f,\"pools\":[",
	    SHORTD_VERSION, (int)getppid(), atomic_load(&sb->gen),
	    (double)(now - sb->started_ms) / 1e3);
	for (p = 0; p < SB_POOLS; p++) {
		if (p > 0)
			buf_puts(b, ",");
		status_json_pool(ctx, b, p, &cur[p]);
	}
	buf_puts(b, "],\"workers\":[");
	for (i = 0; i < hwm && i < sb->nslots; i++) {
		if (sb_slot_read(sb, i, &v) == -1 || v.pool < 0 ||
		    v.pool >= SB_POOLS)
			continue;
		buf_printf(b, "%s{\"pid\":%d,\"pool\":\"%s\",\"generation\":%u,"
		    "\"state\":\"%s\",\"requests\":%llu,\"age_seconds\":%.3f,"
		    "\"state_seconds\":%.3f", n++ ? "," : "", v.pid,
		    status_pools[v.pool], v.gen, sb_state_name(v.state),
		    (unsigned long long)v.requests,
		    (double)(now - v.started_ms) / 1e3,
		    (double)(now - v.since_ms) / 1e3);
		if (v.state == SB_WORKING) {
			buf_puts(b, ",\"method\":");
			json_put_str(b, v.method, strlen(v.method));
			buf_puts(b, ",\"path\":");
			json_put_str(b, v.path, strlen(v.path));
		}
		buf_puts(b, "}");
	}
	buf_puts(b, "]}\n");
}

static void
status_handle(struct worker_ctx *ctx, const struct request *req,
    struct response *resp)
{
	int	 metrics = strcmp(req->path, "/metrics") == 0;

	if (!metrics && strcmp(req->path, "/status") != 0) {
		response_error(resp, 404, "not found",
		    "the status socket serves /metrics and /status");
		return;
	}
	if (strcmp(req->method, "GET") != 0 &&
	    strcmp(req->method, "HEAD") != 0) {
		response_bad_method(resp, STATUS_ALLOW);
		return;
	}
	if (ctx->sb == NULL) {
		response_error(resp, 503, "unavailable", "no scoreboard");
		return;
	}
	resp->status = 200;
	resp->head_only = strcmp(req->method, "HEAD") == 0;
	response_header(resp, "Cache-Control", "no-store");
	if (metrics) {
		resp->content_type = "text/plain; version=0.0.4; charset=utf-8";
		status_metrics(ctx, &resp->body);
	} else
		status_json(ctx, &resp->body);
}
