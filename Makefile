# shortd — a URL shortener with user accounts, as a prefork FastCGI daemon.
#
#   make            build ./shortd
#   make run        the whole stack on 127.0.0.1:5003 (private MariaDB, nginx)
#   make check      unit tests, fuzz corpora, e2e suite (ASan+UBSan build),
#                   and the OpenAPI document's linter
#   make fuzz       each fuzz target under libFuzzer (clang), FUZZ_TIME=60
#                   seconds each; fails on a finding
#   make check-ui   the web page (www/) in headless Chromium, against the stack
#   make check-cluster  the e2e suite and faults on a 3-node Galera
#                   cluster behind two shortd instances and one nginx
#   make check-containers
#                   build Dockerfile.multi, run docker-compose.yml (podman)
#   make deb        the Debian package, in build/deb/ (DEB_VERSION=...)
#   make check-vm   that package installed and run under systemd, in a
#                   booted Debian container (podman)
#   make deps       install the Debian packages the build and tests need
#   make bench      benchmarks against the real stack (not part of check)
#   make install    PREFIX=/usr/local DESTDIR=

PREFIX	?= /usr/local
SBINDIR	?= $(PREFIX)/sbin
MANDIR	?= $(PREFIX)/share/man
SYSCONFDIR ?= $(PREFIX)/etc
DATADIR	?= $(PREFIX)/share/shortd
UNITDIR	?= $(PREFIX)/lib/systemd/system
SYSUSERSDIR ?= $(PREFIX)/lib/sysusers.d

CC	?= cc
CFLAGS	?= -O2 -g
PKGS	 = mysqlclient libargon2 libcrypto libqrencode libmaxminddb
# -Wno-missing-field-initializers: C zero-fills the members a
# positional initialiser leaves out, and struct field and struct
# service grew members whose zero keeps the old meaning.
WARN	 = -std=c11 -D_GNU_SOURCE -Wall -Wextra -Wshadow -Wstrict-prototypes \
	   -Wmissing-prototypes -Wpointer-arith -Wformat=2 -Werror \
	   -Wno-missing-field-initializers
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   = $(shell pkg-config --libs $(PKGS) 2>/dev/null)
SAN	 = -fsanitize=address,undefined -fno-sanitize-recover=all \
	   -fno-omit-frame-pointer

HDRS	 = proto/proto.h proto/scoreboard.h proto/shcache.h daemon/daemon.h \
	   workers/workers.h workers/db.h workers/worker.h
LIBSRC	 = proto/buf.c proto/fcgi.c proto/scoreboard.c proto/shcache.c \
	   daemon/config.c daemon/log.c daemon/pool.c daemon/master.c \
	   daemon/health.c daemon/startup.c daemon/clock.c \
	   workers/worker.c workers/request.c workers/json.c workers/form.c \
	   workers/body.c workers/jwt.c workers/password.c workers/url.c \
	   workers/id.c workers/db.c workers/db_users.c workers/db_links.c \
	   workers/db_visits.c workers/auth.c workers/shortener.c \
	   workers/short_input.c workers/short_sub.c workers/handoff.c \
	   workers/status.c \
	   workers/timefmt.c workers/qr.c workers/visits.c workers/cache.c \
	   workers/analytics.c workers/ua.c workers/geoip.c \
	   workers/db_analytics.c workers/keys.c workers/db_keys.c \
	   workers/db_search.c workers/linkio.c workers/csv.c \
	   workers/linkcsv.c workers/db_import.c
MAINSRC	 = daemon/main.c
UNITSRC	 = $(wildcard regress/unit/test_*.c)
FUZZSRC	 = $(wildcard regress/fuzz/fuzz_*.c)

# Release objects in build/rel, sanitizer objects in build/asan.
REL_OBJ	 = $(LIBSRC:%.c=build/rel/%.o)
ASAN_OBJ = $(LIBSRC:%.c=build/asan/%.o)
UNIT_BIN = $(UNITSRC:regress/unit/%.c=build/asan/unit/%)
FUZZ_REPLAY = $(FUZZSRC:regress/fuzz/%.c=build/asan/fuzz/%)

DEPS_STAMP = build/.deps

.PHONY: all check unit e2e fuzz-replay run deps install clean bench
.PHONY: fuzz fuzz-deps
.PHONY: check-ui deps-ui ui-screenshots check-containers deps-containers lint-openapi bench-deps

all: shortd

shortd: $(REL_OBJ) build/rel/daemon/main.o
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $(REL_OBJ) build/rel/daemon/main.o \
	    $(PKG_LIBS)

build/shortd-asan: $(ASAN_OBJ) build/asan/daemon/main.o
	$(CC) $(CFLAGS) $(SAN) $(LDFLAGS) -o $@ $(ASAN_OBJ) \
	    build/asan/daemon/main.o $(PKG_LIBS)

