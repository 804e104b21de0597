/*
 * shortd: options, then the master.
 *
 *   shortd [-fHtv] [-c file]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon.h"

#ifndef SHORTD_CONF
#define SHORTD_CONF	"/etc/shortd/shortd.conf"
#endif

static void
usage(void)
{
	fprintf(stderr, "usage: shortd [-fHtv] [-c file]\n"
	    "  -c file  configuration file (default %s)\n"
	    "  -f       stay in the foreground (containers, systemd)\n"
	    "  -H       health check: ask each pool of the running shortd\n"
	    "           one FastCGI request; exit 0 if all answer\n"
	    "  -t       check the configuration, print it, and exit\n"
	    "  -v       print the version and exit\n", SHORTD_CONF);
	exit(2);
}

/* -H: probe every enabled pool, one line each; 0 iff all are healthy. */
static int
health_main(const struct config *cfg)
{
	static const char *const names[POOL_COUNT] = { "auth", "shortener" };
	char			 err[512];
	int			 p, status, rc = 0;

	for (p = 0; p < POOL_COUNT; p++) {
		if (!cfg->pool[p].enabled)
			continue;
		status = health_probe(cfg, p, 5000, err, sizeof(err));
		if (status == -1)
			printf("%s %s: unhealthy: %s\n", names[p],
			    cfg->pool[p].listen, err);
		else
			printf("%s %s: %s (HTTP %d)\n", names[p],
			    cfg->pool[p].listen, status < 500 ? "healthy" :
			    "unhealthy", status);
		if (status == -1 || status >= 500)
			rc = 1;
	}
	return rc;
}

int
main(int argc, char *argv[])
{
	static struct config	 cfg;	/* large; the master's only copy */
	const char		*file = SHORTD_CONF;
	char			 err[1024];
	int			 ch, foreground = 0, test = 0, explicit = 0;
	int			 health = 0;

	while ((ch = getopt(argc, argv, "c:fHtv")) != -1) {
		switch (ch) {
		case 'c':
			file = optarg;
			explicit = 1;
			break;
		case 'f':
			foreground = 1;
			break;
		case 'H':
			health = 1;
			break;
		case 't':
			test = 1;
			break;
		case 'v':
			printf("shortd %s\n", SHORTD_VERSION);
			return 0;
		default:
			usage();
		}
	}
	if (optind != argc)
		usage();
	/* Without -c and without the default file, run on defaults and
	 * the environment (containers configure shortd that way). */
	if (!explicit && access(file, F_OK) != 0)
		file = NULL;
	if (config_load(&cfg, file, err, sizeof(err)) == -1) {
		fprintf(stderr, "shortd: configuration: %s\n", err);
		if (test)
			fprintf(stderr, "shortd: configuration %s test "
			    "failed\n", file ? file : "(environment)");
		return 1;
	}
	if (test) {
		config_dump(&cfg, 1);
		fprintf(stderr, "shortd: configuration %s test is "
		    "successful\n", file ? file : "(environment)");
		return 0;
	}
	if (health)
		return health_main(&cfg);
	return master_run(file, &cfg, foreground);
}
