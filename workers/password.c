/*
 * password.c — argon2id password hashes in PHC string form
 * ("$argon2id$v=19$m=19456,t=2,p=1$salt$hash"), which carry their own
 * salt and parameters, so raising the parameters later only means
 * re-hashing at the next successful login.
 */
#include <sys/random.h>

#include <errno.h>
#include <string.h>

#include <argon2.h>

#include "workers.h"

#define PASSWORD_SALT_LEN	16
#define PASSWORD_HASH_LEN	32
#define PASSWORD_PREFIX		"$argon2id$"

static int
password_random(void *p, size_t n)
{
	uint8_t	*u = p;
	ssize_t	 r;

	while (n > 0) {
		if ((r = getrandom(u, n, 0)) == -1) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		u += r;
		n -= (size_t)r;
	}
	return 0;
}

int
password_hash(const struct argon2_params *pp, const char *pw, size_t len,
    char *out, size_t outlen)
{
	uint8_t	 salt[PASSWORD_SALT_LEN];
	int	 rc = -1;

	if (out == NULL || outlen == 0)
		return -1;
	out[0] = '\0';
	if (pw == NULL && len > 0)
		return -1;
	if (argon2_encodedlen(pp->t, pp->m_kib, pp->p, PASSWORD_SALT_LEN,
	    PASSWORD_HASH_LEN, Argon2_id) > outlen)
		return -1;
	if (password_random(salt, sizeof(salt)) == -1)
		return -1;
	if (argon2id_hash_encoded(pp->t, pp->m_kib, pp->p, pw, len, salt,
	    sizeof(salt), PASSWORD_HASH_LEN, out, outlen) == ARGON2_OK)
		rc = 0;
	else
		out[0] = '\0';
	return rc;
}

/*
 * Anything but an argon2id PHC string is unusable (-1), never a
 * mismatch: a corrupt row must show up, not lock a user out quietly.
 */
int
password_verify(const char *phc, const char *pw, size_t len)
{
	int	 r;

	if (phc == NULL || strncmp(phc, PASSWORD_PREFIX,
	    sizeof(PASSWORD_PREFIX) - 1) != 0 || (pw == NULL && len > 0))
		return -1;
	r = argon2id_verify(phc, pw == NULL ? "" : pw, len);
	if (r == ARGON2_OK)
		return 1;
	if (r == ARGON2_VERIFY_MISMATCH)
		return 0;
	return -1;
}

/* Read "<key>=<decimal>" at *s, then expect end; advance *s.  0 or -1. */
static int
password_param(const char **s, char key, char end, uint32_t *v)
{
	const char	*p = *s;
	uint64_t	 n = 0;

	if (p[0] != key || p[1] != '=')
		return -1;
	p += 2;
	if (*p < '0' || *p > '9')
		return -1;
	for (; *p >= '0' && *p <= '9'; p++)
		if ((n = n * 10 + (uint64_t)(*p - '0')) > UINT32_MAX)
			return -1;
	if (*p != end)
		return -1;
	*v = (uint32_t)n;
	*s = p + 1;
	return 0;
}

int
password_needs_rehash(const char *phc, const struct argon2_params *pp)
{
	static const char pre[] = PASSWORD_PREFIX "v=19$";
	const char	*s;
	uint32_t	 m, t, p;

	if (phc == NULL || strncmp(phc, pre, sizeof(pre) - 1) != 0)
		return 1;
	s = phc + sizeof(pre) - 1;
	if (password_param(&s, 'm', ',', &m) == -1 ||
	    password_param(&s, 't', ',', &t) == -1 ||
	    password_param(&s, 'p', '$', &p) == -1)
		return 1;
	return m < pp->m_kib || t < pp->t || p < pp->p;
}

/* A hash of a random password nobody knows, for unknown users. */
int
password_dummy_init(const struct argon2_params *pp, char *out,
    size_t outlen)
{
	char	 pw[32];
	int	 rc;

	if (password_random(pw, sizeof(pw)) == -1)
		return -1;
	rc = password_hash(pp, pw, sizeof(pw), out, outlen);
	explicit_bzero(pw, sizeof(pw));
	return rc;
}
