#!/bin/bash
# Stand-in for the official nginx image's entrypoint (see Dockerfile).
# Before starting nginx:
#  - NGINX_ENTRYPOINT_LOCAL_RESOLVERS set: NGINX_LOCAL_RESOLVERS gets the
#    nameserver of /etc/resolv.conf (IPv6 in brackets).  The official
#    script takes every nameserver line; under Docker there is one, the
#    embedded DNS that knows the services.  podman lists its own DNS
#    (dnsname) first and then the host's, which know nothing of the
#    services, and nginx asks its resolvers in turn: so the first only.
#  - every /etc/nginx/templates/NAME.template becomes
#    /etc/nginx/conf.d/NAME, with the environment's variables (and only
#    those) substituted by envsubst.
set -eo pipefail

if [ "$1" = nginx ] || [ "$1" = nginx-debug ]; then
	if [ -n "${NGINX_ENTRYPOINT_LOCAL_RESOLVERS:-}" ]; then
		NGINX_LOCAL_RESOLVERS=$(awk '$1 == "nameserver" {
			print ($2 ~ /:/) ? "[" $2 "]" : $2; exit }' \
			/etc/resolv.conf)
		export NGINX_LOCAL_RESOLVERS
	fi
	vars=$(env | sed -n 's/^\([A-Za-z_][A-Za-z0-9_]*\)=.*/${\1}/p' |
	    tr '\n' ' ')
	for t in /etc/nginx/templates/*.template; do
		[ -f "$t" ] || continue
		out=/etc/nginx/conf.d/$(basename "$t" .template)
		echo "entrypoint: $t -> $out" >&2
		envsubst "$vars" < "$t" > "$out"
	done
fi
exec "$@"
