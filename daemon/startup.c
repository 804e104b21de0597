/*
 * startup.c — what the master does to become a daemon, once, around
 * its loop (master.c): tell systemd how it is doing, give up root,
 * detach, write the pid file, check the database schema.
 */
#include <sys/socket.h>
#include <sys/un.h>

#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "daemon.h"
#include "../workers/workers.h"

/* sd_notify(3) without libsystemd: one datagram to $NOTIFY_SOCKET. */
void
notify(const char *msg)
{
	struct sockaddr_un	 sun;
	const char		*path = getenv("NOTIFY_SOCKET");
	socklen_t		 len;
	int			 fd;

	if (path == NULL || path[0] == '\0' ||
	    strlen(path) >= sizeof(sun.sun_path))
		return;
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	memcpy(sun.sun_path, path, strlen(path));
	if (sun.sun_path[0] == '@')
		sun.sun_path[0] = '\0';
	len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) +
	    strlen(path));
	if ((fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0)) == -1)
		return;
	(void)sendto(fd, msg, strlen(msg), MSG_NOSIGNAL,
	    (struct sockaddr *)&sun, len);
	close(fd);
}

/* RELOADING=1 with the time it began: systemd 253 and later match it
 * against the reload they asked for (Type=notify-reload); older ones
 * ignore the field. */
void
notify_reloading(void)
{
	struct timespec	 ts;
	char		 msg[64];

	clock_gettime(CLOCK_MONOTONIC, &ts);
	snprintf(msg, sizeof(msg), "RELOADING=1\nMONOTONIC_USEC=%llu",
	    (unsigned long long)ts.tv_sec * 1000000ULL +
	    (unsigned long long)ts.tv_nsec / 1000);
	notify(msg);
}

/* The gid of a group named in the configuration, or fatal. */
static gid_t
group_id(const char *name)
{
	struct group	*gr;

	if ((gr = getgrnam(name)) == NULL)
		fatalx("group %s: no such group", name);
	return gr->gr_gid;
}

/* Give the unix sockets to uid and the listen_group (gid when it is
 * empty): the front end's user, in that group, can then connect
 * without being in the group shortd runs as. */
static void
chown_sockets(const struct config *cfg, uid_t uid, gid_t gid)
{
	const char	*spec, *path;
	int		 i;

	if (cfg->listen_group[0] != '\0')
		gid = group_id(cfg->listen_group);
	for (i = 0; i < NLISTEN; i++)
		if ((spec = pool_listen_spec(cfg, i)) != NULL &&
		    (path = pool_unix_path(spec)) != NULL &&
		    chown(path, uid, gid) == -1)
			fatal("chown %s", path);
}

void
drop_privileges(const struct config *cfg)
{
	struct passwd	*pw;
	uid_t		 uid;
	gid_t		 gid;

	if (cfg->user[0] == '\0') {
		if (geteuid() == 0) {
			log_warnx("running as root: set user (and group) so "
			    "that workers run unprivileged");
			if (cfg->listen_group[0] != '\0')
				chown_sockets(cfg, 0, 0);
		}
		return;
	}
	if (geteuid() != 0) {
		log_warnx("user %s configured but not started as root; "
		    "staying uid %d", cfg->user, (int)geteuid());
		return;
	}
	if ((pw = getpwnam(cfg->user)) == NULL)
		fatalx("user %s: no such user", cfg->user);
	uid = pw->pw_uid;
	gid = pw->pw_gid;
	if (cfg->group[0] != '\0')
		gid = group_id(cfg->group);
	chown_sockets(cfg, uid, gid);
	if (setgroups(1, &gid) == -1 || setresgid(gid, gid, gid) == -1 ||
	    setresuid(uid, uid, uid) == -1)
		fatal("dropping privileges to %s", cfg->user);
	log_info("running as %s (uid %d, gid %d)", cfg->user, (int)uid,
	    (int)gid);
}

void
daemonize(const struct config *cfg)
{
	pid_t	 pid;
	int	 fd;

	if ((pid = fork()) == -1)
		fatal("fork");
	if (pid > 0)
		_exit(0);
	if (setsid() == -1)
		fatal("setsid");
	if ((pid = fork()) == -1)
		fatal("fork");
	if (pid > 0)
		_exit(0);
	if (chdir("/") == -1)
		fatal("chdir /");
	if ((fd = open("/dev/null", O_RDWR)) != -1) {
		dup2(fd, 0);
		dup2(fd, 1);
		if (cfg->log_file[0] != '\0')
			dup2(fd, 2);
		if (fd > 2)
			close(fd);
	}
}

void
write_pidfile(const char *path)
{
	FILE	*f;

	if (path[0] == '\0')
		return;
	if ((f = fopen(path, "w")) == NULL)
		fatal("pid file %s", path);
	fprintf(f, "%d\n", (int)getpid());
	fclose(f);
}

/* Check the schema once at start-up: a wrong version is fatal, an
 * unreachable database is not (workers retry and answer 503). */
void
check_schema(const struct config *cfg)
{
	struct db	*db;
	char		 err[512];

	if ((db = db_new(cfg)) == NULL)
		fatalx("out of memory");
	if (db_ensure(db) != DB_OK)
		log_warnx("database not reachable at start-up; workers will "
		    "retry");
	else if (db_check_schema(db, err, sizeof(err)) == -1) {
		db_free(db);
		fatalx("%s", err);
	}
	db_free(db);
}
