/*
 * db.c — the worker's persistent MySQL/MariaDB connection.
 *
 * One connection per worker, opened lazily and reopened after it is
 * lost.  Every statement is a server-side prepared statement, defined
 * in the file of the table it touches (db_users.c, db_links.c,
 * db_visits.c), prepared on first use and cached until the connection
 * goes; parameters are always bound, never spliced into SQL.  db.h
 * shows how a statement is written and run (db_run).  Result
 * sets are stored client-side before a row is looked at, so a lost
 * connection shows up at execute time, never half-way through rows.
 *
 * Nodes: db_host may list several servers of one multi-writer cluster
 * (Galera), "host1:port,host2:port,...".  A worker connects to the
 * first that answers and stays there until it loses it; a node that
 * failed is skipped for DB_NODE_HOLD_MS so that a dead one is not
 * knocked at on every request (when every node has failed recently,
 * the one that failed longest ago is still tried, one per request).
 * On a cluster, reads ask for causality (wsrep_sync_wait), so a row
 * committed through any node is seen by the next read on any other.
 *
 * Retry policy: a request must neither hang nor half-apply.
 *  - A read that fails because the connection (or its node) was lost
 *    is retried on a new connection, moving on to the next node, up
 *    to once per node.
 *  - A write is not retried after a lost connection: it may have been
 *    applied.  To make that rare, before each statement the socket is
 *    checked for a close (or a shutdown notice) the server already
 *    sent, and a connection idle for more than DB_PING_IDLE_MS is
 *    pinged before a write; either way it is reopened first.  A node
 *    that says it is not ready (Galera's 1047) ran nothing, so the
 *    write moves on to the next node.
 *  - Failing to prepare is retried once on a new connection for reads
 *    and writes alike: nothing was executed.
 *  - A read on a connection used less than DB_RECENT_MS ago skips the
 *    socket check: a close it would catch only costs the read a retry.
 *  - A deadlock, a Galera certification failure (both 1213) or a lock
 *    wait timeout rolled the autocommit statement back, so it is
 *    retried up to DB_LOCK_RETRIES times, after a pause of a few
 *    milliseconds, growing and jittered, so that two writers racing
 *    for one row through two nodes do not collide again in step.
 * Anything else becomes DB_UNAVAILABLE (503) and a log line.
 */
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "db.h"

#define DB_PING_IDLE_MS	5000
#define DB_RECENT_MS	1000		/* reads skip the link check */
#define DB_LOCK_RETRIES	5
#define DB_LOCK_PAUSE_US	1000		/* times the attempt, plus jitter */
#define DB_IO_TIMEOUT	10		/* s, per read or write */
#define DB_NODE_HOLD_MS	5000		/* skip a node that failed this long */

static const struct db_sql q_schema_version = { "schema version", 0,
    "SELECT COALESCE(MAX(version), 0) FROM shortd_schema" };

/* 1 if s can be a key of the ascii columns (ids, usernames). */
int
db_key_ok(const char *s, size_t max)
{
	size_t	 i;

	for (i = 0; s[i] != '\0'; i++)
		if (i >= max || (unsigned char)s[i] >= 0x80)
			return 0;
	return i > 0;
}

void
db_seterr(struct db *db, unsigned int err, const char *msg)
{
	db->last_errno = err;
	snprintf(db->errmsg, sizeof(db->errmsg), "%s", msg);
}

/* The cache slot of q: its index, or -1 if q was never prepared. */
static int
db_slot(const struct db *db, const struct db_sql *q)
{
	int	 i;

	for (i = 0; i < db->nstmts; i++)
		if (db->sql[i] == q)
			return i;
	return -1;
}

/* Close q's handle (if prepared); the next use prepares it again. */
void
db_close_stmt(struct db *db, const struct db_sql *q)
{
	int	 i;

	if ((i = db_slot(db, q)) != -1 && db->stmt[i] != NULL) {
		mysql_stmt_close(db->stmt[i]);
		db->stmt[i] = NULL;
	}
}

