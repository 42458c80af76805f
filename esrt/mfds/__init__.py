"""mfds: the node's directory server.

One process per node. It owns the configuration repository (SQLite in $ESRT_HOME), serves a JSON
API over HTTP and keeps the live status every region reports. Modules:

    repository  the SQLite repository (no Twisted)
    api         the JSON API as plain functions over the repository
    server      the Twisted web process (`python -m esrt.mfds`)
    daemon      start/stop mfds detached (`esrt mfds --daemon` / `--stop`)
    client      a synchronous client for the CLI, regions and tests
"""
