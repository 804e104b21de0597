#!/bin/bash
# Stand-in for the official image's healthcheck.sh, the two tests
# docker-compose.yml uses, as the healthcheck user the entrypoint made:
#   --connect              a TCP connection works (not during init)
#   --innodb_initialized   InnoDB is up
set -eo pipefail
cnf=/var/lib/mysql/.my-healthcheck.cnf
[ -r "$cnf" ] || exit 1
for arg; do
	case "$arg" in
	--connect)
		mariadb --defaults-extra-file="$cnf" --protocol=tcp \
		    -h 127.0.0.1 -e 'SELECT 1' >/dev/null
		;;
	--innodb_initialized)
		out=$(mariadb --defaults-extra-file="$cnf" -N -B -e \
		    "SELECT 1 FROM information_schema.ENGINES WHERE engine =
		    'InnoDB' AND support IN ('YES', 'DEFAULT', 'ENABLED')")
		[ "$out" = 1 ]
		;;
	*)
		echo "healthcheck.sh (stand-in): unsupported $arg" >&2
		exit 2
		;;
	esac
done