/* Drop the connection and every statement prepared on it. */
void
db_disconnect(struct db *db)
{
	int	 i;

	for (i = 0; i < db->nstmts; i++)
		db_close_stmt(db, db->sql[i]);
	if (db->mysql != NULL)
		mysql_close(db->mysql);
	db->mysql = NULL;
	db->connected = 0;
}

/*
 * Parse one node of a db_host list, len bytes at s: "host",
 * "host:port", "[v6addr]" or "[v6addr]:port"; a bare address with
 * several colons is an IPv6 address without a port.  0 or -1 with a
 * reason in err.
 */
static int
db_node_parse(const char *s, size_t len, int defport, struct db_node *n,
    char *err, size_t errlen)
{
	const char	*host = s, *port = NULL, *sep, *end = s + len;
	size_t		 hostlen;
	long		 v = 0;

	while (host < end && (*host == ' ' || *host == '\t'))
		host++;
	while (end > host && (end[-1] == ' ' || end[-1] == '\t'))
		end--;
	hostlen = (size_t)(end - host);
	if (hostlen > 0 && host[0] == '[') {
		if ((sep = memchr(host, ']', hostlen)) == NULL)
			goto bad;
		if (sep + 1 < end) {
			if (sep[1] != ':')
				goto bad;
			port = sep + 2;
		}
		hostlen = (size_t)(sep - host - 1);
		host++;
	} else if ((sep = memchr(host, ':', hostlen)) != NULL &&
	    memchr(sep + 1, ':', (size_t)(end - sep - 1)) == NULL) {
		port = sep + 1;
		hostlen = (size_t)(sep - host);
	}
	if (hostlen == 0 || hostlen >= sizeof(n->host))
		goto bad;
	if (port != NULL) {
		if (port == end)
			goto bad;
		for (; port < end; port++) {
			if (*port < '0' || *port > '9' || v > 65535)
				goto bad;
			v = v * 10 + (*port - '0');
		}
		if (v < 1 || v > 65535)
			goto bad;
	} else
		v = defport;
	memset(n, 0, sizeof(*n));
	memcpy(n->host, host, hostlen);
	n->port = (unsigned int)v;
	return 0;
bad:
	snprintf(err, errlen, "db_host: \"%.*s\" is not host, host:port or "
	    "[address]:port", (int)len, s);
	return -1;
}

/*
 * Split db_host into at most max nodes.  An empty value is one node,
 * the local unix socket.  -> the number of nodes, or -1 with a reason
 * in err.
 */
static int
db_nodes_parse(const char *spec, int defport, struct db_node *nodes,
    int max, char *err, size_t errlen)
{
	const char	*p = spec, *comma;
	size_t		 len;
	int		 n = 0;

	if (spec[strspn(spec, " \t")] == '\0') {
		memset(&nodes[0], 0, sizeof(nodes[0]));
		strcpy(nodes[0].host, "localhost");
		nodes[0].port = (unsigned int)defport;
		return 1;
	}
	for (;;) {
		comma = strchr(p, ',');
		len = comma != NULL ? (size_t)(comma - p) : strlen(p);
		if (n == max) {
			snprintf(err, errlen, "db_host: more than %d nodes",
			    max);
			return -1;
		}
		if (db_node_parse(p, len, defport, &nodes[n], err,
		    errlen) == -1)
			return -1;
		n++;
		if (comma == NULL)
			return n;
		p = comma + 1;
	}
}

int
db_hosts_check(const char *spec, char *err, size_t errlen)
{
	struct db_node	 nodes[DB_NODES_MAX];

	return db_nodes_parse(spec, 3306, nodes, DB_NODES_MAX, err,
	    errlen) == -1 ? -1 : 0;
}

