# shortd — a URL shortener with user accounts, as a prefork FastCGI daemon.
#
#   make            build ./shortd
#   make run        the whole stack on 127.0.0.1:5003 (private MariaDB, nginx)
#   make check      unit tests, fuzz corpora, e2e suite (ASan+UBSan build)
#   make deps       install the Debian packages the build and tests need
#   make bench      benchmarks against the real stack (not part of check)
#   make install    PREFIX=/usr/local DESTDIR=

PREFIX	?= /usr/local
SBINDIR	?= $(PREFIX)/sbin
MANDIR	?= $(PREFIX)/share/man
SYSCONFDIR ?= $(PREFIX)/etc
DATADIR	?= $(PREFIX)/share/shortd

CC	?= cc
CFLAGS	?= -O2 -g
PKGS	 = mysqlclient libargon2 libcrypto
WARN	 = -std=c11 -D_GNU_SOURCE -Wall -Wextra -Wshadow -Wstrict-prototypes \
	   -Wmissing-prototypes -Wpointer-arith -Wformat=2 -Werror
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   = $(shell pkg-config --libs $(PKGS) 2>/dev/null)
SAN	 = -fsanitize=address,undefined -fno-sanitize-recover=all \
	   -fno-omit-frame-pointer

HDRS	 = proto/proto.h daemon/daemon.h workers/workers.h
LIBSRC	 = proto/buf.c proto/fcgi.c \
	   daemon/config.c daemon/log.c daemon/pool.c daemon/master.c \
	   workers/worker.c workers/request.c workers/json.c workers/form.c \
	   workers/body.c workers/jwt.c workers/password.c workers/url.c \
	   workers/id.c workers/db.c workers/auth.c workers/shortener.c
MAINSRC	 = daemon/main.c
UNITSRC	 = $(wildcard regress/unit/test_*.c)
FUZZSRC	 = $(wildcard regress/fuzz/fuzz_*.c)

# Release objects in build/rel, sanitizer objects in build/asan.
REL_OBJ	 = $(LIBSRC:%.c=build/rel/%.o)
ASAN_OBJ = $(LIBSRC:%.c=build/asan/%.o)
UNIT_BIN = $(UNITSRC:regress/unit/%.c=build/asan/unit/%)
FUZZ_REPLAY = $(FUZZSRC:regress/fuzz/%.c=build/asan/fuzz/%)

DEPS_STAMP = build/.deps

.PHONY: all check unit e2e fuzz-replay run deps install clean bench \
	bench-deps

all: shortd

shortd: $(REL_OBJ) build/rel/daemon/main.o
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $(REL_OBJ) build/rel/daemon/main.o \
	    $(PKG_LIBS)

build/shortd-asan: $(ASAN_OBJ) build/asan/daemon/main.o
	$(CC) $(CFLAGS) $(SAN) $(LDFLAGS) -o $@ $(ASAN_OBJ) \
	    build/asan/daemon/main.o $(PKG_LIBS)

build/rel/%.o: %.c $(HDRS) | $(DEPS_STAMP)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(WARN) $(PKG_CFLAGS) -c -o $@ $<

build/asan/%.o: %.c $(HDRS) | $(DEPS_STAMP)
	@mkdir -p $(@D)
	$(CC) -O1 -g $(SAN) $(WARN) $(PKG_CFLAGS) -c -o $@ $<

build/asan/libshortd.a: $(ASAN_OBJ)
	rm -f $@
	ar rcs $@ $(ASAN_OBJ)

build/asan/unit/%: regress/unit/%.c regress/unit/unit.h $(HDRS) \
    build/asan/libshortd.a
	@mkdir -p $(@D)
	$(CC) -O1 -g $(SAN) $(WARN) $(PKG_CFLAGS) -o $@ $< \
	    build/asan/libshortd.a $(PKG_LIBS)

# Each fuzz target also builds as a plain program replaying its corpus.
build/asan/fuzz/%: regress/fuzz/%.c regress/fuzz/replay.c $(HDRS) \
    build/asan/libshortd.a
	@mkdir -p $(@D)
	$(CC) -O1 -g $(SAN) $(WARN) $(PKG_CFLAGS) -o $@ $< \
	    regress/fuzz/replay.c build/asan/libshortd.a $(PKG_LIBS)

unit: $(UNIT_BIN)
fuzz-replay: $(FUZZ_REPLAY)

# The whole suite: unit tests, corpus replay and the e2e cases through
# real MariaDB and nginx, against the sanitizer build.
check: $(DEPS_STAMP) $(UNIT_BIN) $(FUZZ_REPLAY) build/shortd-asan shortd
	/usr/bin/python3 regress/run.py --shortd build/shortd-asan

e2e: $(DEPS_STAMP) build/shortd-asan
	/usr/bin/python3 regress/run.py --shortd build/shortd-asan --only e2e

run: $(DEPS_STAMP) shortd
	/usr/bin/python3 regress/stack.py run

# Debian packages for the build (first line) and the tests (second).
DEB_BUILD = gcc make pkg-config default-libmysqlclient-dev libargon2-dev \
	    libjsmn-dev libssl-dev
DEB_TEST  = mariadb-server mariadb-client nginx-light python3 \
	    python3-requests python3-jwt python3-argon2 python3-pymysql curl
deps:
	@missing=""; for p in $(DEB_BUILD) $(DEB_TEST); do \
	    dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | \
	        grep -q '^install ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -z "$$missing" ]; then echo "deps: all Debian packages present"; \
	elif [ "$$(id -u)" = 0 ]; then \
	    echo "deps: installing$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
	        apt-get install -y -qq --no-install-recommends $$missing \
	        >/dev/null || exit 1; \
	else echo "deps: missing packages; run as root:"; \
	    echo "  apt-get install$$missing"; exit 1; fi
	@mkdir -p build && touch $(DEPS_STAMP)

$(DEPS_STAMP):
	@$(MAKE) --no-print-directory deps

# Benchmarks: the release build behind the same private stack as the
# tests, measured with wrk and plotted with gnuplot (regress/bench/).
DEB_BENCH = wrk gnuplot-nox
bench-deps:
	@$(MAKE) --no-print-directory deps DEB_BUILD="" DEB_TEST="$(DEB_BENCH)"

build/bench/hashtime: regress/bench/hashtime.c build/rel/workers/password.o
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(WARN) $(PKG_CFLAGS) -o $@ $< \
	    build/rel/workers/password.o $(PKG_LIBS)

bench: $(DEPS_STAMP) bench-deps shortd build/bench/hashtime
	/usr/bin/python3 regress/bench/bench.py --shortd ./shortd \
	    --hashtime build/bench/hashtime $(BENCH_ARGS)

install: shortd
	install -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(SYSCONFDIR)/shortd \
	    $(DESTDIR)$(DATADIR)
	install -m 755 shortd $(DESTDIR)$(SBINDIR)/shortd
	install -m 644 etc/shortd.conf $(DESTDIR)$(SYSCONFDIR)/shortd/
	install -m 644 sql/schema.sql $(DESTDIR)$(DATADIR)/

clean:
	rm -rf build shortd regress/out