build/rel/%.o: %.c $(HDRS) | $(DEPS_STAMP)
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(WARN) $(PKG_CFLAGS) -c -o $@ $<

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

# The same targets under libFuzzer: the library instrumented for
# coverage (fuzzer-no-link), each fuzz_*.c linked with libFuzzer's
# main instead of replay.c.  `make fuzz` runs every target for
# FUZZ_TIME seconds on a copy of its corpus (regress/fuzz/run.sh);
# `make -j2 fuzz` runs two at a time.
FUZZ_CC	 = clang
FUZZ_TIME ?= 60
FUZZ_SAN = -fsanitize=address,undefined -fno-sanitize-recover=all \
	   -fno-omit-frame-pointer
FUZZ_OBJ = $(LIBSRC:%.c=build/fuzz/obj/%.o)
FUZZ_BIN = $(FUZZSRC:regress/fuzz/%.c=build/fuzz/%)
FUZZ_DEPS_STAMP = build/.fuzz-deps

build/fuzz/obj/%.o: %.c $(HDRS) | $(DEPS_STAMP) $(FUZZ_DEPS_STAMP)
	@mkdir -p $(@D)
	$(FUZZ_CC) -O1 -g -fsanitize=fuzzer-no-link $(FUZZ_SAN) $(WARN) \
	    -Wno-error $(PKG_CFLAGS) -c -o $@ $<

build/fuzz/%: regress/fuzz/%.c $(HDRS) $(FUZZ_OBJ)
	$(FUZZ_CC) -O1 -g -fsanitize=fuzzer $(FUZZ_SAN) $(WARN) -Wno-error \
	    $(PKG_CFLAGS) -o $@ $< $(FUZZ_OBJ) $(PKG_LIBS)

fuzz: $(FUZZSRC:regress/fuzz/fuzz_%.c=fuzz-run-%)
.SECONDARY: $(FUZZ_OBJ) $(FUZZ_BIN)

fuzz-run-%: build/fuzz/fuzz_%
	@regress/fuzz/run.sh $* $(FUZZ_TIME)

# The whole suite: unit tests, corpus replay and the e2e cases through
# real MariaDB and nginx, against the sanitizer build.
check: $(DEPS_STAMP) $(UNIT_BIN) $(FUZZ_REPLAY) build/shortd-asan shortd \
    lint-openapi
	/usr/bin/python3 regress/run.py --shortd build/shortd-asan

# docs/openapi.yaml, linted by Redocly CLI with its strict rule set.  The
# linter comes from the npm registry, pinned by regress/lint/'s
# package-lock.json, installed under build/lint by `npm ci` (again only
# when the lock changes), with the machine's Node.js (20.19+).
LINT_DIR = build/lint
REDOCLY	 = $(LINT_DIR)/node_modules/.bin/redocly
$(REDOCLY): regress/lint/package.json regress/lint/package-lock.json
	@command -v npm >/dev/null || { echo "lint: npm (Node.js 20.19 or \
	    later) is needed for the OpenAPI linter"; exit 1; }
	@mkdir -p $(LINT_DIR)
	cp regress/lint/package.json regress/lint/package-lock.json $(LINT_DIR)/
	cd $(LINT_DIR) && npm ci --no-audit --no-fund --loglevel=error
	touch $@

lint-openapi: $(REDOCLY)
	REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true \
	    NO_UPDATE_NOTIFIER=1 $(REDOCLY) lint --format=stylish \
	    --config regress/lint/redocly.yaml docs/openapi.yaml

e2e: $(DEPS_STAMP) build/shortd-asan
	/usr/bin/python3 regress/run.py --shortd build/shortd-asan --only e2e

# Scaled out, for real: MariaDB Galera (3 nodes on loopback, rsync SST,
# which needs ss from iproute2), two shortd instances, one nginx.
DEB_CLUSTER = galera-4 rsync iproute2 procps
.PHONY: check-cluster
check-cluster: $(DEPS_STAMP) build/shortd-asan
	@$(MAKE) --no-print-directory deps DEB_TEST="$(DEB_TEST) $(DEB_CLUSTER)"
	/usr/bin/python3 regress/cluster/run.py --shortd build/shortd-asan

run: $(DEPS_STAMP) shortd
	/usr/bin/python3 regress/stack.py run

# Debian packages for the build (first line) and the tests (second).
DEB_BUILD = gcc make pkg-config default-libmysqlclient-dev libargon2-dev \
	    libjsmn-dev libssl-dev libqrencode-dev libmaxminddb-dev