struct db *
db_new(const struct config *cfg)
{
	struct db	*db;
	int		 n;

	if ((db = calloc(1, sizeof(*db))) == NULL)
		return NULL;
	db->cfg = cfg;
	n = db_nodes_parse(cfg->db_host, cfg->db_port, db->node,
	    DB_NODES_MAX, db->errmsg, sizeof(db->errmsg));
	/* Validated with the configuration; kept for db_ensure to say. */
	db->nnodes = n > 0 ? n : 0;
	return db;
}

void
db_free(struct db *db)
{
	if (db == NULL)
		return;
	db_disconnect(db);
	free(db);
}

/* Options for a new handle: bounded waits, utf8mb4, no LOAD DATA
 * LOCAL (a hostile server could read our files), no silent reconnect
 * (it would lose the prepared statements behind our back). */
static void
db_options(MYSQL *m, const struct config *cfg)
{
	unsigned int	 ctimeout, iotimeout = DB_IO_TIMEOUT, off = 0;
#ifdef MARIADB_PACKAGE_VERSION_ID
	my_bool		 reconnect = 0;
#endif

	ctimeout = cfg->db_connect_timeout > 0 ?
	    (unsigned int)cfg->db_connect_timeout : 1;
	mysql_options(m, MYSQL_OPT_CONNECT_TIMEOUT, &ctimeout);
	mysql_options(m, MYSQL_OPT_READ_TIMEOUT, &iotimeout);
	mysql_options(m, MYSQL_OPT_WRITE_TIMEOUT, &iotimeout);
	mysql_options(m, MYSQL_SET_CHARSET_NAME, "utf8mb4");
	mysql_options(m, MYSQL_OPT_LOCAL_INFILE, &off);
	/* libmysqlclient 8 never reconnects unless asked, and deprecates
	 * the option; Connector/C is told explicitly. */
#ifdef MARIADB_PACKAGE_VERSION_ID
	mysql_options(m, MYSQL_OPT_RECONNECT, &reconnect);
#endif
}

/* Remember that the node we are on (or were trying) failed. */
void
db_node_failed(struct db *db, int i)
{
	db->node[i].failed = 1;
	db->node[i].failed_ms = mono_ms();
}

/*
 * Ask a cluster node for causal reads: a SELECT then waits until the
 * node has applied every write the cluster committed before it, so a
 * link created through one node is found through any other at once.
 * A server without Galera does not know the variable (MySQL) or
 * ignores it (MariaDB with wsrep off).
 */
static int
db_session(MYSQL *m)
{
	static const char	 q[] = "SET SESSION wsrep_sync_wait = 1";

	if (mysql_real_query(m, q, sizeof(q) - 1) == 0 ||
	    mysql_errno(m) == DB_ER_UNKNOWN_SYSTEM_VARIABLE)
		return 0;
	return -1;
}

/*
 * One attempt at node i, bounded by the connect timeout.
 * CLIENT_FOUND_ROWS makes an UPDATE report the rows it matched, so
 * writing an unchanged value is not "not found".
 */
static enum db_status
db_connect_node(struct db *db, int i)
{
	const struct config	*cfg = db->cfg;
	struct db_node		*n = &db->node[i];
	const char		*host = n->host, *sock = NULL;
	char			 where[600];
	MYSQL			*m;

	if ((m = mysql_init(NULL)) == NULL) {
		db_seterr(db, 0, "out of memory");
		log_warnx("db: mysql_init: out of memory");
		return DB_UNAVAILABLE;
	}
	db_options(m, cfg);
	if (strcmp(host, "localhost") == 0) {
		if (cfg->db_socket[0] != '\0')
			sock = cfg->db_socket;
		snprintf(where, sizeof(where), "%s",
		    sock ? sock : "the default socket");
	} else if (strchr(host, ':') != NULL)
		snprintf(where, sizeof(where), "[%s]:%u", host, n->port);
	else
		snprintf(where, sizeof(where), "%s:%u", host, n->port);
	if (mysql_real_connect(m, host, cfg->db_user, cfg->db_password,
	    cfg->db_name[0] != '\0' ? cfg->db_name : NULL, n->port, sock,
	    CLIENT_FOUND_ROWS) == NULL || mysql_autocommit(m, 1) != 0 ||
	    db_session(m) == -1) {
		db_seterr(db, mysql_errno(m), mysql_error(m));
		log_warnx("db: connect to %s: %s", where, mysql_error(m));
		mysql_close(m);
		db_node_failed(db, i);
		return DB_UNAVAILABLE;
	}
	db->mysql = m;
	db->connected = 1;
	db->connects++;
	db->cur = i;
	n->failed = 0;
	db->last_used_ms = mono_ms();
	if (db->nnodes > 1)
		log_info("db: connected to %s (node %d of %d), server %s",
		    where, i + 1, db->nnodes, mysql_get_server_info(m));
	else
		log_info("db: connected to %s, server %s", where,
		    mysql_get_server_info(m));
	return DB_OK;
}

