#!/bin/sh
# PowerHA/HACMP custom application monitor for one esrt region: exit 0 healthy, non-zero failed.
#
# The region's own status is authoritative (`esrt server status`: 0 running, 7 stopped,
# 1 failed) and needs no mfds: a region keeps serving while mfds is down, so a monitor must
# not fail over just because mfds is down.
#
# With LISTENER set, the listener is also checked the way the report's monitor did, by
# grepping mdump: the first mfListenerStatus after the line "CN: <listener>" must be Started.
# That check needs mfds; when mdump says SERVER_DOWN it is skipped.

REGION="${REGION:-ESSRV01}"
LISTENER="${LISTENER:-}"
ESRT_HOME="${ESRT_HOME:-/var/lib/esrt}"
ESRT="${ESRT:-esrt}"
export ESRT_HOME

"$ESRT" server status "$REGION" || exit 1
[ -z "$LISTENER" ] && exit 0

dump=$("$ESRT" mdump localhost "$REGION" 2>&1)
if echo "$dump" | grep -q SERVER_DOWN; then
    exit 0
fi
state=$(echo "$dump" | awk -v cn="CN: $LISTENER" '
    $0 == cn { found = 1; next }
    found && /^mfListenerStatus:/ { sub(/^mfListenerStatus: */, ""); print; exit }')
if [ "$state" = "Started" ]; then
    exit 0
fi
echo "$REGION: listener \"$LISTENER\" is ${state:-missing}" >&2
exit 1