DEB_TEST  = mariadb-server mariadb-client nginx-light python3 \
	    python3-requests python3-jwt python3-argon2 python3-pymysql curl \
	    systemd mandoc man-db groff-base \
	    python3-jsonschema python3-yaml librsvg2-bin zbar-tools \
	    libmaxmind-db-writer-perl
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

# Again when the Makefile changes: it may list new packages.
$(DEPS_STAMP): Makefile
	@$(MAKE) --no-print-directory deps

# `make fuzz` only: clang and its libFuzzer/sanitizer runtimes.
DEB_FUZZ = clang libclang-rt-14-dev
fuzz-deps:
	@$(MAKE) --no-print-directory deps DEB_BUILD="$(DEB_FUZZ)" DEB_TEST= \
	    DEPS_STAMP=$(FUZZ_DEPS_STAMP)

$(FUZZ_DEPS_STAMP):
	@$(MAKE) --no-print-directory fuzz-deps

# The web page in a real browser: Debian's chromium, driven by
# playwright-core from npm (pinned in regress/ui/package-lock.json,
# installed into regress/ui/node_modules); no browser is downloaded.
DEB_UI	  = chromium fonts-dejavu-core
UI_STAMP  = regress/ui/node_modules/.ok
UI_SHOTS  = 01-login 03-wrong-password 05-shortened-and-copied 06-links \
	    07-edit-error 08-delete-confirm 11-phone-links-top \
	    16-titles-and-tags 17-tag-filters 19-key-created \
	    21-delete-account 22-import-result

check-ui: $(DEPS_STAMP) build/.deps-ui $(UI_STAMP) shortd
	/usr/bin/python3 regress/ui/run.py --shortd ./shortd

deps-ui: | $(DEPS_STAMP)
	@missing=""; for p in $(DEB_UI); do \
	    dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | \
	        grep -q '^install ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -z "$$missing" ]; then echo "deps-ui: all Debian packages present"; \
	elif [ "$$(id -u)" = 0 ]; then \
	    echo "deps-ui: installing$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
	        apt-get install -y -qq --no-install-recommends $$missing \
	        >/dev/null || exit 1; \
	else echo "deps-ui: missing packages; run as root:"; \
	    echo "  apt-get install$$missing"; exit 1; fi
	@touch build/.deps-ui

build/.deps-ui: | $(DEPS_STAMP)
	@$(MAKE) --no-print-directory deps-ui

$(UI_STAMP): regress/ui/package.json regress/ui/package-lock.json
	@command -v node >/dev/null && command -v npm >/dev/null || { \
	    echo "check-ui: needs Node.js 20 or later with npm"; exit 1; }
	cd regress/ui && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

# The screenshots of the README and docs/web.md, from the last `make check-ui`.
ui-screenshots:
	@mkdir -p docs/screenshots
	for f in $(UI_SHOTS); do \
	    cp regress/out/ui/$$f.png docs/screenshots/ || exit 1; done

# The unit file names the installed paths; an existing shortd.conf is
# left alone (the shipped one goes next to it as shortd.conf.dist).
# The container files built and run under rootful podman and buildah
# (no Docker engine needed): regress/containers/check.py.
DEB_CONTAINERS = debootstrap buildah podman runc conmon iptables \
	    containernetworking-plugins \
	    golang-github-containernetworking-plugin-dnsname \
	    podman-compose docker-compose python3-yaml
check-containers: $(DEPS_STAMP) deps-containers
	/usr/bin/python3 regress/containers/check.py

# The deps recipe with this list (its stamp file is not used).
deps-containers:
	@$(MAKE) --no-print-directory deps DEB_BUILD= \
	    DEB_TEST="$(DEB_CONTAINERS)" DEPS_STAMP=build/.deps-containers

# The Debian package, built with Debian's tools (debian/: debhelper's
# dh) from a copy of the tree in build/deb/src, so the worktree stays
# clean; the .deb, .changes and .buildinfo land in build/deb/.  Lintian
# checks the result and any error (E:) fails the build.  DEB_VERSION
# (default: debian/changelog's) is what `make check-vm` bumps to test an
# upgrade.
DEB_PKG	 = build-essential debhelper dpkg-dev lintian
DEB_SRC	 = Makefile daemon proto workers etc man docs sql www debian
DEB_VERSION ?= $(shell sed -n '1s/^[^(]*(\([^)]*\)).*/\1/p' debian/changelog)
.PHONY: deb deps-deb check-vm
deb: $(DEPS_STAMP) deps-deb
	rm -rf build/deb/src && mkdir -p build/deb/src
	tar cf - $(DEB_SRC) | tar xf - -C build/deb/src
	sed -i '1s/([^)]*)/($(DEB_VERSION))/' build/deb/src/debian/changelog
	cd build/deb/src && dpkg-buildpackage -b -us -uc \
	    > ../dpkg-buildpackage.log 2>&1 || { \
	    tail -40 ../dpkg-buildpackage.log; exit 1; }
	lintian --fail-on error build/deb/shortd_$(DEB_VERSION)_*.changes
	@ls build/deb/shortd_$(DEB_VERSION)_*.deb