uint64_t
db_connects(const struct db *db)
{
	return db->connects;
}

/*
 * Connect if not connected: to the first node that answers, skipping
 * those that failed less than DB_NODE_HOLD_MS ago; if every node did,
 * the one that failed longest ago.  No sleep, one attempt per node.
 */
enum db_status
db_ensure(struct db *db)
{
	int64_t		 now;
	int		 i, pick, tried = 0;

	if (db->connected)
		return DB_OK;
	if (db->nnodes == 0) {
		log_warnx("db: %s", db->errmsg);
		return DB_UNAVAILABLE;
	}
	now = mono_ms();
	for (i = 0; i < db->nnodes; i++) {
		if (db->node[i].failed &&
		    now - db->node[i].failed_ms < DB_NODE_HOLD_MS)
			continue;
		tried++;
		if (db_connect_node(db, i) == DB_OK)
			return DB_OK;
	}
	if (tried > 0)
		return DB_UNAVAILABLE;
	for (pick = 0, i = 1; i < db->nnodes; i++)
		if (db->node[i].failed_ms < db->node[pick].failed_ms)
			pick = i;
	return db_connect_node(db, pick);
}

/*
 * 1 if the server has already closed the connection (or, in plain
 * text, said something unasked: a shutdown or kill notice comes just
 * before the close): nothing we send would be answered, so reconnect
 * before sending rather than find out after, when a write could no
 * longer be retried.  Over TLS, bytes waiting may be a session ticket,
 * so only the close itself counts.  One poll(2), no wait.
 */
static int
db_link_closed(struct db *db)
{
#ifdef MARIADB_PACKAGE_VERSION_ID
	struct pollfd	 pfd;
	short		 gone = POLLRDHUP | POLLHUP | POLLERR;

	pfd.fd = (int)mysql_get_socket(db->mysql);
	pfd.events = POLLIN | POLLRDHUP;
	pfd.revents = 0;
	if (pfd.fd < 0 || poll(&pfd, 1, 0) <= 0)
		return 0;
	if (mysql_get_ssl_cipher(db->mysql) == NULL)
		gone |= POLLIN;
	return (pfd.revents & gone) != 0;
#else
	(void)db;
	return 0;
#endif
}

/*
 * Before a statement: a connection the server closed, or (before a
 * write) one idle for a while, may be dead without our knowing; find
 * out now, while reconnecting is still safe.
 */
void
db_check_link(struct db *db, int write)
{
	if (!db->connected)
		return;
	if (!write && mono_ms() - db->last_used_ms < DB_RECENT_MS)
		return;
	if (db_link_closed(db)) {
		log_info("db: node %d closed the connection, reconnecting",
		    db->cur + 1);
		db_node_failed(db, db->cur);
		db_disconnect(db);
		return;
	}
	if (!write || mono_ms() - db->last_used_ms < DB_PING_IDLE_MS)
		return;
	if (mysql_ping(db->mysql) == 0) {
		db->last_used_ms = mono_ms();
		return;
	}
	log_info("db: idle connection lost (%s), reconnecting",
	    mysql_error(db->mysql));
	db_node_failed(db, db->cur);
	db_disconnect(db);
}

