#!/bin/bash
# Stand-in entrypoint of the official mariadb image (see Dockerfile):
# on an empty datadir, initialise it with a server that does not listen
# on TCP (so healthcheck.sh --connect fails until the end), create the
# root password, MARIADB_DATABASE and MARIADB_USER/PASSWORD, the
# healthcheck user, run /docker-entrypoint-initdb.d/*.{sh,sql,sql.gz}
# in MARIADB_DATABASE, stop that server; then run the real one.
set -eo pipefail

log() { echo "entrypoint: $*" >&2; }

if [ "${1:0:1}" = - ]; then
	set -- mariadbd "$@"
fi
if [ "$1" != mariadbd ] && [ "$1" != mysqld ]; then
	exec "$@"
fi

DATADIR=/var/lib/mysql
SOCK=/run/mysqld/mysqld.sock
DB=${MARIADB_DATABASE:-${MYSQL_DATABASE:-}}
USER_NAME=${MARIADB_USER:-${MYSQL_USER:-}}
USER_PW=${MARIADB_PASSWORD:-${MYSQL_PASSWORD:-}}
ROOT_PW=${MARIADB_ROOT_PASSWORD:-${MYSQL_ROOT_PASSWORD:-}}
EMPTY_ROOT=${MARIADB_ALLOW_EMPTY_ROOT_PASSWORD:-${MYSQL_ALLOW_EMPTY_PASSWORD:-}}
RANDOM_ROOT=${MARIADB_RANDOM_ROOT_PASSWORD:-${MYSQL_RANDOM_ROOT_PASSWORD:-}}

chown mysql:mysql "$DATADIR" /run/mysqld

sql_escape() { local s=${1//\\/\\\\}; printf '%s' "${s//\'/\\\'}"; }

if [ ! -d "$DATADIR/mysql" ]; then
	if [ -z "$ROOT_PW" ] && [ -z "$EMPTY_ROOT" ] && [ -z "$RANDOM_ROOT" ]
	then
		log "database is uninitialized and no root password option" \
		    "is given (MARIADB_ROOT_PASSWORD," \
		    "MARIADB_ALLOW_EMPTY_ROOT_PASSWORD or" \
		    "MARIADB_RANDOM_ROOT_PASSWORD)"
		exit 1
	fi
	if [ -n "$RANDOM_ROOT" ]; then
		ROOT_PW=$(head -c 24 /dev/urandom | base64)
		log "GENERATED ROOT PASSWORD: $ROOT_PW"
	fi
	log "initialising $DATADIR"
	mariadb-install-db --user=mysql --datadir="$DATADIR" \
	    --auth-root-authentication-method=normal --skip-test-db \
	    --skip-name-resolve >/dev/null
	mariadbd --user=mysql --datadir="$DATADIR" --skip-networking \
	    --socket="$SOCK" &
	pid=$!
	for _ in $(seq 300); do
		mariadb-admin --socket="$SOCK" -uroot ping >/dev/null 2>&1 &&
		    break
		kill -0 "$pid" 2>/dev/null || { log "init server died"; exit 1; }
		sleep 0.1
	done
	hc_pw=$(head -c 24 /dev/urandom | base64)
	{
		echo "SET @@SESSION.SQL_LOG_BIN=0;"
		echo "DROP USER IF EXISTS ''@'localhost', ''@'$(hostname)'," \
		    "'root'@'$(hostname)';"
		echo "ALTER USER 'root'@'localhost' IDENTIFIED BY '$(sql_escape "$ROOT_PW")';"
		echo "CREATE USER 'root'@'%' IDENTIFIED BY '$(sql_escape "$ROOT_PW")';"
		echo "GRANT ALL ON *.* TO 'root'@'%' WITH GRANT OPTION;"
		for h in 127.0.0.1 ::1 localhost; do
			echo "CREATE USER 'healthcheck'@'$h' IDENTIFIED BY '$(sql_escape "$hc_pw")';"
			echo "GRANT USAGE ON *.* TO 'healthcheck'@'$h';"
		done
		if [ -n "$DB" ]; then
			echo "CREATE DATABASE IF NOT EXISTS \`$DB\`;"
		fi
		if [ -n "$USER_NAME" ] && [ -n "$USER_PW" ]; then
			echo "CREATE USER '$(sql_escape "$USER_NAME")'@'%' IDENTIFIED BY '$(sql_escape "$USER_PW")';"
			if [ -n "$DB" ]; then
				echo "GRANT ALL ON \`$DB\`.* TO '$(sql_escape "$USER_NAME")'@'%';"
			fi
		fi
		echo "FLUSH PRIVILEGES;"
	} | mariadb --socket="$SOCK" -uroot
	umask 077
	printf '[mariadb-client]\nport=3306\nsocket=%s\nuser=healthcheck\npassword=%s\n' \
	    "$SOCK" "$hc_pw" > "$DATADIR/.my-healthcheck.cnf"
	chown mysql:mysql "$DATADIR/.my-healthcheck.cnf"
	client=(mariadb --socket="$SOCK" -uroot "-p$ROOT_PW")
	[ -n "$DB" ] && client+=("--database=$DB")
	for f in /docker-entrypoint-initdb.d/*; do
		case "$f" in
		*.sh)		log "running $f"; . "$f" ;;
		*.sql)		log "running $f"; "${client[@]}" < "$f" ;;
		*.sql.gz)	log "running $f"; gzip -dc "$f" | "${client[@]}" ;;
		*)		[ -e "$f" ] && log "ignoring $f" ;;
		esac
	done
	mariadb-admin --socket="$SOCK" -uroot "-p$ROOT_PW" shutdown
	wait "$pid"
	log "initialisation done"
fi

exec "$@" --user=mysql
