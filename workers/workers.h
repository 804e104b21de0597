/*
 * workers/ — everything that runs inside a worker process.  The map:
 *
 *   worker.c                the loop: accept, read, run the service, write
 *   handoff.c               idle kept connections passed to another worker
 *                           (worker.h: what the two share)
 *   request.c               the request object and the response builder
 *   body.c json.c form.c    request bodies into fields
 *   jwt.c password.c        tokens (HS256) and password hashes (argon2id)
 *   url.c id.c timefmt.c qr.c
 *                           targets, ids, RFC 3339 times, QR codes
 *   auth.c                  the auth service (/users)
 *   shortener.c             the shortener service: routes, links, visit counts
 *   short_input.c           its requests checked: token, URL, limits, paging
 *   short_sub.c             its sub-routes /<id>/stats, /<id>/visits, /<id>/qr
 *   visits.c                visit counts kept in memory and flushed
 *   cache.c                 the redirect cache
 *   status.c                the status service (/metrics, /status)
 *   analytics.c             visit analytics: records and their routes
 *   ua.c geoip.c            User-Agent and Referer; countries
 *   db.c                    the database connection, retries, statement helper
 *                           (db.h: shared by the db_*.c files only)
 *   db_users.c db_links.c db_visits.c db_analytics.c
 *                           one file per thing stored
 *
 * The pure modules (json, form, jwt, password, url, id) never log,
 * never exit and never touch a socket: they return a status and, where
 * useful, fill a caller's error buffer.
 */
#ifndef SHORTD_WORKERS_H
#define SHORTD_WORKERS_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "../daemon/daemon.h"
#include "../proto/proto.h"
#include "../proto/scoreboard.h"
#include "../proto/shcache.h"

struct db;
struct worker_ctx;

/* ------------------------------------------------------------------ */
/* request.c: the request object and the response builder              */
/* ------------------------------------------------------------------ */

struct request {
	uint64_t	 rid;		/* per-worker request number, for logs */
	const char	*method;	/* REQUEST_METHOD */
	const char	*uri;		/* REQUEST_URI as sent */
	char		*path;		/* path part of uri, percent-decoded;
					   owned (malloc'd) */
	size_t		 pathlen;
	const char	*query;		/* QUERY_STRING ("" if none) */
	const char	*content_type;	/* CONTENT_TYPE ("" if none) */
	const char	*authorization;	/* HTTP_AUTHORIZATION or NULL */
	const char	*remote_addr;	/* REMOTE_ADDR or "-" */
	const uint8_t	*body;
	size_t		 bodylen;
	const struct fcgi_parser *fcgi;	/* all params, for request_param() */
};

/*
 * A response sent while it is made (GET /export), for answers too big
 * to hold: the worker gives the handler a sink, the handler sends the
 * status and headers (response_stream_start) and then the body piece
 * by piece (response_stream), each piece going out at once as FastCGI
 * STDOUT records.  Once the headers are out the status cannot change:
 * a failure after that breaks the stream (the worker closes the
 * connection, so the client sees a cut response, never a complete
 * wrong one).
 */
struct response_sink {
	/* Send n bytes of CGI output now, waiting for the front end as
	 * needed.  0, or -1: the connection is gone or stalled. */
	int	(*send)(struct response_sink *, const void *, size_t);
};

struct response {
	int		 status;
	struct buf	 headers;	/* "Name: value\r\n" lines */
	struct buf	 body;
	int		 head_only;	/* HEAD: headers only */
	const char	*content_type;	/* NULL: application/json; else a
					   static string (response_body) */
	struct response_sink *sink;	/* NULL: the response cannot stream */
	int		 streamed;	/* out: the headers went out */
	int		 broken;	/* out: the stream failed midway */
};

/* Fill r from a ready parser.  Returns 0, or an HTTP status (400) if
 * the request line is unusable.  request_free() releases path. */
int	request_init(struct request *, const struct fcgi_parser *,
	    uint64_t rid);
void	request_free(struct request *);
const char *request_param(const struct request *, const char *name);
/* Copy the decoded value of query key into dst (NUL-terminated).
 * Returns the length, or -1 if absent, -2 if it does not fit. */
int	request_query(const struct request *, const char *key, char *dst,
	    size_t dstlen);