enum db_errclass
db_classify(unsigned int err)
{
	switch (err) {
	case DB_ER_DUP_ENTRY:
	case DB_ER_DUP_ENTRY_WITH_KEY:
		return DBE_DUPLICATE;
	case DB_ER_NO_REFERENCED_ROW:
	case DB_ER_NO_REFERENCED_ROW_2:
		return DBE_NOREF;
	case DB_ER_LOCK_DEADLOCK:
	case DB_ER_LOCK_WAIT_TIMEOUT:
		return DBE_LOCK;
	case DB_ER_UNKNOWN_STMT:
	case DB_ER_NEED_REPREPARE:
		return DBE_STALE;
	case DB_ER_UNKNOWN_COM:
	case DB_ER_SERVER_SHUTDOWN:
	case DB_ER_CONNECTION_KILLED:
	case DB_ER_CLIENT_IDLE:
		return DBE_LOST;
	}
	if (err >= DB_CR_MIN && err <= DB_CR_MAX)
		return DBE_LOST;
	return DBE_OTHER;
}

/*
 * One attempt at statement q: prepare if needed, bind, execute and
 * store the rows.  0 on success with *out set, else the error number
 * (message in db->errmsg); *executed says whether the server may have
 * run it.
 */
unsigned int
db_try(struct db *db, const struct db_sql *q, MYSQL_BIND *param,
    MYSQL_STMT **out, int *executed)
{
	MYSQL_STMT	*s;
	int		 i;

	*executed = 0;
	if ((i = db_slot(db, q)) == -1) {
		if (db->nstmts == DB_STMTS_MAX) {
			db_seterr(db, DB_ER_TOO_MANY_STMTS,
			    "more statements than DB_STMTS_MAX");
			return DB_ER_TOO_MANY_STMTS;
		}
		i = db->nstmts++;
		db->sql[i] = q;
	}
	if ((s = db->stmt[i]) == NULL) {
		if ((s = mysql_stmt_init(db->mysql)) == NULL) {
			db_seterr(db, mysql_errno(db->mysql),
			    mysql_error(db->mysql));
			return db->last_errno ? db->last_errno : DB_CR_MIN;
		}
		if (mysql_stmt_prepare(s, q->sql, strlen(q->sql)) != 0) {
			db_seterr(db, mysql_stmt_errno(s),
			    mysql_stmt_error(s));
			mysql_stmt_close(s);
			return db->last_errno ? db->last_errno : DB_CR_MIN;
		}
		db->stmt[i] = s;
	}
	if (param != NULL && mysql_stmt_bind_param(s, param))
		goto fail;
	*executed = 1;
	if (mysql_stmt_execute(s) != 0)
		goto fail;
	if (mysql_stmt_field_count(s) > 0 && mysql_stmt_store_result(s) != 0)
		goto fail;
	db->last_used_ms = mono_ms();
	*out = s;
	return 0;
fail:
	/* the server answered, or the link is about to be dropped */
	db->last_used_ms = mono_ms();
	db_seterr(db, mysql_stmt_errno(s), mysql_stmt_error(s));
	return db->last_errno ? db->last_errno : DB_CR_MIN;
}

/* Before retrying a statement rolled back by a conflict: attempt
 * milliseconds and up to one more, the jitter from the clock. */
static void
db_pause(int attempt)
{
	struct timespec	 now, ts;
	long		 us;

	clock_gettime(CLOCK_MONOTONIC, &now);
	us = (long)attempt * DB_LOCK_PAUSE_US + (now.tv_nsec / 1000) %
	    DB_LOCK_PAUSE_US;
	ts.tv_sec = 0;
	ts.tv_nsec = us * 1000;
	nanosleep(&ts, NULL);
}

