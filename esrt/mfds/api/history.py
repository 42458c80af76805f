"""The history resource: the points a server's region keeps for the graphs of Monitor &
Control (esrt.region.history), read from its run directory."""

from esrt.mfds.api.routes import ApiError, Response, Route
from esrt.node.runs import read_history
from esrt.paths import RegionPaths

MAX_POINTS = 10000


class History:
    """Reads the graph points of the servers defined in `repository`."""

    def __init__(self, repository, home):
        self.repository = repository
        self.home = home

    def routes(self):
        """The route of /api/servers/{name}/history."""
        return [Route(
            "GET", "/api/servers/{name}/history", lambda call: Response(200, self.points(
                call.params["name"], call.query.get("since"), call.query.get("limit"))),
            "Calls, errors, latency, queue and busy SEPs over the last hour (points of the "
            "server's history_interval)", "readonly",
            {200: ("{name, interval, points: [{t, calls, errors, p50, p99, queued, "
                   "queued_max, busy, busy_max, seps, services}]}", {"type": "object"})},
            (400, 401, 404),
            query=(("since", {"type": "number"}, "only points after this Unix time"),
                   ("limit", {"type": "integer", "maximum": MAX_POINTS},
                    "at most this many of the newest points")))]

    def points(self, name, since=None, limit=None):
        """The region's points for server `name`, oldest first."""
        try:
            since = float(since) if since not in (None, "") else None
            limit = int(limit) if limit not in (None, "") else None
        except ValueError:
            raise ApiError(400, "bad_query", "since must be a Unix time (seconds) and limit a "
                           "whole number of points") from None
        if limit is not None and not 1 <= limit <= MAX_POINTS:
            raise ApiError(400, "bad_query", f"limit must be from 1 to {MAX_POINTS}")
        definition = self.repository.get_server(name)
        run_dir = RegionPaths(definition, self.home).run
        try:
            points = read_history(run_dir, since, limit)
        except OSError as exc:
            raise ApiError(500, "unreadable", f"cannot read the history of {name} in "
                           f"{run_dir}: {exc.strerror}") from None
        return {"name": name, "interval": definition.get("history_interval", 5),
                "points": points}