void	response_init(struct response *);
void	response_free(struct response *);
void	response_header(struct response *, const char *name,
	    const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Set status and a JSON body (Content-Type: application/json). */
void	response_json(struct response *, int status, const char *json);
/* Set status and a body of another type (the few sub-routes that
 * answer with something else than JSON, e.g. image/svg+xml).
 * content_type must outlive the response (a string literal). */
void	response_body(struct response *, int status,
	    const char *content_type, const void *, size_t);
/* {"detail": detail, "message": message} */
void	response_error(struct response *, int status, const char *detail,
	    const char *message);
void	response_bad_method(struct response *, const char *allow);
void	response_unavailable(struct response *, int retry_after);
void	response_no_content(struct response *, int status);
/* Streaming (see struct response_sink): send status, the headers set
 * so far and content_type, without Content-Length (the body's length
 * is not known); then body bytes.  0, or -1 (no sink, or the stream
 * broke: resp->broken is set and the handler must stop). */
int	response_stream_start(struct response *, int status,
	    const char *content_type);
int	response_stream(struct response *, const void *, size_t);
/* Serialise as CGI output: "Status: ...\r\nheaders\r\n\r\nbody". */
int	response_serialize(const struct response *, struct buf *);
const char *http_reason(int status);

/* ------------------------------------------------------------------ */
/* json.c: strict reading of request bodies, and string escaping      */
/* ------------------------------------------------------------------ */

/* A field a handler wants from a body.  names[] are accepted spellings
 * (aliases), the first is the canonical one used in messages.  On
 * success value is malloc'd, NUL-terminated and owned by the field
 * (fields_free()); len excludes the NUL.
 *
 * type and nullable were added after the string-only API; both are
 * zero in an initialiser that does not name them, which keeps the old
 * meaning (a string, null refused).  An integer or boolean field fills
 * num (a boolean with 0 or 1) and leaves value NULL.  A nullable field
 * given as JSON null is present with is_null set. */
#define FIELD_NAMES	4
enum field_type {
	FIELD_STRING = 0,
	FIELD_INT,		/* JSON integer (no fraction, no exponent) */
	FIELD_BOOL,		/* JSON true or false */
	FIELD_LIST		/* JSON array of strings without ',' (a
				   form gives them as one string): value
				   holds them joined by ',', num counts
				   them */
};
struct field {
	const char	*names[FIELD_NAMES];	/* NULL-terminated list */
	int		 required;
	char		*value;
	size_t		 len;
	int		 present;
	enum field_type	 type;		/* in: what the value must be */
	int		 nullable;	/* in: JSON null is accepted */
	int		 is_null;	/* out: given as null */
	int64_t		 num;		/* out: FIELD_INT, FIELD_BOOL */
};

enum body_status {
	BODY_OK = 0,
	BODY_MALFORMED,		/* not parseable: 400 */
	BODY_INVALID,		/* a field is missing/of wrong type: 400 */
	BODY_NOMEM
};

/* Parse a JSON object body into fields.  The top level must be one
 * object; values of wanted fields must be strings without NUL and in
 * valid UTF-8; unknown keys are ignored; a wanted key given twice is
 * refused.  err gets a message for the user. */
enum body_status json_parse_fields(const char *, size_t, struct field *,
	    size_t nfields, char *err, size_t errlen);
/* An integer in JSON's grammar (-?(0|[1-9][0-9]*)) that fits int64_t:
 * 0 and *v, or -1.  Forms and JSON share it. */
int	field_parse_int(const char *, size_t, int64_t *v);
/* Also shared by the two readers: the field one of whose names is key
 * (keylen bytes), or NULL; and a message into err (NULL: none). */
struct field *field_match(struct field *, size_t n, const char *key,
	    size_t keylen);
void	field_err(char *err, size_t errlen, const char *fmt, ...)
	    __attribute__((format(printf, 3, 4)));
enum body_status fields_required(const struct field *, size_t n, char *err,
	    size_t errlen);
/* The value of hex digit c, or -1 (JSON's \u escapes, forms' %XX). */
int	hex_value(char c);
/* Append s as a JSON string literal (quotes included). */
int	json_put_str(struct buf *, const char *, size_t);
/* Pieces of the strict JSON grammar, shared by the body reader and
 * jwt.c: whitespace around one separator between token offsets, and a
 * literal or number.  0 if well-formed, else -1. */
int	json_gap_ok(const char *js, size_t len, int from, int to, char sep);
int	json_primitive_ok(const char *, size_t);
/* 1 if the bytes are valid UTF-8 without NUL. */
int	utf8_valid(const char *, size_t);

/* form.c: application/x-www-form-urlencoded into the same fields. */
enum body_status form_parse_fields(const char *, size_t, struct field *,
	    size_t nfields, char *err, size_t errlen);
/* Percent-decode (and '+' to space if plus) src into dst (capacity
 * dstlen incl. NUL).  Returns decoded length or -1 on a bad escape
 * or overflow. */
long	url_decode(const char *src, size_t srclen, char *dst, size_t dstlen,
	    int plus);

/* body.c: choose JSON or form by Content-Type, then parse. */
enum body_status body_parse(const struct request *, struct field *,
	    size_t nfields, char *err, size_t errlen);
/* The same for a handler: 0, or -1 with the 400 (or 503) in resp. */
int	body_read(const struct worker_ctx *, const struct request *,
	    struct response *, struct field *, size_t nfields);
void	fields_free(struct field *, size_t nfields);
/* Empty the fields' results without freeing them (json.c). */
void	fields_reset(struct field *, size_t nfields);

/* ------------------------------------------------------------------ */
/* jwt.c: HS256 JSON Web Tokens (RFC 7519), libcrypto HMAC             */
/* ------------------------------------------------------------------ */

#define JWT_SUB_MAX	64

struct jwt_claims {
	char	 sub[JWT_SUB_MAX + 1];
	int64_t	 iat;
	int64_t	 exp;
	/* Set by keys.c when the caller presented an API key, not a
	 * JWT: sub is the key's user, iat INT64_MAX (a password change
	 * does not revoke keys), key_id the key's id.  jwt.c leaves
	 * them zero. */
	int	 key;
	char	 key_id[16];
};

enum jwt_status {
	JWT_OK = 0,
	JWT_MALFORMED,		/* shape, base64url, JSON */
	JWT_BAD_ALG,		/* anything but HS256 */
	JWT_BAD_SIGNATURE,
	JWT_EXPIRED,
	JWT_NOT_YET_VALID,	/* iat in the future beyond leeway */
	JWT_MISSING_CLAIM
};

/* Sign {"sub","iat","exp"} into out (NUL-terminated). */
int	jwt_sign(const uint8_t *key, size_t keylen, const char *sub,
	    int64_t iat, int64_t exp, char *out, size_t outlen);
enum jwt_status jwt_verify(const uint8_t *key, size_t keylen,
	    const char *token, size_t toklen, int64_t now, int64_t leeway,
	    struct jwt_claims *);
const char *jwt_strerror(enum jwt_status);
/* base64url without padding; return output length or -1. */
long	b64url_encode(const uint8_t *, size_t, char *, size_t);
long	b64url_decode(const char *, size_t, uint8_t *, size_t);

/* ------------------------------------------------------------------ */
/* password.c: argon2id                                                */
/* ------------------------------------------------------------------ */

#define PASSWORD_HASH_MAX	256

struct argon2_params {
	uint32_t	 m_kib;
	uint32_t	 t;
	uint32_t	 p;
};

/* Hash with a fresh random salt into a PHC string. 0 or -1. */
int	password_hash(const struct argon2_params *, const char *, size_t,
	    char *out, size_t outlen);
/* 1 match, 0 mismatch, -1 unusable hash. */
int	password_verify(const char *phc, const char *, size_t);
/* 1 if phc's parameters are weaker than p (or not argon2id). */
int	password_needs_rehash(const char *phc, const struct argon2_params *);
/* Verify against a fixed dummy hash of the same parameters, so an
 * unknown user costs what a wrong password costs.  The dummy is made
 * once by password_dummy_init() (per worker). */
int	password_dummy_init(const struct argon2_params *, char *out,
	    size_t outlen);

/* ------------------------------------------------------------------ */
/* url.c, id.c: shortener helpers                                      */
/* ------------------------------------------------------------------ */

#define URL_MAX		2048
#define ID_LEN		7
#define ID_MAX		64

/* 0 if u is an acceptable target URL, else -1 and a reason in err. */
int	url_validate(const char *u, size_t len, char *err, size_t errlen);
/* Fill out with ID_LEN base62 chars from getrandom + NUL; never a
 * reserved word.  0 or -1 (no entropy). */
int	id_generate(char out[ID_LEN + 1]);
/* FNV-1a of an id, for in-memory tables (ids are random or chosen by
 * users: nothing to attack). */
uint32_t id_hash(const char *id);
/* Fill out with n base62 characters from getrandom and a NUL.  0, or
 * -1 (no entropy). */
int	id_base62(char *out, size_t n);
/* 1 if s (case-insensitively) is a reserved word. */
int	id_reserved(const char *s, size_t len);
/* 1 if s has the shape of an id a path may name. */
int	id_valid(const char *s, size_t len);
/* A custom alias: ALIAS_MIN..ID_MAX of [A-Za-z0-9_-], not starting
 * with '_' or '-', not reserved.  0, or -1 and a reason in err. */
#define ALIAS_MIN	3
int	id_alias_check(const char *s, size_t len, char *err, size_t errlen);
/* Usernames: 1..64 bytes of [A-Za-z0-9._@-]. */
int	username_valid(const char *, size_t);

/* timefmt.c: RFC 3339 timestamps <-> microseconds since the epoch.
 * parse: 0 or -1 (not RFC 3339, or before 1970); format: UTC with a
 * "Z", fraction only when there is one; the length, or -1. */
#define RFC3339_MAX	32
int	rfc3339_parse(const char *, size_t, int64_t *us);
int	rfc3339_format(int64_t us, char *out, size_t outlen);
/* Append us as a JSON string of its RFC 3339 form, 0 as null. */
void	rfc3339_put(struct buf *, int64_t us);

/* csv.c: RFC 4180 records (see the top of csv.c) */
#define CSV_FIELDS_MAX	32
struct csv_reader {
	const char	*s;
	size_t		 len;
	size_t		 pos;
	unsigned long	 line;		/* the physical line at pos, from 1 */
	const char	*why;		/* what was wrong, after a refusal */
	struct buf	 scratch;	/* the current record's fields */
	size_t		 off[CSV_FIELDS_MAX];
};
struct csv_record {
	unsigned long	 line;		/* where the record begins */
	size_t		 nfields;
	const char	*field[CSV_FIELDS_MAX];	/* NUL-terminated */
	size_t		 len[CSV_FIELDS_MAX];
};
enum csv_status { CSV_RECORD, CSV_END, CSV_MALFORMED, CSV_UNTERMINATED,
    CSV_NOMEM };
void		 csv_reader_init(struct csv_reader *, const char *, size_t);
void		 csv_reader_free(struct csv_reader *);
enum csv_status	 csv_next(struct csv_reader *, struct csv_record *);
int		 csv_put(struct buf *, const char *, size_t, int first);
int		 csv_end(struct buf *);

/* ua.c: what a visit's User-Agent and Referer say (visit analytics).
 * Class ids are stored in the database (visits.browser, .os, .device):
 * append new ones, never renumber.  Id 0 is "unknown" (null). */
enum {
	UA_B_UNKNOWN = 0, UA_B_CHROME, UA_B_FIREFOX, UA_B_SAFARI, UA_B_EDGE,
	UA_B_OPERA, UA_B_SAMSUNG, UA_B_IE, UA_B_YANDEX, UA_B_UC,
	UA_B_VIVALDI, UA_B_FACEBOOK, UA_B_INSTAGRAM,
	/* bots */
	UA_B_GOOGLEBOT, UA_B_BINGBOT, UA_B_SLACKBOT, UA_B_FACEBOOKHIT,
	UA_B_TWITTERBOT, UA_B_DISCORDBOT, UA_B_WHATSAPP, UA_B_TELEGRAM,
	UA_B_LINKEDIN, UA_B_APPLEBOT, UA_B_YANDEXBOT, UA_B_BAIDU,
	UA_B_DUCKDUCKBOT, UA_B_SKYPE, UA_B_PINTEREST, UA_B_REDDIT,
	UA_B_CURL, UA_B_WGET, UA_B_PYREQUESTS, UA_B_SCRIPT, UA_B_HEADLESS,
	UA_B_BOT,
	UA_BROWSERS
};
enum {
	UA_O_UNKNOWN = 0, UA_O_WINDOWS, UA_O_MACOS, UA_O_IOS, UA_O_ANDROID,
	UA_O_LINUX, UA_O_CHROMEOS,
	UA_OSES
};
enum {
	UA_D_UNKNOWN = 0, UA_D_DESKTOP, UA_D_MOBILE, UA_D_TABLET, UA_D_BOT,
	UA_DEVICES
};
struct ua_class {
	uint8_t	 browser;	/* UA_B_* (a bot's family when bot) */
	uint8_t	 os;		/* UA_O_* */
	uint8_t	 device;	/* UA_D_*; UA_D_BOT exactly when bot */
	uint8_t	 bot;		/* crawler, link previewer or script */
};
/* Classify a User-Agent of len bytes (any bytes; NULL or empty: all
 * unknown, not a bot). */
void	ua_classify(const char *ua, size_t len, struct ua_class *);
/* The names of class ids, NULL for unknown (and out of range). */
const char *ua_browser_name(unsigned int);
const char *ua_os_name(unsigned int);
const char *ua_device_name(unsigned int);
/* The host of a Referer (lowercase, no port, no user info), cut to
 * outlen - 1 bytes, into out.  Its length, or 0 (no usable host). */
#define REFERER_HOST_MAX	255
int	referer_host(const char *ref, size_t len, char *out, size_t outlen);

/* qr.c: the SVG drawing of a QR code (libqrencode) of text, appended
 * to out.  0, or -1 (text too long for a QR code, or no memory). */
int	qr_svg(const char *text, size_t len, struct buf *out);

/* ------------------------------------------------------------------ */
/* db.c: the worker's persistent MySQL connection; db_users.c,         */
/* db_links.c, db_visits.c: the statements of each table (db.h)        */
/* ------------------------------------------------------------------ */

enum db_status {
	DB_OK = 0,
	DB_NOTFOUND,
	DB_DUPLICATE,
	DB_UNAVAILABLE		/* connection lost / server down: 503 */
};

struct db_url {
	char	 id[ID_MAX + 1];
	char	 owner[JWT_SUB_MAX + 1];
	char	*value;		/* malloc'd, owned by the struct */
	size_t	 len;
	int64_t	 created_us;
	/* schema 2; 0 stands for SQL NULL (never, none, no limit) */
	int64_t	 updated_us;	/* db_url_get only */
	int64_t	 visits;	/* counted and flushed so far */
	int64_t	 last_visit_us;	/* db_url_get only */
	int64_t	 expires_us;
	int64_t	 max_visits;
};

/* 0 if a db_host value ("host[:port],...") parses, else -1 and why. */
int		 db_hosts_check(const char *, char *err, size_t errlen);
/* What PUT changes: value when non-NULL, the limits when their set_
 * flag is on (0 clears a limit). */
struct db_url_change {
	const char	*value;
	size_t		 len;
	int		 set_expires;
	int64_t		 expires_us;
	int		 set_max_visits;
	int64_t		 max_visits;
};

/* One recorded visit (analytics), waiting in a worker's batch. */
struct visit_rec {
	int64_t		 at_ms;		/* wall clock */
	const char	*ref;		/* referer host, or NULL */
	uint32_t	 uniq;		/* tells visits of one ms apart */
	uint32_t	 next;		/* visits.c: the link's next one */
	char		 country[2];	/* ISO 3166-1 alpha-2; "\0": none */
	uint8_t		 browser;	/* UA_B_* */
	uint8_t		 os;		/* UA_O_* */
	uint8_t		 device;	/* UA_D_* (UA_D_BOT: a bot) */
};
#define VISIT_REC_NONE	UINT32_MAX

/* Visits of one link waiting to be added (visits.c -> db_visits.c):
 * count for urls.visits (may be 0) and the chain of its records,
 * rec_first then rec[].next, in rec (VISIT_REC_NONE: none). */
struct db_visits {
	const char	*id;
	int64_t		 count;
	int64_t		 last_us;	/* 0: no counted visit */
	const struct visit_rec *rec;
	uint32_t	 rec_first;
	int		 pending;	/* out: surely not written */
};
#define DB_VISITS_BATCH	32	/* links per UPDATE of a flush */

struct db	*db_new(const struct config *);
void		 db_free(struct db *);
/* Connect if not connected (once, no sleep).  DB_OK or DB_UNAVAILABLE. */
enum db_status	 db_ensure(struct db *);
/* Check the schema version; 0 ok, -1 with message. */
int		 db_check_schema(struct db *, char *err, size_t errlen);
/* Connections made so far (the first one included). */
uint64_t	 db_connects(const struct db *);

enum db_status	 db_user_create(struct db *, const char *user,
		    const char *phc, int64_t now);
/* phc gets the stored hash; pw_changed its change time (s). */
enum db_status	 db_user_get(struct db *, const char *user, char *phc,
		    size_t phclen, int64_t *pw_changed);
enum db_status	 db_user_set_password(struct db *, const char *user,
		    const char *phc, int64_t now);

enum db_status	 db_url_insert(struct db *, const char *id, const char *owner,
		    const char *value, size_t len, int64_t now_us);
/* The same with limits (0: none), for a token issued at issued (unix
 * s): DB_DUPLICATE the id is taken, DB_NOTFOUND no row was written
 * because the owner does not exist or changed its password after
 * issued (pw_changed > issued). */
enum db_status	 db_url_insert_limited(struct db *, const char *id,
		    const char *owner, int64_t issued, const char *value,
		    size_t len, int64_t now_us, int64_t expires_us,
		    int64_t max_visits);
/* The owner's oldest link to exactly this value without limits, for
 * "reuse": DB_OK with id filled, or DB_NOTFOUND. */
enum db_status	 db_url_find(struct db *, const char *owner,
		    const char *value, size_t len, char id[ID_MAX + 1]);
/* Count one visit of a link with a visit limit, if it has visits left
 * and has not expired at now_us: DB_OK counted, DB_NOTFOUND not. */
enum db_status	 db_url_hit(struct db *, const char *id, int64_t now_us);
/* Add the counted visits of n links, sorted by id, in one
 * transaction (DB_VISITS_BATCH links per statement), waiting at most
 * a second for a row lock; with skip (or after such a wait ran out)
 * rows other sessions hold are skipped, not waited for.  DB_OK:
 * committed, except the links marked pending (rows skipped).
 * Otherwise err says why, and pending marks every link surely not
 * written (all of them unless the connection went during COMMIT). */
enum db_status	 db_url_add_visits(struct db *, struct db_visits *,
		    size_t n, int skip, char *err, size_t errlen);
enum db_status	 db_url_change(struct db *, const char *id,
		    const struct db_url_change *, int64_t now_us);
/* On DB_OK, u is filled (free u->value with db_url_clear). */
enum db_status	 db_url_get(struct db *, const char *id, struct db_url *u);
enum db_status	 db_url_update(struct db *, const char *id,
		    const char *value, size_t len, int64_t now_us);
enum db_status	 db_url_delete(struct db *, const char *id);
enum db_status	 db_url_delete_all(struct db *, const char *owner,
		    uint64_t *deleted);
/* The owner's links, newest first, strictly after (after_us, after_id)
 * when after_id is non-NULL.  Fills up to max entries of items;
 * *n gets the count.  Each items[i].value must be cleared. */
enum db_status	 db_url_list(struct db *, const char *owner,
		    int64_t after_us, const char *after_id, struct db_url *items,
		    size_t max, size_t *n);
void		 db_url_clear(struct db_url *);

/* db_search.c: titles and tags, the filtered listing, transactions */
#define TITLE_MAX	200	/* characters */
#define TAGS_MAX	20	/* tags a link may carry */
#define TAG_MAX		32	/* [a-z0-9_-] */
#define TAGS_TEXT_MAX	(TAGS_MAX * (TAG_MAX + 1))

struct db_meta {
	int	 has_title;
	char	 title[TITLE_MAX * 4 + 1];	/* UTF-8 */
	char	 tags[TAGS_TEXT_MAX + 1];	/* '|'-joined; "": none */
};
/* What a create or PUT sets: the title when set_title (NULL clears),
 * the tags when set_tags (none clears). */
struct db_meta_change {
	int		 set_title;
	const char	*title;
	int		 set_tags;
	const char	*tags[TAGS_MAX];
	size_t		 ntags;
};
/* A new link, as db_url_insert_limited takes it. */
struct db_url_new {
	const char	*id, *owner, *value;
	size_t		 len;
	int64_t		 issued, now_us, expires_us, max_visits;
};
enum db_sort { SORT_CREATED_DESC, SORT_CREATED_ASC, SORT_VISITS_DESC,
    SORT_VISITS_ASC };
struct db_search {
	const char	*user;
	enum db_sort	 sort;
	const char	*tags[TAGS_MAX];	/* links with all of them */
	size_t		 ntags;
	const char	*match;		/* FULLTEXT boolean query, or NULL */
	int64_t		 after_key;	/* the sort key of the cursor */
	const char	*after_id;	/* NULL: the first page */
};
struct db_item {
	struct db_url	 u;
	struct db_meta	 m;
	int64_t		 key;		/* the sort key, for the cursor */
};

enum db_status	 db_tx_begin(struct db *, uint64_t *gen);
enum db_status	 db_tx_commit(struct db *, uint64_t gen);
void		 db_tx_rollback(struct db *, uint64_t gen);
enum db_status	 db_meta_get(struct db *, const char *id, struct db_meta *);
enum db_status	 db_url_create_meta(struct db *, const struct db_url_new *,
		    const struct db_meta_change *);
enum db_status	 db_url_change_meta(struct db *, const char *id,
		    const struct db_url_change *, int64_t now_us,
		    const struct db_meta_change *);
/* The user's links matching q, in q's order, after its cursor; up to
 * max in items (clear them with db_items_clear). */
enum db_status	 db_search(struct db *, const struct db_search *,
		    struct db_item *, size_t max, size_t *n);
void		 db_items_clear(struct db_item *, size_t n);

/* db_import.c: GET /export's pages, POST /import's writes */
#define IMPORT_TAKEN_FREE	0
#define IMPORT_TAKEN_SAME	1	/* the caller's, to the same URL */
#define IMPORT_TAKEN_OTHER	2	/* anyone else's, or another URL */
struct db_import_row {
	char		 id[ID_MAX + 1];
	const char	*value;		/* the URL */
	size_t		 len;
	const char	*title;		/* NULL: none */
	size_t		 title_len;
	const char	*tags;		/* '|'-joined, "" none */
	size_t		 tags_len;
	int64_t		 created_us;
	int64_t		 expires_us;	/* 0: never */
	int64_t		 max_visits;	/* 0: no limit */
	int64_t		 visits;
	int		 taken;		/* out: IMPORT_TAKEN_* */
	/* the caller's (linkcsv.c) */
	unsigned long	 line;		/* where its record begins */
	const char	*given;		/* the id the file gave, or NULL */
};
/* Who holds the ids of rows (their taken field). */
enum db_status	 db_import_lookup(struct db *, const char *user,
		    struct db_import_row *, size_t n);
/* Insert rows and their tags for user in one transaction, in
 * statements of bounded size: DB_OK (committed), DB_DUPLICATE (an id
 * was taken meanwhile), DB_NOTFOUND (the user is gone), or
 * DB_UNAVAILABLE; on anything but DB_OK nothing was written.
 * progress() runs between statements (NULL: none). */
enum db_status	 db_import_write(struct db *, const char *user,
		    const struct db_import_row *, size_t n,
		    void (*progress)(void *), void *arg);

/* db_keys.c: API keys ("sk_<id>_<secret>") and account deletion */
#define KEY_ID_LEN	12	/* base62 */
#define KEY_SECRET_LEN	43	/* base62: 256 bits */
#define KEY_NAME_MAX	100	/* characters */
#define KEY_TEXT_LEN	(3 + KEY_ID_LEN + 1 + KEY_SECRET_LEN)

struct db_key {
	char		 id[KEY_ID_LEN + 1];
	char		 user[JWT_SUB_MAX + 1];
	char		 name[KEY_NAME_MAX * 4 + 1];	/* UTF-8 */
	unsigned char	 hash[32];	/* SHA-256 of the secret */
	int64_t		 created_us;
	int64_t		 expires_us;	/* 0: never */
	int64_t		 last_used_us;	/* 0: never */
	int		 revoked;
};

enum db_status	 db_key_insert(struct db *, const struct db_key *);
/* Any key, revoked or not: DB_OK with k filled, or DB_NOTFOUND. */
enum db_status	 db_key_get(struct db *, const char *id, struct db_key *);
/* The user's keys that are not revoked, newest first (no hashes). */
enum db_status	 db_key_list(struct db *, const char *user,
		    struct db_key *, size_t max, size_t *n);
enum db_status	 db_key_count(struct db *, const char *user, int64_t *);
enum db_status	 db_key_revoke(struct db *, const char *user,
		    const char *id);
enum db_status	 db_key_touch(struct db *, const char *id, int64_t used_us);
/* The user and, by cascade, their links, tags and keys. */
enum db_status	 db_user_delete(struct db *, const char *user);

/* db_analytics.c: the visits and visits_daily tables. */
struct db_visit_row {
	int64_t		 at_ms;
	uint32_t	 uniq;
	char		 referer[REFERER_HOST_MAX + 1];	/* "": none */
	char		 country[3];			/* "": unknown */
	uint8_t		 browser, os, device;
};
enum { DB_BOTS_INCLUDE = 0, DB_BOTS_EXCLUDE, DB_BOTS_ONLY };
/* A period's summary (GET /<id>/stats, GET /stats): the caller sets
 * the period and the days array (ndays of each, zeroed), the rest is
 * added up.  Days are UTC days since the epoch.  visits, the classes
 * and the tops count the visit rows kept (bots apart); the days and
 * bots also count what retention rolled up (visits_daily). */
#define DB_TOP_MAX	10
struct db_top {
	char		 name[REFERER_HOST_MAX + 1];	/* "": none */
	int64_t		 visits;
};
struct db_summary {
	int64_t		 since_ms, until_ms;
	int64_t		 first_day;
	size_t		 ndays;
	int64_t		*day_visits, *day_bots;
	int64_t		 visits, bots;
	int64_t		 browsers[UA_BROWSERS];
	int64_t		 oses[UA_OSES];
	int64_t		 devices[UA_DEVICES];
	struct db_top	 referers[DB_TOP_MAX], countries[DB_TOP_MAX];
	size_t		 nreferers, ncountries;
};
/* Summarise link key's visits, or (user) all of user key's links'. */
enum db_status	 db_visit_summary(struct db *, const char *key, int user,
		    struct db_summary *);
/* Retention (analytics.c drives it): take (lock) or give back the
 * database's retention lock, DB_NOTFOUND when another session has it;
 * the next link after `after` with visit rows (DB_NOTFOUND: none);
 * roll up and delete, in one transaction, the oldest rows of link id
 * before cutoff_ms (at most a few thousand; *more when more are left). */
enum db_status	 db_visit_retention_lock(struct db *, int lock);
enum db_status	 db_visit_next_link(struct db *, const char *after,
		    char id[ID_MAX + 1]);
enum db_status	 db_visit_rollup(struct db *, const char *id,
		    int64_t cutoff_ms, int *more, uint64_t *deleted);

/* Link id's visits in [since_ms, until_ms), newest first, strictly
 * before (before_ms, before_uniq), bots as DB_BOTS_* says: up to max
 * rows, *n of them. */
enum db_status	 db_visit_list(struct db *, const char *id, int64_t since_ms,
		    int64_t until_ms, int bots, int64_t before_ms,
		    uint32_t before_uniq, struct db_visit_row *rows,
		    size_t max, size_t *n);

/* ------------------------------------------------------------------ */
/* The services and the worker loop                                    */
/* ------------------------------------------------------------------ */

/* ------------------------------------------------------------------ */
/* visits.c: per-worker visit counts, flushed to the database in       */
/* batches (see the top of visits.c for the bounds)                    */
/* ------------------------------------------------------------------ */

struct visits;

struct visits	*visits_new(int flush_ms);
void		 visits_free(struct visits *);
/* Count a visit of id at now_us (wall clock, for last_visit_at);
 * now_ms is CLOCK_MONOTONIC, for the flush schedule.  0, or -1 if the
 * table is full and the visit was not counted. */
int		 visits_add(struct visits *, const char *id, int64_t now_us,
		    int64_t now_ms);
/* The same for count (0 or 1) visits with a record r (copied, NULL:
 * none): a bot's visit or one of a limited link, counted elsewhere,
 * has count 0.  0, or -1 if the link could not be taken (the visit is
 * neither counted nor recorded). */
int		 visits_record(struct visits *, const char *id, int count,
		    const struct visit_rec *r, int64_t now_us, int64_t now_ms);
/* Milliseconds until a flush is due (0: now), -1 if nothing waits. */
int		 visits_due(const struct visits *, int64_t now_ms);
/* Write what waits.  Visits surely not written (their row locked by
 * another session, the database away, the transaction rolled back)
 * are kept for a later flush, tried again after a back-off; dropped
 * (and logged) only if the COMMIT may have applied them: counted at
 * most once.  Never waits more than about a second for a row lock. */
void		 visits_flush(struct visits *, struct db *, int64_t now_ms);
size_t		 visits_pending(const struct visits *);	/* links */

/* ------------------------------------------------------------------ */
/* cache.c: the redirect cache a shortener pool's workers share,       */
/* checked against version counters in the scoreboard (see cache.c)    */
/* ------------------------------------------------------------------ */

#define CACHE_VALUE_MAX	SHC_DATA	/* bytes of id and URL an entry holds */
#define CACHE_MISS	(-1)	/* cache_get: not there, or not current */
#define CACHE_CORRUPT	(-2)	/* cache_get: an entry failed its checksum
				   (now emptied) */

struct cache;

/* What a reader saw of the shared counters before its database read. */
struct cache_stamp {
	uint32_t	 hash;		/* of the id */
	uint32_t	 epoch;
	uint32_t	 ver;		/* of the id's bucket */
};

/* A cache in the bytes at mem (shared memory the caller mapped; every
 * process that attaches to it must pass the same seed), each entry
 * answering for ttl_ms at most.  NULL if mem holds no slot or memory
 * ran out.  cache_free() frees the handle, not mem. */
struct cache	*cache_attach(void *mem, size_t bytes, uint64_t seed,
		    int ttl_ms);
/* The same in private memory of its own, for up to entries links. */
struct cache	*cache_new(size_t entries, int ttl_ms);
void		 cache_free(struct cache *);
size_t		 cache_slots(const struct cache *);
/* Readers: the stamp of id, to be taken before the database read. */
void		 cache_stamp(const struct sb_cache *, const char *id,
		    struct cache_stamp *);
/* id's target (NUL-terminated in value), its length and expiry, if an
 * entry for id was stored with the same stamp less than the TTL before
 * now_ms (CLOCK_MONOTONIC): 0, else CACHE_MISS or CACHE_CORRUPT. */
int		 cache_get(const struct cache *, const char *id,
		    const struct cache_stamp *, int64_t now_ms,
		    char value[CACHE_VALUE_MAX + 1], size_t *len,
		    int64_t *expires_us);
/* Keep what the database answered for id, with the stamp taken before
 * the read and now_ms from then, in place of the oldest entry it may
 * go to.  0, or -1 if it does not fit or another process is writing
 * there. */
int		 cache_put(struct cache *, const char *id,
		    const struct cache_stamp *, int64_t now_ms,
		    const char *value, size_t len, int64_t expires_us);
/* Writers, before and after a change: of id, or of any number of
 * links.  A NULL sb_cache (no scoreboard) is allowed. */
void		 cache_bump(struct sb_cache *, const char *id);
void		 cache_bump_all(struct sb_cache *);
/* Count a lookup for /metrics: what cache_get returned. */
void		 cache_count(struct sb_cache *, int got);

/* ------------------------------------------------------------------ */
/* keys.c: who a request comes from (a login token or an API key), and */
/* the routes /users/keys                                              */
/* ------------------------------------------------------------------ */

struct worker_ctx;

/* 1 if the request presents an API key (X-Api-Key, or an
 * Authorization value starting "sk_"), whether good or not. */
int	 cred_is_key(const struct request *);
/* Check the credential: a JWT's signature and claims (CPU only: see
 * cred_live), or an API key, looked up in the database (never
 * cached).  0 and the claims, or -1 with the 403 (503) in resp. */
int	 cred_verify(struct worker_ctx *, const struct request *,
	    struct response *, struct jwt_claims *);
/* A JWT is refused once its user is gone or changed the password
 * after it was issued; a key was checked whole by cred_verify.  0, or
 * -1 with the 403 (503) in resp, replacing what it held. */
int	 cred_live(struct worker_ctx *, struct response *,
	    const struct jwt_claims *);
/* Both: 0 and the claims, or -1 with the answer in resp. */
int	 cred_check(struct worker_ctx *, const struct request *,
	    struct response *, struct jwt_claims *);
/* A login token's user for the calls keys may not make: 0, or -1 with
 * the 403 (a key, or a bad token) or 503 in resp. */
int	 cred_login_only(struct worker_ctx *, const struct request *,
	    struct response *, struct jwt_claims *);
/* /users/keys and /users/keys/<id>: 1 if path is one of them (the
 * answer is then in resp), else 0. */
int	 keys_route(struct worker_ctx *, const struct request *,
	    struct response *);
/* Write the keys' last use times counted so far (batched: at most one
 * write per key per visits_flush_ms).  keys_due: ms until a flush is
 * due, -1 if nothing waits. */
int	 keys_due(const struct worker_ctx *, int64_t now_ms);
void	 keys_flush(struct worker_ctx *);

/* geoip.c: the visitor's country from a MaxMind DB (libmaxminddb)     */
/* ------------------------------------------------------------------ */

struct geoip;

/* Open path (memory-mapped): the handle, or NULL and why in err. */
struct geoip	*geoip_open(const char *path, char *err, size_t errlen);
void		 geoip_close(struct geoip *);
/* 0 if path is "" or a MaxMind DB that opens; else -1 and why. */
int		 geoip_check(const char *path, char *err, size_t errlen);
/* The ISO 3166-1 alpha-2 code of addr (textual IPv4 or IPv6) in cc:
 * 0, or -1 (unknown; cc is zeroed). */
int		 geoip_country(struct geoip *, const char *addr, char cc[2]);

/* What a handler sees: the worker's long-lived state. */
struct worker_ctx {
	const struct config	*cfg;
	struct db		*db;		/* NULL if the service has no_db */
	char			 dummy_hash[PASSWORD_HASH_MAX];
	const struct scoreboard	*sb;		/* read-only view, may be NULL */
	struct visits		*visits;	/* shortener; NULL: not counted */
	struct sb_cache		*sbc;		/* the scoreboard's, shared by all
						   workers; NULL: none */
	const struct shc_map	*cachemap;	/* the pool's shared cache
						   region; NULL: none */
	struct cache		*cache;		/* shortener; NULL: off */
	int			 analytics;	/* shortener: record visits */
	struct analytics	*an;		/* analytics.c's, NULL: off */
	struct geoip		*geoip;		/* shortener; NULL: no country */
	/* Hand the worker's idle kept connections to the pool's other
	 * workers: a service calls it before work no request waits for
	 * (a visit flush), so that requests the front end sends on them
	 * meanwhile are not held up.  Never NULL. */
	void			(*let_go)(struct worker_ctx *);
	/* The request in hand is making progress (a page of a streamed
	 * answer, a batch of an import): its request_timeout clock
	 * starts again.  Never NULL. */
	void			(*progress)(struct worker_ctx *);
	/* The pool's turn to flush visit counts (struct sb_pool), or
	 * NULL: one worker flushes at a time, the others serve. */
	_Atomic int64_t		*flush_lease;
	/* The pool's count of redirects to ids that do not exist, for
	 * /metrics, or NULL. */
	_Atomic uint64_t	*orphan_visits;
};

typedef void	 (*handler_fn)(struct worker_ctx *, const struct request *,
		    struct response *);

/* A pool's routes: one entry point chosen at fork.  tick and fini are
 * optional: tick runs on every turn of the worker's loop and returns
 * the milliseconds until it wants to run again (-1: no wish); fini
 * runs once before the worker exits, while the database is still
 * there. */
struct service {
	const char	*name;
	int		 (*init)(struct worker_ctx *);	/* 0 or -1 */
	handler_fn	 handle;
	int		 no_db;		/* 1: needs no database connection */
	int		 (*tick)(struct worker_ctx *);
	void		 (*fini)(struct worker_ctx *);
};

/* analytics.c: visit records and the routes that read them (see the
 * top of analytics.c). */
int	 analytics_init(struct worker_ctx *);
void	 analytics_fini(struct worker_ctx *);
/* Fill r for a visit of this request at now_us (ref receives the
 * referer host r->ref points to).  1 if the visitor is a bot, else 0. */
int	 analytics_visit(const struct worker_ctx *, const struct request *,
	    int64_t now_us, struct visit_rec *r,
	    char ref[REFERER_HOST_MAX + 1]);
/* GET /<id>/visits */
void	 analytics_visits(struct worker_ctx *, const struct request *,
	    struct response *, const char *id);
/* GET /<id>/stats: the period's summary of link id as JSON members
 * appended to b; 0, or -1 with the 400 (or 503) in resp. */
int	 analytics_link_summary(struct worker_ctx *,
	    const struct request *, struct response *, const char *id,
	    struct buf *b);
/* The retention of visit rows, from the service's tick: ms until it
 * wants to run again, -1 never. */
int	 analytics_tick(struct worker_ctx *, int64_t now_ms);
/* GET /stats: the summary of all of the caller's links. */
void	 analytics_user_stats(struct worker_ctx *, const struct request *,
	    struct response *);

extern const struct service auth_service;		/* auth.c */
extern const struct service shortener_service;	/* shortener.c */
extern const struct service status_service;	/* status.c */

/* ------------------------------------------------------------------ */
/* The shortener service: shortener.c (routes, links, visit counts),  */
/* short_input.c (what a request brings, checked), short_sub.c        */
/* (/<id>/stats, /<id>/visits, /<id>/qr); analytics.c's routes use   */
/* them too.  The checks return 0, or -1 with the refusal (400, 403,   */
/* 503) in resp.                                                       */
/* ------------------------------------------------------------------ */

#define BASE_MAX	600	/* scheme://host[:port][/path] */
#define CURSOR_RAW_MAX	(20 + 1 + ID_MAX)	/* "<us>.<id>" */
#define CURSOR_MAX	(CURSOR_RAW_MAX / 3 * 4 + 8)	/* its base64url */

#define MAX_VISITS_MAX	9007199254740991LL	/* 2^53 - 1 */

/* A link's expiry and visit limit as a request sets them. */
struct short_limits {
	int	 set_expires;
	int64_t	 expires_us;	/* 0: never */
	int	 set_max_visits;
	int64_t	 max_visits;	/* 0: no limit */
};

/* short_input.c */
int	short_url_ok(struct response *, const struct field *);
int	short_limits(struct response *, const struct field *at,
	    const struct field *in, const struct field *max, int64_t now_us,
	    int creating, struct short_limits *);
/* ?limit=: the page size, or -1. */
long	short_limit(const struct worker_ctx *, const struct request *,
	    struct response *);
/* The cursor of a listing: base64url of "<key>.<id>" (key: the sort
 * key of the page's last item). */
int	short_cursor_encode(int64_t key, const char *id, char *out,
	    size_t outlen);
int	short_cursor_decode(const char *, size_t, int64_t *key,
	    char id[ID_MAX + 1]);

/* shortener.c: what the routes share */
int64_t	short_now_us(void);
void	short_db_failed(const struct worker_ctx *, struct response *,
	    enum db_status);
void	short_send(const struct worker_ctx *, struct response *, int status,
	    struct buf *);
int	short_base(const struct worker_ctx *, const struct request *,
	    char *out, size_t outlen);
void	short_put_time(struct buf *, int64_t us);
void	short_put_limits(struct buf *, const struct db_url *, int64_t now_us);
int	short_owned(struct worker_ctx *, struct response *, const char *id,
	    const struct jwt_claims *, struct db_url *);

/* short_sub.c: sub is "stats" or "qr" */
void	short_sub(struct worker_ctx *, const struct request *,
	    struct response *, const char *id, const char *sub);

/* linkio.c: titles and tags, GET / with its filters (?tag=, ?q=,
 * ?sort=) */
#define LINKS_Q_MAX	200	/* characters of ?q= */
#define LINKS_MATCH_MAX	(LINKS_Q_MAX * 4 + 64)
int	 tag_valid(const char *, size_t);
int	 tags_split(const char *, size_t, char sep,
	    char out[TAGS_MAX][TAG_MAX + 1], char *err, size_t errlen);
long	 text_chars(const char *, size_t);
int	 title_valid(const char *, size_t);
int	 search_query(const char *, size_t, char *out, size_t outlen);
int	 query_all(const char *query, const char *key, char *out,
	    size_t outlen, size_t max);
/* The title and tags fields of a body into c (tags pointing into
 * tags).  0, or -1 with the 400 in resp. */
int	 links_meta(struct response *, const struct field *title,
	    const struct field *tags, char tags_buf[TAGS_MAX][TAG_MAX + 1],
	    struct db_meta_change *c);
/* ,"title":...,"tags":[...]: when set, or always (null, []). */
void	 links_put_meta(struct buf *, const struct db_meta *, int always);
/* The same for what a PUT set. */
void	 links_put_change(struct buf *, const struct db_meta_change *);
void	 links_list(struct worker_ctx *, const struct request *,
	    struct response *, const struct jwt_claims *);

/* linkcsv.c: GET /export and POST /import; 1 if path is one of them
 * (the answer is then in resp, or streamed), else 0. */
#define IMPORT_ROWS_MAX	100000
int	 linkcsv_route(struct worker_ctx *, const struct request *,
	    struct response *);

/* worker.c: runs in the child; returns only to exit.  handoff is the
 * pool's handoff socket pair ([0] to send, [1] to receive), or NULL.
 * slot is the worker's own scoreboard slot, or -1 for a process outside
 * the pools (the status process), which writes nothing to the
 * scoreboard. */
int	worker_main(const struct config *, const struct service *,
	    int listen_fd, const int *handoff, struct scoreboard *, int slot,
	    const struct shc_map *);

#endif /* SHORTD_WORKERS_H */
