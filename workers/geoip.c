/*
 * geoip.c — the visitor's country for visit analytics, from a MaxMind
 * DB file (geoip_db: GeoLite2-Country, GeoIP2-City, DB-IP's lite
 * country database, or any .mmdb with country.iso_code), read with
 * libmaxminddb.
 *
 * The file is opened once per worker, memory-mapped (MMDB_MODE_MMAP:
 * the pages are shared by every worker), and looked up with the
 * textual REMOTE_ADDR; only the two-letter code leaves this file.  The
 * address itself is neither kept nor logged.  A file that is missing
 * or is no MaxMind DB is refused at start-up (config.c calls
 * geoip_check, so `shortd -t` says so too).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <maxminddb.h>

#include "workers.h"

struct geoip {
	MMDB_s	 mmdb;
};

int
geoip_check(const char *path, char *err, size_t errlen)
{
	struct geoip	*g;

	if (path == NULL || path[0] == '\0')
		return 0;
	if ((g = geoip_open(path, err, errlen)) == NULL)
		return -1;
	geoip_close(g);
	return 0;
}

struct geoip *
geoip_open(const char *path, char *err, size_t errlen)
{
	struct geoip	*g;
	int		 rc;

	if ((g = calloc(1, sizeof(*g))) == NULL) {
		snprintf(err, errlen, "geoip_db %s: out of memory", path);
		return NULL;
	}
	if (access(path, R_OK) != 0) {
		snprintf(err, errlen, "geoip_db %s: cannot be read: %s", path,
		    strerror(errno));
		free(g);
		return NULL;
	}
	if ((rc = MMDB_open(path, MMDB_MODE_MMAP, &g->mmdb)) != MMDB_SUCCESS) {
		snprintf(err, errlen, "geoip_db %s: not a MaxMind DB file: %s",
		    path, MMDB_strerror(rc));
		free(g);
		return NULL;
	}
	return g;
}

void
geoip_close(struct geoip *g)
{
	if (g == NULL)
		return;
	MMDB_close(&g->mmdb);
	free(g);
}

int
geoip_country(struct geoip *g, const char *addr, char cc[2])
{
	MMDB_lookup_result_s	 res;
	MMDB_entry_data_s	 d;
	int			 gai = 0, rc = 0;

	cc[0] = cc[1] = '\0';
	if (g == NULL || addr == NULL || addr[0] == '\0')
		return -1;
	res = MMDB_lookup_string(&g->mmdb, addr, &gai, &rc);
	if (gai != 0 || rc != MMDB_SUCCESS || !res.found_entry)
		return -1;
	if (MMDB_get_value(&res.entry, &d, "country", "iso_code", NULL) !=
	    MMDB_SUCCESS || !d.has_data || d.type != MMDB_DATA_TYPE_UTF8_STRING ||
	    d.data_size != 2)
		return -1;
	if (!((d.utf8_string[0] >= 'A' && d.utf8_string[0] <= 'Z') &&
	    (d.utf8_string[1] >= 'A' && d.utf8_string[1] <= 'Z')))
		return -1;
	cc[0] = d.utf8_string[0];
	cc[1] = d.utf8_string[1];
	return 0;
}
