"""What the processes of one node share, below both mfds and the region.

mfds starts and stops regions and writes admin lines into their console logs; a region fetches
its definition from mfds and reports its status to it; the CLI, the OCF agent's helpers and the
test tools do all of these. So the pieces they share live here, and `esrt.mfds` and
`esrt.region` never import each other:

* `mfds_client`: the client of mfds's JSON API and the node token that authenticates it;
* `definitions`: a server's definition, from a region file or from mfds;
* `runs`: a region's run records (run directory, pids, last status), as anyone reads them;
* `control`: starting a region process detached and stopping it;
* `console`: the console log's line shape, written by the region and by mfds, and its tail.
"""