/*
 * Run statement q with its parameters bound, following the retry
 * policy at the top of this file.  On DB_OK *out holds the statement
 * with its rows (if any) stored; the caller reads them and calls
 * db_done().  Any other result leaves nothing to release.
 */
enum db_status
db_exec(struct db *db, const struct db_sql *q, MYSQL_BIND *param,
    MYSQL_STMT **out)
{
	unsigned int		 err;
	int			 executed, relinks = 0, stale = 0, locks = 0;

	db->last_errno = 0;
	for (;;) {
		db_check_link(db, q->write);
		if (db_ensure(db) != DB_OK)
			return DB_UNAVAILABLE;
		if ((err = db_try(db, q, param, out, &executed)) == 0)
			return DB_OK;

		switch (db_classify(err)) {
		case DBE_DUPLICATE:
			return DB_DUPLICATE;
		case DBE_NOREF:
			return DB_NOTFOUND;
		case DBE_LOCK:
			if (locks++ < DB_LOCK_RETRIES) {
				log_info("db: %s: %s, retrying", q->name,
				    db->errmsg);
				db_pause(locks);
				continue;
			}
			break;
		case DBE_STALE:
			db_close_stmt(db, q);
			if (stale++ == 0)
				continue;
			break;
		case DBE_LOST:
			/* 1047: the node is not ready and ran nothing. */
			if (err == DB_ER_UNKNOWN_COM)
				executed = 0;
			db_node_failed(db, db->cur);
			db_disconnect(db);
			if (relinks++ < db->nnodes && (!executed || !q->write)) {
				log_info("db: %s: %s (%u) on node %d, "
				    "reconnecting", q->name, db->errmsg, err,
				    db->cur + 1);
				continue;
			}
			break;
		case DBE_OTHER:
			break;
		}
		log_warnx("db: %s: %s (%u)", q->name, db->errmsg, err);
		return DB_UNAVAILABLE;
	}
}

/* Release a statement's stored rows; it stays prepared for reuse.
 * (mysql_stmt_reset would cost a round trip and is not needed once
 * the result is stored and freed.) */
void
db_done(MYSQL_STMT *s)
{
	mysql_stmt_free_result(s);
}

void
db_bind_str(MYSQL_BIND *b, const char *s, size_t len)
{
	memset(b, 0, sizeof(*b));
	b->buffer_type = MYSQL_TYPE_STRING;
	b->buffer = (void *)s;
	b->buffer_length = len;
}

void
db_bind_i64(MYSQL_BIND *b, int64_t *v)
{
	memset(b, 0, sizeof(*b));
	b->buffer_type = MYSQL_TYPE_LONGLONG;
	b->buffer = v;
	b->buffer_length = sizeof(*v);
}

/* A BIGINT that is NULL when *v is 0 (never, none, no limit). */
void
db_bind_i64_or_null(MYSQL_BIND *b, int64_t *v)
{
	db_bind_i64(b, v);
	if (*v == 0)
		b->buffer_type = MYSQL_TYPE_NULL;
}

/* A string result: size bytes at buf, one kept for the NUL. */
void
db_bind_out(MYSQL_BIND *b, char *buf, size_t size, unsigned long *len)
{
	memset(b, 0, sizeof(*b));
	b->buffer_type = MYSQL_TYPE_STRING;
	b->buffer = buf;
	b->buffer_length = size - 1;
	b->length = len;
}

/* NUL-terminate a fetched string; -1 if it did not fit. */
int
db_terminate(char *buf, size_t size, unsigned long len)
{
	if (len > size - 1)
		return -1;
	buf[len] = '\0';
	return 0;
}

/*
 * Bind result (on the first row) and fetch the next stored row: 1 for
 * a row, 0 at the end, -1 on an error (logged).  Truncated strings come
 * back as MYSQL_DATA_TRUNCATED; callers compare each length with its
 * buffer.
 */
