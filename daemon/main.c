/*
 * shortd: options, then the master.
 *
 *   shortd [-ft] [-c file]
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
	fprintf(stderr, "usage: shortd [-ftv] [-c file]\n"
	    "  -c file  configuration file (default %s)\n"
	    "  -f       stay in the foreground (containers, systemd)\n"
	    "  -t       check the configuration, print it, and exit\n"
	    "  -v       print the version and exit\n", SHORTD_CONF);
	exit(2);
}

int
main(int argc, char *argv[])
{
	static struct config	 cfg;	/* large; the master's only copy */
	const char		*file = SHORTD_CONF;
	char			 err[1024];
	int			 ch, foreground = 0, test = 0, explicit = 0;

	while ((ch = getopt(argc, argv, "c:ftv")) != -1) {
		switch (ch) {
		case 'c':
			file = optarg;
			explicit = 1;
			break;
		case 'f':
			foreground = 1;
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
	return master_run(file, &cfg, foreground);
}
