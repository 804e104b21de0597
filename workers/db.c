/*
 * db.c — the worker's persistent MySQL/MariaDB connection.
 *
 * One connection per worker, opened lazily and reopened after it is
 * lost.  Every statement is a server-side prepared statement from the
 * table below, prepared on first use and cached until the connection
 * goes; parameters are always bound, never spliced into SQL.  Result
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

#include <mysql.h>
#include <openssl/evp.h>

#include "workers.h"
#include "dbi.h"

#define DB_PING_IDLE_MS	5000
#define DB_RECENT_MS	1000		/* reads skip the link check */
#define DB_LOCK_RETRIES	5
#define DB_LOCK_PAUSE_US	1000		/* times the attempt, plus jitter */
#define DB_IO_TIMEOUT	10		/* s, per read or write */
#define DB_KEY_MAX	64		/* ids, usernames: VARCHAR(64) */
#define DB_PHC_MAX	255		/* users.password VARCHAR(255) */
#define DB_NODES_MAX	16
#define DB_NODE_HOLD_MS	5000		/* skip a node that failed this long */
#define DB_HASH_LEN	32		/* urls.value_hash: SHA-256 */
#define DB_VISITS_LOCK_WAIT "1"	/* s a visit flush waits for a row lock */

/*
 * Server and client error numbers, spelled here because MySQL's and
 * MariaDB's headers do not define the same set of names.
 */
enum {
	DB_ER_UNKNOWN_COM = 1047,	/* Galera: node not ready */
	DB_ER_SERVER_SHUTDOWN = 1053,
	DB_ER_DUP_ENTRY = 1062,
	DB_ER_NO_SUCH_TABLE = 1146,
	DB_ER_UNKNOWN_SYSTEM_VARIABLE = 1193,
	DB_ER_LOCK_WAIT_TIMEOUT = 1205,
	DB_ER_LOCK_DEADLOCK = 1213,
	DB_ER_NO_REFERENCED_ROW = 1216,
	DB_ER_UNKNOWN_STMT = 1243,
	DB_ER_NO_REFERENCED_ROW_2 = 1452,
	DB_ER_DUP_ENTRY_WITH_KEY = 1586,
	DB_ER_NEED_REPREPARE = 1615,
	DB_ER_CONNECTION_KILLED = 1927,	/* MariaDB */
	DB_ER_CLIENT_IDLE = 4031,	/* MySQL 8: idle client dropped */
	DB_CR_MIN = 2000,		/* client library errors */
	DB_CR_MAX = 2999
};

enum db_errclass {
	DBE_LOST,		/* the connection is unusable */
	DBE_STALE,		/* the statement handle is; not executed */
	DBE_LOCK,		/* rolled back by the server: retry */
	DBE_DUPLICATE,
	DBE_NOREF,		/* foreign key parent missing */
	DBE_OTHER
};

enum db_stmt {
	DBS_SCHEMA_VERSION,
	DBS_USER_CREATE,
	DBS_USER_GET,
	DBS_USER_SET_PASSWORD,
	DBS_URL_INSERT,
	DBS_URL_GET,
	DBS_URL_UPDATE,
	DBS_URL_DELETE,
	DBS_URL_DELETE_ALL,
	DBS_URL_LIST_FIRST,
	DBS_URL_LIST_NEXT,
	DBS_URL_FIND,
	DBS_URL_HIT,
	DBS_URL_ADD_VISITS,
	DBS_URL_LOCK_VISITS,
	DBS_URL_SEEN_VISITS,
	DBS_COUNT
};

/*
 * The batch of visit counts: DB_VISITS_BATCH links per statement, each
 * as "WHEN ? THEN ?" in two CASEs and one "?" in the IN list.  Unused
 * places get the empty id, which no row has.  FORCE INDEX makes the
 * IN list a primary key lookup, locking those rows only, in key order:
 * without it, on a table of up to a few hundred rows, the server reads
 * (and, under REPEATABLE READ, locks) every row, and waits for any
 * row locked anywhere.  (The SELECT may still read the whole key of a
 * table of a few dozen rows; with SKIP LOCKED it waits for none.)  A
 * flush sends its links sorted, so its statements lock in key order
 * too.  The CASE compares with the ascii_bin column's collation, so
 * ids stay case-sensitive.  A flush that must not wait for row locks
 * first locks the rows with SKIP LOCKED (MariaDB 10.6+, MySQL 8.0+)
 * and updates only those it got: a row another session holds is left
 * for a later flush (see db_url_add_visits).
 */
#define DB_W1	"WHEN ? THEN ? "
#define DB_W4	DB_W1 DB_W1 DB_W1 DB_W1
#define DB_W32	DB_W4 DB_W4 DB_W4 DB_W4 DB_W4 DB_W4 DB_W4 DB_W4
#define DB_Q4	"?, ?, ?, ?, "
#define DB_Q32	DB_Q4 DB_Q4 DB_Q4 DB_Q4 DB_Q4 DB_Q4 DB_Q4 "?, ?, ?, ?"
#if DB_VISITS_BATCH != 32
#error "DB_W32 and DB_Q32 spell out DB_VISITS_BATCH places"
#endif

