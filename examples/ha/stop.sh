#!/bin/sh
# PowerHA/HACMP application-server stop script for one esrt region.
#
# Orderly stop first (listeners close, calls in flight finish, SEPs stop); if that does not
# finish in time, kill this region's own recorded processes. Exits 0 once the region is down,
# so the cluster can release the shared disk and the service address.

REGION="${REGION:-ESSRV01}"
ESRT_HOME="${ESRT_HOME:-/var/lib/esrt}"
ESRT="${ESRT:-esrt}"
export ESRT_HOME

if ! "$ESRT" casstop -r "$REGION" --timeout 30; then
    echo "orderly stop of $REGION failed: forcing" >&2
    "$ESRT" casstop -r "$REGION" --force
fi
"$ESRT" server status "$REGION" >/dev/null
[ $? -eq 7 ]
