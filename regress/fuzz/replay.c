/*
 * Replays fuzz inputs without libFuzzer: each argument is a file, or a
 * directory whose regular files are fed in sorted order, one call of
 * LLVMFuzzerTestOneInput() per file.  Linked with every fuzz target for
 * the sanitizer build; not linked when building with -fsanitize=fuzzer.
 */
#include <sys/stat.h>

#include <dirent.h>
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

/* Read a whole file; *lenp gets its size.  NULL on error (errno set). */
static uint8_t *
read_file(const char *path, size_t *lenp)
{
	FILE	*f;
	uint8_t	*data = NULL, *nd;
	size_t	 len = 0, cap = 0, n;

	if ((f = fopen(path, "rb")) == NULL)
		return NULL;
	for (;;) {
		if (cap - len < 4096) {
			cap = cap ? cap * 2 : 65536;
			if ((nd = realloc(data, cap)) == NULL)
				goto fail;
			data = nd;
		}
		n = fread(data + len, 1, cap - len, f);
		len += n;
		if (n == 0) {
			if (ferror(f))
				goto fail;
			break;
		}
	}
	fclose(f);
	*lenp = len;
	return data;
fail:
	free(data);
	fclose(f);
	return NULL;
}

static int
replay_file(const char *path)
{
	uint8_t	*data;
	size_t	 len;

	if ((data = read_file(path, &len)) == NULL) {
		fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
		return -1;
	}
	LLVMFuzzerTestOneInput(data, len);
	free(data);
	return 0;
}

/* Feed the regular files of dir; returns how many, or -1. */
static long
replay_dir(const char *dir)
{
	struct dirent	**ents;
	struct stat	  st;
	char		 *path;
	long		  count = 0;
	int		  i, n;

	if ((n = scandir(dir, &ents, NULL, alphasort)) == -1) {
		fprintf(stderr, "replay: %s: %s\n", dir, strerror(errno));
		return -1;
	}
	for (i = 0; i < n; i++) {
		if (count != -1 &&
		    asprintf(&path, "%s/%s", dir, ents[i]->d_name) != -1) {
			if (stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
				if (replay_file(path) == -1)
					count = -1;
				else
					count++;
			}
			free(path);
		}
		free(ents[i]);
	}
	free(ents);
	return count;
}

int
main(int argc, char *argv[])
{
	struct stat	 st;
	long		 total = 0, n;
	int		 i;

	for (i = 1; i < argc; i++) {
		if (stat(argv[i], &st) == -1) {
			fprintf(stderr, "replay: %s: %s\n", argv[i],
			    strerror(errno));
			return 1;
		}
		if (S_ISDIR(st.st_mode)) {
			if ((n = replay_dir(argv[i])) == -1)
				return 1;
			total += n;
		} else {
			if (replay_file(argv[i]) == -1)
				return 1;
			total++;
		}
	}
	printf("replayed %ld inputs\n", total);
	return 0;
}