int
db_fetch(const struct db_sql *q, MYSQL_STMT *s, MYSQL_BIND *result,
    int first)
{
	int	 r;

	if (first && mysql_stmt_bind_result(s, result)) {
		log_warnx("db: %s: bind result: %s", q->name,
		    mysql_stmt_error(s));
		return -1;
	}
	r = mysql_stmt_fetch(s);
	if (r == 0 || r == MYSQL_DATA_TRUNCATED)
		return 1;
	if (r == MYSQL_NO_DATA)
		return 0;
	log_warnx("db: %s: fetch: %s", q->name, mysql_stmt_error(s));
	return -1;
}

/*
 * The usual statement in one call: run q with param bound (NULL: no
 * parameters) under the retry policy and, when result is not NULL,
 * fetch the first row into it.  DB_OK; DB_NOTFOUND when the statement
 * changed no row (result NULL: CLIENT_FOUND_ROWS counts the rows
 * matched) or no row came back; else what db_exec says, or
 * DB_UNAVAILABLE when the row cannot be read.  *rows, when not NULL,
 * gets the rows changed (or 1 and 0).  Nothing is left to release;
 * fetched strings may be cut: compare each length with its buffer.
 */
enum db_status
db_run(struct db *db, const struct db_sql *q, MYSQL_BIND *param,
    MYSQL_BIND *result, uint64_t *rows)
{
	MYSQL_STMT	*s;
	enum db_status	 st;
	uint64_t	 n = 0;
	int		 got;

	if ((st = db_exec(db, q, param, &s)) != DB_OK)
		return st;
	if (result == NULL)
		n = (uint64_t)mysql_stmt_affected_rows(s);
	else if ((got = db_fetch(q, s, result, 1)) == -1) {
		db_seterr(db, 0, "cannot read the row");
		st = DB_UNAVAILABLE;
	} else
		n = (uint64_t)got;
	db_done(s);
	if (rows != NULL)
		*rows = n;
	return st == DB_OK && n == 0 ? DB_NOTFOUND : st;
}

/*
 * Read the schema version.  0 when it is the one this build needs,
 * else -1 and a message for the operator.  A server that cannot be
 * reached is -1 as well; call db_ensure() first to tell the two apart.
 */
int
db_check_schema(struct db *db, char *err, size_t errlen)
{
	MYSQL_BIND	 r;
	int64_t		 v = 0;
	enum db_status	 st;

	db_bind_i64(&r, &v);
	if ((st = db_run(db, &q_schema_version, NULL, &r, NULL)) ==
	    DB_UNAVAILABLE) {
		if (db->last_errno == DB_ER_NO_SUCH_TABLE)
			snprintf(err, errlen, "database %s has no "
			    "shortd_schema table: apply sql/schema.sql "
			    "(installed in share/shortd/)", db->cfg->db_name);
		else
			snprintf(err, errlen, "database unavailable: %s",
			    db->errmsg);
		return -1;
	}
	if (st != DB_OK) {
		snprintf(err, errlen, "cannot read the schema version");
		return -1;
	}
	if (v < SHORTD_SCHEMA_VERSION) {
		snprintf(err, errlen, "database %s has schema version %lld, "
		    "shortd needs %d: apply sql/schema.sql (installed in "
		    "share/shortd/), which upgrades it in place, e.g. "
		    "mariadb %s < schema.sql", db->cfg->db_name, (long long)v,
		    SHORTD_SCHEMA_VERSION, db->cfg->db_name);
		return -1;
	}
	if (v > SHORTD_SCHEMA_VERSION) {
		snprintf(err, errlen, "database schema version %lld is newer "
		    "than shortd's %d: upgrade shortd", (long long)v,
		    SHORTD_SCHEMA_VERSION);
		return -1;
	}
	return 0;
}

/* Record the client library's last error on the connection. */
unsigned int
db_myerr(struct db *db)
{
	unsigned int	 err = mysql_errno(db->mysql);

	db_seterr(db, err ? err : DB_CR_MIN, mysql_error(db->mysql));
	return db->last_errno;
}
