#!/bin/sh
# PowerHA/HACMP application-server start script for one esrt region.
#
# Runs after the cluster has mounted the shared disk and configured the service address.
# 1. Kill leftovers of THIS server only (a crashed region, or one the cluster lost track of):
#    `casstop --force` kills exactly the processes recorded in the region's own run directory,
#    never processes picked by name, so other regions on the node are untouched.
# 2. Start the region from its region file on the shared disk; no definition is needed in this
#    node's repository and mfds need not run.
#
# Settings (edit or export): REGION, REGION_FILE, ESRT_HOME, ESRT (path of the esrt command).

REGION="${REGION:-ESSRV01}"
REGION_FILE="${REGION_FILE:-/shared/esrt/$REGION.region.json}"
ESRT_HOME="${ESRT_HOME:-/var/lib/esrt}"
ESRT="${ESRT:-esrt}"
export ESRT_HOME

"$ESRT" casstop -r "$REGION" --force || true
exec "$ESRT" casstart -r "$REGION" --config "$REGION_FILE" --wait --timeout 60