# The package installed and run under a real systemd (PID 1 of a
# booted Debian container, rootful podman), upgraded to a bumped
# version, purged: regress/vm/check.py.
DEB_ARCH = $(shell dpkg --print-architecture)
DEB_UPGRADE = $(DEB_VERSION)+vm1
check-vm: $(DEPS_STAMP) deps-containers deps-deb
	@$(MAKE) --no-print-directory deb
	@$(MAKE) --no-print-directory deb DEB_VERSION=$(DEB_UPGRADE)
	/usr/bin/python3 regress/vm/check.py \
	    --deb build/deb/shortd_$(DEB_VERSION)_$(DEB_ARCH).deb \
	    --upgrade build/deb/shortd_$(DEB_UPGRADE)_$(DEB_ARCH).deb

deps-deb:
	@$(MAKE) --no-print-directory deps DEB_BUILD= DEB_TEST="$(DEB_PKG)" \
	    DEPS_STAMP=build/.deps-deb

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
	    $(DESTDIR)$(DATADIR) $(DESTDIR)$(MANDIR)/man5 \
	    $(DESTDIR)$(MANDIR)/man8 $(DESTDIR)$(UNITDIR) \
	    $(DESTDIR)$(SYSUSERSDIR)
	install -m 755 shortd $(DESTDIR)$(SBINDIR)/shortd
	install -m 644 man/shortd.8 $(DESTDIR)$(MANDIR)/man8/shortd.8
	install -m 644 man/shortd.conf.5 $(DESTDIR)$(MANDIR)/man5/shortd.conf.5
	if [ -e $(DESTDIR)$(SYSCONFDIR)/shortd/shortd.conf ]; then \
	    install -m 644 etc/shortd.conf \
	        $(DESTDIR)$(SYSCONFDIR)/shortd/shortd.conf.dist; \
	else install -m 644 etc/shortd.conf $(DESTDIR)$(SYSCONFDIR)/shortd/; fi
	sed -e 's|/usr/local/sbin|$(SBINDIR)|g' \
	    -e 's|/usr/local/etc|$(SYSCONFDIR)|g' etc/shortd.service \
	    > $(DESTDIR)$(UNITDIR)/shortd.service
	chmod 644 $(DESTDIR)$(UNITDIR)/shortd.service
	install -m 644 etc/shortd.sysusers $(DESTDIR)$(SYSUSERSDIR)/shortd.conf
	install -m 644 sql/schema.sql docs/openapi.yaml $(DESTDIR)$(DATADIR)/
	sed -e 's|/usr/share/shortd|$(DATADIR)|g' etc/mariadb-setup.sql \
	    > $(DESTDIR)$(DATADIR)/mariadb-setup.sql
	chmod 644 $(DESTDIR)$(DATADIR)/mariadb-setup.sql
	install -d $(DESTDIR)$(DATADIR)/www
	install -m 644 www/* $(DESTDIR)$(DATADIR)/www/

# The nginx site of the Debian package: the http block of the tests'
# template (etc/nginx-local.conf.in) with the package's paths, so the
# two cannot drift apart.
build/nginx-site.conf: etc/nginx-site.head etc/nginx-local.conf.in
	@mkdir -p $(@D)
	{ cat etc/nginx-site.head; sed -e '1,/^http {/d' -e '$$d' \
	    -e '/@PREFIX@/d' -e 's/^\t//' \
	    -e 's/server_name localhost;/server_name _;/' \
	    -e 's/@LISTEN@/80/' -e 's/@MAX_BODY@/64k/' \
	    -e 's/@IMPORT_MAX@/64m/' \
	    -e 's/@LOGIN_RATE@/10r\/s/' -e 's/@LOGIN_BURST@/20/' \
	    -e 's|@AUTH_SOCK@|unix:/run/shortd/auth.sock|' \
	    -e 's|@SHORTENER_SOCK@|unix:/run/shortd/shortener.sock|' \
	    -e 's|@STATUS_SOCK@|unix:/run/shortd/status.sock|' \
	    -e 's|@WWW_ROOT@|/usr/share/shortd/www|' \
	    etc/nginx-local.conf.in; } > $@.tmp
	@if grep -n '@[A-Z_]*@' $@.tmp; then \
	    echo "$@: a placeholder is left"; exit 1; fi
	mv $@.tmp $@

clean:
	rm -rf build shortd regress/out