static const struct db_sql db_sql[DBS_COUNT] = {
	[DBS_SCHEMA_VERSION] = { "schema version", 0,
	    "SELECT COALESCE(MAX(version), 0) FROM shortd_schema" },
	[DBS_USER_CREATE] = { "user create", 1,
	    "INSERT INTO users (username, password, pw_changed, created) "
	    "VALUES (?, ?, ?, ?)" },
	[DBS_USER_GET] = { "user get", 0,
	    "SELECT password, pw_changed FROM users WHERE username = ?" },
	[DBS_USER_SET_PASSWORD] = { "user set password", 1,
	    "UPDATE users SET password = ?, pw_changed = ? "
	    "WHERE username = ?" },
	/* The row goes in only if its owner exists and has not changed
	 * the password after the token was issued (pw_changed <= iat,
	 * both in seconds): the token's revocation check and the insert
	 * in one round trip.  The SELECT's shared lock on the user row
	 * is the one the foreign key check takes anyway. */
	[DBS_URL_INSERT] = { "url insert", 1,
	    "INSERT INTO urls (id, `user`, value, value_hash, created_us, "
	    "updated_us, expires_us, max_visits) "
	    "SELECT ?, username, ?, ?, ?, ?, ?, ? FROM users "
	    "WHERE username = ? AND pw_changed <= ?" },
	[DBS_URL_GET] = { "url get", 0,
	    "SELECT `user`, value, created_us, updated_us, visits, "
	    "COALESCE(last_visit_us, 0), COALESCE(expires_us, 0), "
	    "COALESCE(max_visits, 0) FROM urls WHERE id = ?" },
	/* Each column changes only when its flag is set, in one
	 * statement: a PUT is applied whole or not at all. */
	[DBS_URL_UPDATE] = { "url update", 1,
	    "UPDATE urls SET value = IF(?, ?, value), "
	    "value_hash = IF(?, ?, value_hash), "
	    "expires_us = IF(?, ?, expires_us), "
	    "max_visits = IF(?, ?, max_visits), updated_us = ? "
	    "WHERE id = ?" },
	[DBS_URL_DELETE] = { "url delete", 1,
	    "DELETE FROM urls WHERE id = ?" },
	[DBS_URL_DELETE_ALL] = { "url delete all", 1,
	    "DELETE FROM urls WHERE `user` = ?" },
	[DBS_URL_LIST_FIRST] = { "url list", 0,
	    "SELECT id, value, created_us, visits, COALESCE(expires_us, 0), "
	    "COALESCE(max_visits, 0) FROM urls WHERE `user` = ? "
	    "ORDER BY created_us DESC, id DESC LIMIT ?" },
	[DBS_URL_LIST_NEXT] = { "url list next", 0,
	    "SELECT id, value, created_us, visits, COALESCE(expires_us, 0), "
	    "COALESCE(max_visits, 0) FROM urls WHERE `user` = ? "
	    "AND (created_us < ? OR (created_us = ? AND id < ?)) "
	    "ORDER BY created_us DESC, id DESC LIMIT ?" },
	/* idx_user_value finds the candidates; value = ? rules out a
	 * hash collision. */
	[DBS_URL_FIND] = { "url find", 0,
	    "SELECT id FROM urls WHERE `user` = ? AND value_hash = ? "
	    "AND value = ? AND expires_us IS NULL AND max_visits IS NULL "
	    "ORDER BY created_us, id LIMIT 1" },
	/* The visit limit holds under any concurrency: the row lock
	 * makes check and increment one step. */
	[DBS_URL_HIT] = { "url hit", 1,
	    "UPDATE urls SET visits = visits + 1, last_visit_us = ? "
	    "WHERE id = ? AND (max_visits IS NULL OR visits < max_visits) "
	    "AND (expires_us IS NULL OR expires_us > ?)" },
	[DBS_URL_ADD_VISITS] = { "url add visits", 1,
	    "UPDATE urls FORCE INDEX (PRIMARY) "
	    "SET visits = visits + CASE id " DB_W32 "ELSE 0 END, "
	    "last_visit_us = GREATEST(COALESCE(last_visit_us, 0), "
	    "CASE id " DB_W32 "ELSE 0 END) WHERE id IN (" DB_Q32 ")" },
	[DBS_URL_LOCK_VISITS] = { "url lock visits", 1,
	    "SELECT id FROM urls FORCE INDEX (PRIMARY) "
	    "WHERE id IN (" DB_Q32 ") FOR UPDATE SKIP LOCKED" },
	/* A consistent read: it takes no lock and waits for none. */
	[DBS_URL_SEEN_VISITS] = { "url find visits", 0,
	    "SELECT id FROM urls WHERE id IN (" DB_Q32 ")" },
};

/* One server of db_host's list. */
struct db_node {
	char		 host[256];	/* "localhost": the unix socket */
	unsigned int	 port;
	int		 failed;	/* failed_ms is set */
	int64_t		 failed_ms;	/* CLOCK_MONOTONIC of the failure */
};

struct db {
	const struct config	*cfg;
	MYSQL			*mysql;		/* NULL when not connected */
	int			 connected;
	struct db_node		 node[DB_NODES_MAX];
	int			 nnodes;	/* 0: db_host did not parse */
	int			 cur;		/* the node connected to */
	int64_t			 last_used_ms;	/* CLOCK_MONOTONIC */
	unsigned int		 last_errno;	/* of the last failure */
	uint64_t		 connects;	/* successful connects */
	char			 errmsg[256];
	MYSQL_STMT		*stmt[DBS_COUNT];	/* lazily prepared */
	MYSQL_STMT		*xstmt[DB_XSLOTS];	/* other files' (dbi.h) */
	int			 in_tx;		/* between db_tx_begin and end */
};

/* One row of a listing or a lookup, before it is copied out. */
struct db_row {
	char		 id[ID_MAX + 1];
	unsigned long	 idlen;
	char		 owner[JWT_SUB_MAX + 1];
	unsigned long	 ownerlen;
	char		 value[URL_MAX + 1];
	unsigned long	 valuelen;
	int64_t		 created_us;
	int64_t		 updated_us;
	int64_t		 visits;
	int64_t		 last_visit_us;
	int64_t		 expires_us;
	int64_t		 max_visits;
};

