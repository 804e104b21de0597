/*
 * One line per event, on stderr or in a file.  The state below is the
 * only logging state of the process; workers inherit it at fork and
 * change only the ident.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "daemon.h"

static struct {
	int	 fd;		/* 2 unless a log file is open */
	int	 level;
	char	 file[512];
	char	 ident[32];
} logstate = { 2, 2, "", "master" };

void
log_init(const char *file, int level, const char *ident)
{
	logstate.level = level;
	snprintf(logstate.file, sizeof(logstate.file), "%s",
	    file ? file : "");
	log_setident(ident);
	if (log_reopen() == -1)
		fatal("log file %s", logstate.file);
}

/* (Re)open the log file, for USR1 after rotation.  -1 on failure, in
 * which case the old descriptor stays in use. */
int
log_reopen(void)
{
	int	 fd;

	if (logstate.file[0] == '\0')
		return 0;
	fd = open(logstate.file, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC,
	    0640);
	if (fd == -1)
		return -1;
	if (logstate.fd != 2)
		close(logstate.fd);
	logstate.fd = fd;
	return 0;
}

void
log_setident(const char *ident)
{
	snprintf(logstate.ident, sizeof(logstate.ident), "%s", ident);
}

static void
log_vwrite(int level, const char *tag, int with_errno, const char *fmt,
    va_list ap)
{
	char		 line[2048];
	struct timespec	 ts;
	struct tm	 tm;
	size_t		 n;
	int		 saved = errno, r;

	if (level > logstate.level)
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
	r = snprintf(line + n, sizeof(line) - n, ".%03ldZ shortd[%d] %s: %s: ",
	    ts.tv_nsec / 1000000, (int)getpid(), logstate.ident, tag);
	if (r > 0 && (size_t)r < sizeof(line) - n)
		n += r;
	r = vsnprintf(line + n, sizeof(line) - n, fmt, ap);
	if (r > 0)
		n = (size_t)r < sizeof(line) - n ? n + r : sizeof(line) - 1;
	if (with_errno && n < sizeof(line) - 1) {
		r = snprintf(line + n, sizeof(line) - n, ": %s",
		    strerror(saved));
		if (r > 0)
			n = (size_t)r < sizeof(line) - n ? n + r :
			    sizeof(line) - 1;
	}
	if (n >= sizeof(line) - 1)
		n = sizeof(line) - 2;
	/* One line per event: no embedded newlines. */
	for (size_t i = 0; i < n; i++)
		if (line[i] == '\n' || line[i] == '\r')
			line[i] = ' ';
	line[n++] = '\n';
	(void)!write(logstate.fd, line, n);
	errno = saved;
}

/* One log function; then is what follows the line (fatal: exit). */
#define LOG_FN(name, level, tag, with_errno, then)			\
void									\
name(const char *fmt, ...)						\
{									\
	va_list	 ap;							\
									\
	va_start(ap, fmt);						\
	log_vwrite(level, tag, with_errno, fmt, ap);			\
	va_end(ap);							\
	then;								\
}

LOG_FN(log_err, 0, "error", 0, (void)0)
LOG_FN(log_warn, 1, "warning", 1, (void)0)
LOG_FN(log_warnx, 1, "warning", 0, (void)0)
LOG_FN(log_info, 2, "info", 0, (void)0)
LOG_FN(log_debug, 3, "debug", 0, (void)0)
LOG_FN(fatal, 0, "fatal", 1, exit(1))
LOG_FN(fatalx, 0, "fatal", 0, exit(1))