static int64_t
db_now_ms(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

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

static void
db_seterr(struct db *db, unsigned int err, const char *msg)
{
	db->last_errno = err;
	snprintf(db->errmsg, sizeof(db->errmsg), "%s", msg);
}

static void
db_close_stmt(struct db *db, enum db_stmt st)
{
	if (db->stmt[st] != NULL) {
		mysql_stmt_close(db->stmt[st]);
		db->stmt[st] = NULL;
	}
}

/* Drop the connection and every statement prepared on it. */
static void
db_disconnect(struct db *db)
{
	int	 i;

	for (i = 0; i < DBS_COUNT; i++)
		db_close_stmt(db, i);
	for (i = 0; i < DB_XSLOTS; i++)
		if (db->xstmt[i] != NULL) {
			mysql_stmt_close(db->xstmt[i]);
			db->xstmt[i] = NULL;
		}
	db->in_tx = 0;
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
static void
db_node_failed(struct db *db, int i)
{
	db->node[i].failed = 1;
	db->node[i].failed_ms = db_now_ms();
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
	db->last_used_ms = db_now_ms();
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
	now = db_now_ms();
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
static void
db_check_link(struct db *db, int write)
{
	if (!db->connected)
		return;
	if (!write && db_now_ms() - db->last_used_ms < DB_RECENT_MS)
		return;
	if (db_link_closed(db)) {
		log_info("db: node %d closed the connection, reconnecting",
		    db->cur + 1);
		db_node_failed(db, db->cur);
		db_disconnect(db);
		return;
	}
	if (!write || db_now_ms() - db->last_used_ms < DB_PING_IDLE_MS)
		return;
	if (mysql_ping(db->mysql) == 0) {
		db->last_used_ms = db_now_ms();
		return;
	}
	log_info("db: idle connection lost (%s), reconnecting",
	    mysql_error(db->mysql));
	db_node_failed(db, db->cur);
	db_disconnect(db);
}

static enum db_errclass
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
 * One attempt at statement st: prepare if needed, bind, execute and
 * store the rows.  0 on success with *out set, else the error number
 * (message in db->errmsg); *executed says whether the server may have
 * run it.
 */
static unsigned int
db_try_q(struct db *db, const struct db_sql *q, MYSQL_STMT **slot,
    MYSQL_BIND *param, MYSQL_STMT **out, int *executed)
{
	MYSQL_STMT	*s;
	const char	*sql = q->sql;

	*executed = 0;
	if ((s = *slot) == NULL) {
		if ((s = mysql_stmt_init(db->mysql)) == NULL) {
			db_seterr(db, mysql_errno(db->mysql),
			    mysql_error(db->mysql));
			return db->last_errno ? db->last_errno : DB_CR_MIN;
		}
		if (mysql_stmt_prepare(s, sql, strlen(sql)) != 0) {
			db_seterr(db, mysql_stmt_errno(s),
			    mysql_stmt_error(s));
			mysql_stmt_close(s);
			return db->last_errno ? db->last_errno : DB_CR_MIN;
		}
		*slot = s;
	}
	if (param != NULL && mysql_stmt_bind_param(s, param))
		goto fail;
	*executed = 1;
	if (mysql_stmt_execute(s) != 0)
		goto fail;
	if (mysql_stmt_field_count(s) > 0 && mysql_stmt_store_result(s) != 0)
		goto fail;
	db->last_used_ms = db_now_ms();
	*out = s;
	return 0;
fail:
	/* the server answered, or the link is about to be dropped */
	db->last_used_ms = db_now_ms();
	db_seterr(db, mysql_stmt_errno(s), mysql_stmt_error(s));
	return db->last_errno ? db->last_errno : DB_CR_MIN;
}

/* The same for one of db.c's own statements. */
static unsigned int
db_try(struct db *db, enum db_stmt st, MYSQL_BIND *param, MYSQL_STMT **out,
    int *executed)
{
	return db_try_q(db, &db_sql[st], &db->stmt[st], param, out, executed);
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
 * Run statement st with its parameters bound, following the retry
 * policy at the top of this file.  On DB_OK *out holds the statement
 * with its rows (if any) stored; the caller reads them and calls
 * db_done().  Any other result leaves nothing to release.
 */
static enum db_status
db_run(struct db *db, const struct db_sql *q, MYSQL_STMT **slot,
    MYSQL_BIND *param, MYSQL_STMT **out)
{
	unsigned int		 err;
	int			 executed, relinks = 0, stale = 0, locks = 0;

	db->last_errno = 0;
	for (;;) {
		db_check_link(db, q->write);
		if (db_ensure(db) != DB_OK)
			return DB_UNAVAILABLE;
		if ((err = db_try_q(db, q, slot, param, out, &executed)) == 0)
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
			if (*slot != NULL) {
				mysql_stmt_close(*slot);
				*slot = NULL;
			}
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

static enum db_status
db_exec(struct db *db, enum db_stmt st, MYSQL_BIND *param, MYSQL_STMT **out)
{
	return db_run(db, &db_sql[st], &db->stmt[st], param, out);
}

enum db_status
db_xexec(struct db *db, const struct db_sql *q, int slot, MYSQL_BIND *param,
    MYSQL_STMT **out)
{
	if (slot < 0 || slot >= DB_XSLOTS) {
		log_warnx("db: %s: no statement slot %d", q->name, slot);
		return DB_UNAVAILABLE;
	}
	if (db->in_tx)
		return db_tx_exec(db, q, slot, param, out);
	return db_run(db, q, &db->xstmt[slot], param, out);
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

/* urls.value_hash: SHA-256 of the value's bytes, which is what
 * UNHEX(SHA2(value, 256)) gives for the rows the upgrade fills. */
int
db_value_hash(const char *value, size_t len, unsigned char out[DB_HASH_LEN])
{
	unsigned int	 n = 0;

	if (EVP_Digest(value, len, out, &n, EVP_sha256(), NULL) != 1 ||
	    n != DB_HASH_LEN) {
		log_warnx("db: SHA-256 failed");
		return -1;
	}
	return 0;
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
db_xfetch(const char *name, MYSQL_STMT *s, MYSQL_BIND *result, int first)
{
	int	 r;

	if (first && mysql_stmt_bind_result(s, result)) {
		log_warnx("db: %s: bind result: %s", name,
		    mysql_stmt_error(s));
		return -1;
	}
	r = mysql_stmt_fetch(s);
	if (r == 0 || r == MYSQL_DATA_TRUNCATED)
		return 1;
	if (r == MYSQL_NO_DATA)
		return 0;
	log_warnx("db: %s: fetch: %s", name, mysql_stmt_error(s));
	return -1;
}

static int
db_fetch(enum db_stmt st, MYSQL_STMT *s, MYSQL_BIND *result, int first)
{
	return db_xfetch(db_sql[st].name, s, result, first);
}

/*
 * Copy the value column (number col) of the current row into a new
 * allocation.  The bound buffer holds any URL shortd accepts; a longer
 * stored value (the column allows 2048 characters, up to 8 KiB) is
 * fetched again at its full length rather than cut.
 */
static int
db_copy_value(MYSQL_STMT *s, unsigned int col, const struct db_row *r,
    char **out, size_t *outlen)
{
	MYSQL_BIND	 b;
	unsigned long	 len;
	char		*v;

	if ((v = malloc((size_t)r->valuelen + 1)) == NULL) {
		log_warnx("db: out of memory for a %lu byte value",
		    r->valuelen);
		return -1;
	}
	if (r->valuelen <= sizeof(r->value) - 1)
		memcpy(v, r->value, r->valuelen);
	else {
		db_bind_out(&b, v, (size_t)r->valuelen + 1, &len);
		if (mysql_stmt_fetch_column(s, &b, col, 0) != 0 ||
		    len != r->valuelen) {
			log_warnx("db: fetch value: %s", mysql_stmt_error(s));
			free(v);
			return -1;
		}
	}
	v[r->valuelen] = '\0';
	*out = v;
	*outlen = r->valuelen;
	return 0;
}

/*
 * Read the schema version.  0 when it is the one this build needs,
 * else -1 and a message for the operator.  A server that cannot be
 * reached is -1 as well; call db_ensure() first to tell the two apart.
 */
int
db_check_schema(struct db *db, char *err, size_t errlen)
{
	MYSQL_STMT	*s;
	MYSQL_BIND	 r;
	int64_t		 v = 0;
	int		 got;

	if (db_exec(db, DBS_SCHEMA_VERSION, NULL, &s) != DB_OK) {
		if (db->last_errno == DB_ER_NO_SUCH_TABLE)
			snprintf(err, errlen, "database %s has no "
			    "shortd_schema table: apply sql/schema.sql "
			    "(installed in share/shortd/)", db->cfg->db_name);
		else
			snprintf(err, errlen, "database unavailable: %s",
			    db->errmsg);
		return -1;
	}
	db_bind_i64(&r, &v);
	got = db_fetch(DBS_SCHEMA_VERSION, s, &r, 1);
	db_done(s);
	if (got != 1) {
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

/* ------------------------------------------------------------------ */
/* users                                                               */
/* ------------------------------------------------------------------ */

enum db_status
db_user_create(struct db *db, const char *user, const char *phc,
    int64_t now)
{
	MYSQL_BIND	 p[4];
	MYSQL_STMT	*s;
	enum db_status	 st;

	if (!db_key_ok(user, DB_KEY_MAX)) {
		log_warnx("db: user create: unusable username");
		return DB_UNAVAILABLE;
	}
	db_bind_str(&p[0], user, strlen(user));
	db_bind_str(&p[1], phc, strlen(phc));
	db_bind_i64(&p[2], &now);
	db_bind_i64(&p[3], &now);
	if ((st = db_exec(db, DBS_USER_CREATE, p, &s)) != DB_OK)
		return st;
	db_done(s);
	return DB_OK;
}

enum db_status
db_user_get(struct db *db, const char *user, char *phc, size_t phclen,
    int64_t *pw_changed)
{
	MYSQL_BIND	 p[1], r[2];
	MYSQL_STMT	*s;
	char		 pw[DB_PHC_MAX + 1];
	unsigned long	 pwlen = 0;
	int64_t		 changed = 0;
	enum db_status	 st;

	if (!db_key_ok(user, DB_KEY_MAX))
		return DB_NOTFOUND;
	db_bind_str(&p[0], user, strlen(user));
	if ((st = db_exec(db, DBS_USER_GET, p, &s)) != DB_OK)
		return st;
	db_bind_out(&r[0], pw, sizeof(pw), &pwlen);
	db_bind_i64(&r[1], &changed);
	switch (db_fetch(DBS_USER_GET, s, r, 1)) {
	case 0:
		st = DB_NOTFOUND;
		break;
	case 1:
		if (db_terminate(pw, sizeof(pw), pwlen) == -1 ||
		    pwlen >= phclen) {
			log_warnx("db: user get: a %lu byte hash does not fit",
			    pwlen);
			st = DB_UNAVAILABLE;
			break;
		}
		memcpy(phc, pw, (size_t)pwlen + 1);
		*pw_changed = changed;
		break;
	default:
		st = DB_UNAVAILABLE;
		break;
	}
	db_done(s);
	return st;
}

enum db_status
db_user_set_password(struct db *db, const char *user, const char *phc,
    int64_t now)
{
	MYSQL_BIND	 p[3];
	MYSQL_STMT	*s;
	enum db_status	 st;

	if (!db_key_ok(user, DB_KEY_MAX))
		return DB_NOTFOUND;
	db_bind_str(&p[0], phc, strlen(phc));
	db_bind_i64(&p[1], &now);
	db_bind_str(&p[2], user, strlen(user));
	if ((st = db_exec(db, DBS_USER_SET_PASSWORD, p, &s)) != DB_OK)
		return st;
	if (mysql_stmt_affected_rows(s) == 0)
		st = DB_NOTFOUND;
	db_done(s);
	return st;
}

/* ------------------------------------------------------------------ */
/* urls                                                                */
/* ------------------------------------------------------------------ */

/* An owner that cannot exist gives DB_NOTFOUND, as the foreign key
 * does for one that no longer exists. */
enum db_status
db_url_insert(struct db *db, const char *id, const char *owner,
    const char *value, size_t len, int64_t now_us)
{
	return db_url_insert_limited(db, id, owner, INT64_MAX, value, len,
	    now_us, 0, 0);
}

enum db_status
db_url_insert_limited(struct db *db, const char *id, const char *owner,
    int64_t issued, const char *value, size_t len, int64_t now_us,
    int64_t expires_us, int64_t max_visits)
{
	MYSQL_BIND	 p[9];
	MYSQL_STMT	*s;
	unsigned char	 hash[DB_HASH_LEN];
	enum db_status	 st;

	if (!db_key_ok(id, DB_KEY_MAX)) {
		log_warnx("db: url insert: unusable id");
		return DB_UNAVAILABLE;
	}
	if (!db_key_ok(owner, DB_KEY_MAX))
		return DB_NOTFOUND;
	if (db_value_hash(value, len, hash) == -1)
		return DB_UNAVAILABLE;
	db_bind_str(&p[0], id, strlen(id));
	db_bind_str(&p[1], value, len);
	db_bind_str(&p[2], (const char *)hash, sizeof(hash));
	db_bind_i64(&p[3], &now_us);
	db_bind_i64(&p[4], &now_us);
	db_bind_i64_or_null(&p[5], &expires_us);
	db_bind_i64_or_null(&p[6], &max_visits);
	db_bind_str(&p[7], owner, strlen(owner));
	db_bind_i64(&p[8], &issued);
	if ((st = db_exec(db, DBS_URL_INSERT, p, &s)) != DB_OK)
		return st;
	/* No row: the SELECT found no such user, or a later change. */
	if (mysql_stmt_affected_rows(s) == 0)
		st = DB_NOTFOUND;
	db_done(s);
	return st;
}

enum db_status
db_url_find(struct db *db, const char *owner, const char *value, size_t len,
    char id[ID_MAX + 1])
{
	MYSQL_BIND	 p[3], r[1];
	MYSQL_STMT	*s;
	unsigned char	 hash[DB_HASH_LEN];
	char		 got[ID_MAX + 1];
	unsigned long	 gotlen = 0;
	enum db_status	 st;

	if (!db_key_ok(owner, DB_KEY_MAX))
		return DB_NOTFOUND;
	if (db_value_hash(value, len, hash) == -1)
		return DB_UNAVAILABLE;
	db_bind_str(&p[0], owner, strlen(owner));
	db_bind_str(&p[1], (const char *)hash, sizeof(hash));
	db_bind_str(&p[2], value, len);
	if ((st = db_exec(db, DBS_URL_FIND, p, &s)) != DB_OK)
		return st;
	db_bind_out(&r[0], got, sizeof(got), &gotlen);
	switch (db_fetch(DBS_URL_FIND, s, r, 1)) {
	case 0:
		st = DB_NOTFOUND;
		break;
	case 1:
		if (db_terminate(got, sizeof(got), gotlen) == -1) {
			st = DB_UNAVAILABLE;
			break;
		}
		memcpy(id, got, (size_t)gotlen + 1);
		break;
	default:
		st = DB_UNAVAILABLE;
		break;
	}
	db_done(s);
	return st;
}

enum db_status
db_url_hit(struct db *db, const char *id, int64_t now_us)
{
	MYSQL_BIND	 p[3];
	MYSQL_STMT	*s;
	enum db_status	 st;

	if (!db_key_ok(id, ID_MAX))
		return DB_NOTFOUND;
	db_bind_i64(&p[0], &now_us);
	db_bind_str(&p[1], id, strlen(id));
	db_bind_i64(&p[2], &now_us);
	if ((st = db_exec(db, DBS_URL_HIT, p, &s)) != DB_OK)
		return st;
	if (mysql_stmt_affected_rows(s) == 0)
		st = DB_NOTFOUND;
	db_done(s);
	return st;
}

/* Bind one statement's worth (up to DB_VISITS_BATCH) of v: (id, count)
 * per place, (id, last_us) per place, then the ids of the IN list, in
 * the order of the SQL.  Unused places get the empty id. */
static void
db_bind_visits(MYSQL_BIND *p, const struct db_visits *v, size_t n,
    int64_t *count, int64_t *last)
{
	size_t		 k, b = DB_VISITS_BATCH;

	for (k = 0; k < b; k++) {
		const char *id = k < n && db_key_ok(v[k].id, ID_MAX) ?
		    v[k].id : "";

		count[k] = k < n ? v[k].count : 0;
		last[k] = k < n ? v[k].last_us : 0;
		db_bind_str(&p[2 * k], id, strlen(id));
		db_bind_i64(&p[2 * k + 1], &count[k]);
		db_bind_str(&p[2 * b + 2 * k], id, strlen(id));
		db_bind_i64(&p[2 * b + 2 * k + 1], &last[k]);
		db_bind_str(&p[4 * b + k], id, strlen(id));
	}
}

/* The IN list alone, for the SELECTs of a flush. */
static void
db_bind_visit_ids(MYSQL_BIND *p, const struct db_visits *v, size_t n)
{
	size_t		 k;

	for (k = 0; k < DB_VISITS_BATCH; k++) {
		const char *id = k < n && db_key_ok(v[k].id, ID_MAX) ?
		    v[k].id : "";

		db_bind_str(&p[k], id, strlen(id));
	}
}

/* Record the client library's last error on the connection. */
static unsigned int
db_myerr(struct db *db)
{
	unsigned int	 err = mysql_errno(db->mysql);

	db_seterr(db, err ? err : DB_CR_MIN, mysql_error(db->mysql));
	return db->last_errno;
}

/*
 * Run SELECT st (ids of v, bound in p) and set seen[k] for each link
 * of v whose id comes back.  0, or the error number (message in
 * db->errmsg).
 */
static unsigned int
db_visits_select(struct db *db, enum db_stmt st, MYSQL_BIND *p,
    const struct db_visits *v, size_t n, char *seen)
{
	MYSQL_STMT	*s;
	MYSQL_BIND	 r;
	char		 id[ID_MAX + 1];
	unsigned long	 len = 0;
	unsigned int	 err;
	size_t		 k;
	int		 executed, got, first = 1;

	memset(seen, 0, n);
	if ((err = db_try(db, st, p, &s, &executed)) != 0)
		return err;
	db_bind_out(&r, id, sizeof(id), &len);
	while ((got = db_fetch(st, s, &r, first)) == 1) {
		first = 0;
		if (db_terminate(id, sizeof(id), len) == -1)
			continue;
		for (k = 0; k < n; k++)
			if (strcmp(v[k].id, id) == 0)
				seen[k] = 1;
	}
	db_done(s);
	if (got == -1) {
		db_seterr(db, DB_CR_MIN, "cannot read the ids");
		return DB_CR_MIN;
	}
	return 0;
}

/*
 * Up to DB_VISITS_BATCH links of a flush, inside its transaction, all
 * marked pending 0 (written if the transaction commits).  With skip,
 * first lock their rows, skipping those another session holds; if
 * some did not come back, a plain read tells a row held by someone
 * (its link waits: pending stays 1) from a link that is gone (nothing
 * to write); then update only the rows locked.  0, or the error number
 * (message in db->errmsg).
 */
static unsigned int
db_visits_batch(struct db *db, struct db_visits *v, size_t n,
    MYSQL_BIND *p, int skip)
{
	struct db_visits w[DB_VISITS_BATCH];
	MYSQL_STMT	*s;
	int64_t		 count[DB_VISITS_BATCH], last[DB_VISITS_BATCH];
	char		 locked[DB_VISITS_BATCH], exists[DB_VISITS_BATCH];
	unsigned int	 err;
	size_t		 k, nw = 0;
	int		 executed;

	if (!skip) {
		for (k = 0; k < n; k++)
			v[k].pending = 0;
		db_bind_visits(p, v, n, count, last);
		if ((err = db_try(db, DBS_URL_ADD_VISITS, p, &s,
		    &executed)) != 0)
			return err;
		db_done(s);
		return 0;
	}
	db_bind_visit_ids(p, v, n);
	if ((err = db_visits_select(db, DBS_URL_LOCK_VISITS, p, v, n,
	    locked)) != 0)
		return err;
	for (k = 0; k < n; k++)
		if (locked[k])
			w[nw++] = v[k];
	memset(exists, 0, sizeof(exists));
	if (nw < n && (err = db_visits_select(db, DBS_URL_SEEN_VISITS, p, v,
	    n, exists)) != 0)
		return err;
	for (k = 0; k < n; k++)
		if (locked[k] || !exists[k])
			v[k].pending = 0;
	if (nw == 0)
		return 0;
	db_bind_visits(p, w, nw, count, last);
	if ((err = db_try(db, DBS_URL_ADD_VISITS, p, &s, &executed)) != 0)
		return err;
	db_done(s);
	return 0;
}

/*
 * Start a flush's transaction, its row lock waits bounded by
 * DB_VISITS_LOCK_WAIT seconds for this session until db_visits_end()
 * puts back what it had (the user variable keeps it: the value the
 * server or its init_connect gave).  A server without the variable
 * runs the flush unbounded rather than not at all.  0, or the error
 * number.
 */
static unsigned int
db_visits_begin(struct db *db, int *bounded)
{
	static const char	 q[] = "SET @shortd_lock_wait = "
	    "@@SESSION.innodb_lock_wait_timeout, "
	    "SESSION innodb_lock_wait_timeout = " DB_VISITS_LOCK_WAIT;

	*bounded = 0;
	if (mysql_real_query(db->mysql, q, sizeof(q) - 1) == 0)
		*bounded = 1;
	else if (mysql_errno(db->mysql) != DB_ER_UNKNOWN_SYSTEM_VARIABLE)
		return db_myerr(db);
	if (mysql_autocommit(db->mysql, 0) != 0)
		return db_myerr(db);
	return 0;
}

/*
 * After a flush's COMMIT or ROLLBACK: autocommit on and the session's
 * own lock wait back, which every other statement relies on (a PUT
 * waits for a row as long as the server says).  A connection that
 * cannot be put back is dropped: a new one starts with both.
 */
static void
db_visits_end(struct db *db, int bounded)
{
	static const char	 q[] = "SET SESSION innodb_lock_wait_timeout = "
	    "@shortd_lock_wait";

	if (mysql_autocommit(db->mysql, 1) == 0 && (!bounded ||
	    mysql_real_query(db->mysql, q, sizeof(q) - 1) == 0))
		return;
	log_info("db: url add visits: resetting the session: %s, "
	    "reconnecting", mysql_error(db->mysql));
	db_disconnect(db);
}

/*
 * One try at the whole of v in one transaction (db_visits_batch per
 * DB_VISITS_BATCH links, with skip or not), then COMMIT.  A statement
 * that waits for a row lock gives up after DB_VISITS_LOCK_WAIT s and
 * the whole transaction is rolled back, here and explicitly: a lock
 * wait timeout rolls back only the statement unless the server runs
 * with innodb_rollback_on_timeout.
 *
 * On return v[k].pending is 1 if link k's count was surely not
 * written (its row was held by another session and skipped, or the
 * transaction rolled back or never began), 0 if it was written, if its
 * link is gone, or if COMMIT failed other than by a rollback (the
 * connection went during it: it may or may not have applied it).
 * *retry is set when nothing was applied
 * and trying again at once, skipping locked rows, may work: a lock
 * wait timeout while waiting was allowed, a deadlock or a Galera
 * certification conflict (1213, both roll the transaction back), a
 * stale statement, a connection lost before COMMIT.
 */
static enum db_status
db_visits_txn(struct db *db, struct db_visits *v, size_t n,
    MYSQL_BIND *p, int skip, int *retry)
{
	enum db_errclass c;
	unsigned int	 err;
	size_t		 k, m;
	int		 bounded = 0, committing = 0, unsure;

	*retry = 0;
	for (k = 0; k < n; k++)
		v[k].pending = 1;
	db_check_link(db, 1);
	if (db_ensure(db) != DB_OK)
		return DB_UNAVAILABLE;
	if ((err = db_visits_begin(db, &bounded)) != 0)
		goto fail;
	for (k = 0; k < n; k += m) {
		m = n - k < DB_VISITS_BATCH ? n - k : DB_VISITS_BATCH;
		if ((err = db_visits_batch(db, v + k, m, p, skip)) != 0)
			goto fail;
	}
	committing = 1;
	if (mysql_commit(db->mysql) != 0) {
		err = db_myerr(db);
		goto fail;
	}
	db_visits_end(db, bounded);
	return DB_OK;
fail:
	if ((c = db_classify(err)) == DBE_LOST) {
		/* The server rolls back what was not committed; what was
		 * being committed may or may not be.  The node is held back
		 * like any lost node, so the retry goes to the next one. */
		db_node_failed(db, db->cur);
		db_disconnect(db);
		unsure = committing;
		*retry = !committing;
		if (*retry)
			log_info("db: url add visits: %s (%u) before COMMIT, "
			    "nothing applied; retrying on a new connection",
			    db->errmsg, err);
	} else {
		if (c == DBE_STALE) {
			db_close_stmt(db, DBS_URL_ADD_VISITS);
			db_close_stmt(db, DBS_URL_LOCK_VISITS);
			db_close_stmt(db, DBS_URL_SEEN_VISITS);
		}
		/* A COMMIT that failed otherwise than by a rollback the
		 * server made (1213) is not known not to have applied. */
		unsure = committing && c != DBE_LOCK;
		*retry = !unsure && ((err == DB_ER_LOCK_WAIT_TIMEOUT &&
		    !skip) || err == DB_ER_LOCK_DEADLOCK || c == DBE_STALE);
		if (mysql_rollback(db->mysql) != 0)
			db_disconnect(db);	/* which rolls back */
		else
			db_visits_end(db, bounded);
		if (*retry)
			log_info("db: url add visits: %s (%u), rolled back; "
			    "retrying, skipping rows locked by others",
			    db->errmsg, err);
	}
	/* Skipped rows were in no UPDATE: they wait whatever happened. */
	if (!unsure)
		for (k = 0; k < n; k++)
			v[k].pending = 1;
	return DB_UNAVAILABLE;
}

/*
 * Add counted visits of n links (any number), sorted by id, in one
 * transaction: one commit, so one log flush, however many links.
 * Rows are locked in id order, so two workers' flushes wait for each
 * other (briefly) but never deadlock.  Waiting for a row lock is
 * bounded by DB_VISITS_LOCK_WAIT; with skip (or on the second try,
 * after a first one that applied nothing, see db_visits_txn) nothing
 * waits: a row another session holds is skipped and its link left
 * pending.  SKIP LOCKED needs MariaDB 10.6 or MySQL 8.0.
 *
 * DB_OK: committed; v[k].pending marks the links left for a later
 * flush.  Otherwise err gets why (nothing logged here) and
 * v[k].pending is 1 for every link surely not written, 0 where the
 * COMMIT may have applied it.
 */
enum db_status
db_url_add_visits(struct db *db, struct db_visits *v, size_t n, int skip,
    char *err, size_t errlen)
{
	MYSQL_BIND	*p;
	enum db_status	 st = DB_OK;
	size_t		 k;
	int		 tries, retry = 0;

	if (n == 0)
		return DB_OK;
	if ((p = calloc(5 * DB_VISITS_BATCH, sizeof(*p))) == NULL) {
		for (k = 0; k < n; k++)
			v[k].pending = 1;
		snprintf(err, errlen, "out of memory");
		return DB_UNAVAILABLE;
	}
	db->last_errno = 0;
	for (tries = 0; tries < 2; tries++, skip = 1)
		if ((st = db_visits_txn(db, v, n, p, skip, &retry)) ==
		    DB_OK || !retry)
			break;
	free(p);
	if (st != DB_OK)
		snprintf(err, errlen, "%s (%u)", db->errmsg, db->last_errno);
	return st;
}

/* u is overwritten; on anything but DB_OK u->value is NULL. */
enum db_status
db_url_get(struct db *db, const char *id, struct db_url *u)
{
	MYSQL_BIND	 p[1], r[8];
	MYSQL_STMT	*s;
	struct db_row	*row;
	enum db_status	 st;

	memset(u, 0, sizeof(*u));
	if (!db_key_ok(id, ID_MAX))
		return DB_NOTFOUND;
	if ((row = calloc(1, sizeof(*row))) == NULL) {
		log_warnx("db: url get: out of memory");
		return DB_UNAVAILABLE;
	}
	db_bind_str(&p[0], id, strlen(id));
	if ((st = db_exec(db, DBS_URL_GET, p, &s)) != DB_OK)
		goto out;
	db_bind_out(&r[0], row->owner, sizeof(row->owner), &row->ownerlen);
	db_bind_out(&r[1], row->value, sizeof(row->value), &row->valuelen);
	db_bind_i64(&r[2], &row->created_us);
	db_bind_i64(&r[3], &row->updated_us);
	db_bind_i64(&r[4], &row->visits);
	db_bind_i64(&r[5], &row->last_visit_us);
	db_bind_i64(&r[6], &row->expires_us);
	db_bind_i64(&r[7], &row->max_visits);
	switch (db_fetch(DBS_URL_GET, s, r, 1)) {
	case 0:
		st = DB_NOTFOUND;
		break;
	case 1:
		if (db_terminate(row->owner, sizeof(row->owner),
		    row->ownerlen) == -1 ||
		    db_copy_value(s, 1, row, &u->value, &u->len) == -1) {
			st = DB_UNAVAILABLE;
			break;
		}
		memcpy(u->id, id, strlen(id) + 1);
		memcpy(u->owner, row->owner, (size_t)row->ownerlen + 1);
		u->created_us = row->created_us;
		u->updated_us = row->updated_us;
		u->visits = row->visits;
		u->last_visit_us = row->last_visit_us;
		u->expires_us = row->expires_us;
		u->max_visits = row->max_visits;
		break;
	default:
		st = DB_UNAVAILABLE;
		break;
	}
	db_done(s);
out:
	free(row);
	return st;
}

enum db_status
db_url_update(struct db *db, const char *id, const char *value, size_t len,
    int64_t now_us)
{
	struct db_url_change	 c;

	memset(&c, 0, sizeof(c));
	c.value = value;
	c.len = len;
	return db_url_change(db, id, &c, now_us);
}

enum db_status
db_url_change(struct db *db, const char *id, const struct db_url_change *c,
    int64_t now_us)
{
	MYSQL_BIND	 p[10];
	MYSQL_STMT	*s;
	unsigned char	 hash[DB_HASH_LEN];
	int64_t		 set_value = c->value != NULL, set_exp = c->set_expires,
			 set_max = c->set_max_visits, expires = c->expires_us,
			 max = c->max_visits;
	enum db_status	 st;

	if (!db_key_ok(id, ID_MAX))
		return DB_NOTFOUND;
	memset(hash, 0, sizeof(hash));
	if (set_value && db_value_hash(c->value, c->len, hash) == -1)
		return DB_UNAVAILABLE;
	db_bind_i64(&p[0], &set_value);
	db_bind_str(&p[1], set_value ? c->value : "", set_value ? c->len : 0);
	db_bind_i64(&p[2], &set_value);
	db_bind_str(&p[3], (const char *)hash, sizeof(hash));
	db_bind_i64(&p[4], &set_exp);
	db_bind_i64_or_null(&p[5], &expires);
	db_bind_i64(&p[6], &set_max);
	db_bind_i64_or_null(&p[7], &max);
	db_bind_i64(&p[8], &now_us);
	db_bind_str(&p[9], id, strlen(id));
	if ((st = db_exec(db, DBS_URL_UPDATE, p, &s)) != DB_OK)
		return st;
	if (mysql_stmt_affected_rows(s) == 0)
		st = DB_NOTFOUND;
	db_done(s);
	return st;
}

enum db_status
db_url_delete(struct db *db, const char *id)
{
	MYSQL_BIND	 p[1];
	MYSQL_STMT	*s;
	enum db_status	 st;

	if (!db_key_ok(id, ID_MAX))
		return DB_NOTFOUND;
	db_bind_str(&p[0], id, strlen(id));
	if ((st = db_exec(db, DBS_URL_DELETE, p, &s)) != DB_OK)
		return st;
	if (mysql_stmt_affected_rows(s) == 0)
		st = DB_NOTFOUND;
	db_done(s);
	return st;
}

enum db_status
db_url_delete_all(struct db *db, const char *owner, uint64_t *deleted)
{
	MYSQL_BIND	 p[1];
	MYSQL_STMT	*s;
	enum db_status	 st;

	*deleted = 0;
	if (!db_key_ok(owner, DB_KEY_MAX))
		return DB_OK;
	db_bind_str(&p[0], owner, strlen(owner));
	if ((st = db_exec(db, DBS_URL_DELETE_ALL, p, &s)) != DB_OK)
		return st;
	*deleted = (uint64_t)mysql_stmt_affected_rows(s);
	db_done(s);
	return DB_OK;
}

/*
 * Copy the fetched rows into items.  On failure the items already
 * filled are cleared and -1 returned.
 */
static int
db_list_rows(enum db_stmt st, MYSQL_STMT *s, MYSQL_BIND *r,
    struct db_row *row, const char *owner, struct db_url *items, size_t max,
    size_t *n)
{
	struct db_url	*u;
	int		 got = 0;

	while (*n < max && (got = db_fetch(st, s, r, *n == 0)) == 1) {
		u = &items[*n];
		memset(u, 0, sizeof(*u));
		if (db_terminate(row->id, sizeof(row->id), row->idlen) == -1 ||
		    db_copy_value(s, 1, row, &u->value, &u->len) == -1)
			goto fail;
		memcpy(u->id, row->id, (size_t)row->idlen + 1);
		snprintf(u->owner, sizeof(u->owner), "%s", owner);
		u->created_us = row->created_us;
		u->visits = row->visits;
		u->expires_us = row->expires_us;
		u->max_visits = row->max_visits;
		(*n)++;
	}
	if (*n < max && got == -1)
		goto fail;
	return 0;
fail:
	while (*n > 0)
		db_url_clear(&items[--*n]);
	return -1;
}

enum db_status
db_url_list(struct db *db, const char *owner, int64_t after_us,
    const char *after_id, struct db_url *items, size_t max, size_t *n)
{
	MYSQL_BIND	 p[5], r[6];
	MYSQL_STMT	*s;
	struct db_row	*row;
	enum db_stmt	 which;
	enum db_status	 st;
	int64_t		 limit;

	*n = 0;
	/* Nobody owns a non-ascii name; no id sorts after a non-ascii
	 * cursor.  Either way the page is empty, not an error. */
	if (max == 0 || !db_key_ok(owner, DB_KEY_MAX) ||
	    (after_id != NULL && after_id[0] != '\0' &&
	    !db_key_ok(after_id, SIZE_MAX)))
		return DB_OK;
	if ((row = calloc(1, sizeof(*row))) == NULL) {
		log_warnx("db: url list: out of memory");
		return DB_UNAVAILABLE;
	}
	limit = max > 100000 ? 100000 : (int64_t)max;
	db_bind_str(&p[0], owner, strlen(owner));
	if (after_id == NULL) {
		which = DBS_URL_LIST_FIRST;
		db_bind_i64(&p[1], &limit);
	} else {
		which = DBS_URL_LIST_NEXT;
		db_bind_i64(&p[1], &after_us);
		db_bind_i64(&p[2], &after_us);
		db_bind_str(&p[3], after_id, strlen(after_id));
		db_bind_i64(&p[4], &limit);
	}
	if ((st = db_exec(db, which, p, &s)) != DB_OK)
		goto out;
	db_bind_out(&r[0], row->id, sizeof(row->id), &row->idlen);
	db_bind_out(&r[1], row->value, sizeof(row->value), &row->valuelen);
	db_bind_i64(&r[2], &row->created_us);
	db_bind_i64(&r[3], &row->visits);
	db_bind_i64(&r[4], &row->expires_us);
	db_bind_i64(&r[5], &row->max_visits);
	if (db_list_rows(which, s, r, row, owner, items, max, n) == -1)
		st = DB_UNAVAILABLE;
	db_done(s);
out:
	free(row);
	return st;
}

void
db_url_clear(struct db_url *u)
{
	free(u->value);
	u->value = NULL;
	u->len = 0;
}

/* ------------------------------------------------------------------ */
/* transactions of the other db_*.c files (dbi.h)                      */
/* ------------------------------------------------------------------ */

enum db_status
db_tx_begin(struct db *db)
{
	db->last_errno = 0;
	db_check_link(db, 1);
	if (db_ensure(db) != DB_OK)
		return DB_UNAVAILABLE;
	if (mysql_autocommit(db->mysql, 0) != 0) {
		log_warnx("db: begin: %s", mysql_error(db->mysql));
		db_node_failed(db, db->cur);
		db_disconnect(db);
		return DB_UNAVAILABLE;
	}
	db->in_tx = 1;
	return DB_OK;
}

/* One attempt; a statement the server no longer knows (nothing ran)
 * is prepared again, once. */
enum db_status
db_tx_exec(struct db *db, const struct db_sql *q, int slot,
    MYSQL_BIND *param, MYSQL_STMT **out)
{
	unsigned int	 err;
	int		 executed, stale = 0;

	if (!db->in_tx || !db->connected)
		return DB_UNAVAILABLE;
	for (;;) {
		if ((err = db_try_q(db, q, &db->xstmt[slot], param, out,
		    &executed)) == 0)
			return DB_OK;
		switch (db_classify(err)) {
		case DBE_DUPLICATE:
			return DB_DUPLICATE;
		case DBE_NOREF:
			return DB_NOTFOUND;
		case DBE_STALE:
			if (db->xstmt[slot] != NULL) {
				mysql_stmt_close(db->xstmt[slot]);
				db->xstmt[slot] = NULL;
			}
			if (stale++ == 0)
				continue;
			break;
		case DBE_LOST:
			db_node_failed(db, db->cur);
			db_disconnect(db);	/* the server rolls back */
			break;
		default:
			break;
		}
		log_warnx("db: %s (in a transaction): %s (%u)", q->name,
		    db->errmsg, err);
		return DB_UNAVAILABLE;
	}
}

void
db_tx_rollback(struct db *db)
{
	if (!db->connected) {
		db->in_tx = 0;
		return;
	}
	if (mysql_rollback(db->mysql) != 0 ||
	    mysql_autocommit(db->mysql, 1) != 0) {
		log_info("db: rollback: %s, reconnecting",
		    mysql_error(db->mysql));
		db_disconnect(db);	/* which rolls back */
	}
	db->in_tx = 0;
}

enum db_status
db_tx_commit(struct db *db)
{
	if (!db->in_tx || !db->connected) {
		db->in_tx = 0;
		return DB_UNAVAILABLE;
	}
	if (mysql_commit(db->mysql) != 0) {
		db_seterr(db, mysql_errno(db->mysql), mysql_error(db->mysql));
		log_warnx("db: commit: %s (%u)", db->errmsg, db->last_errno);
		if (db_classify(db->last_errno) == DBE_LOST) {
			db_node_failed(db, db->cur);
			db_disconnect(db);
		} else
			db_tx_rollback(db);
		db->in_tx = 0;
		return DB_UNAVAILABLE;
	}
	db->in_tx = 0;
	if (mysql_autocommit(db->mysql, 1) != 0) {
		log_info("db: autocommit: %s, reconnecting",
		    mysql_error(db->mysql));
		db_disconnect(db);
	}
	return DB_OK;
}
