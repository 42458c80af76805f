"""The console resource: the end of a server's console.log or console.bak, searched."""

from esrt.mfds.api.routes import ApiError, Response, Route
from esrt.node.console import tail_lines
from esrt.paths import RegionPaths

CONSOLE_FILES = {"log": "console_log", "bak": "console_bak"}
MAX_CONSOLE_LINES = 5000


class Console:
    """Reads the console logs of the servers defined in `repository`."""

    def __init__(self, repository, home):
        self.repository = repository
        self.home = home

    def routes(self):
        """The route of /api/servers/{name}/console."""
        return [Route(
            "GET", "/api/servers/{name}/console", lambda call: Response(200, self.tail(
                call.params["name"], call.query.get("file", "log"),
                call.query.get("lines", 200), call.query.get("search"))),
            "Tail (and search) console.log or console.bak", "readonly",
            {200: ("{file, exists, lines, matched, search}", {"type": "object"})},
            (400, 401, 404),
            query=(("file", {"type": "string", "enum": list(CONSOLE_FILES), "default": "log"},
                    "log: console.log; bak: console.bak, the previous run's"),
                   ("lines", {"type": "integer", "default": 200,
                              "maximum": MAX_CONSOLE_LINES}, "how many of the last lines"),
                   ("search", {"type": "string"}, "only lines holding this text, any case")))]

    def tail(self, name, which="log", lines=200, search=None):
        """The last `lines` lines of console.log or console.bak (`which`), optionally only
        those containing `search` (case-insensitive)."""
        if which not in CONSOLE_FILES:
            raise ApiError(400, "bad_file", f"console file {which!r} is unknown: use "
                           "file=log (console.log) or file=bak (console.bak)")
        try:
            count = int(lines)
        except (TypeError, ValueError):
            count = -1
        if not 1 <= count <= MAX_CONSOLE_LINES:
            raise ApiError(400, "bad_lines", f"lines={lines!r} must be a number from 1 to "
                           f"{MAX_CONSOLE_LINES}")
        definition = self.repository.get_server(name)
        path = getattr(RegionPaths(definition, self.home), CONSOLE_FILES[which])
        try:
            found, matched = tail_lines(path, count, search)
        except FileNotFoundError:
            return {"name": name, "file": str(path), "exists": False, "lines": [],
                    "matched": 0, "search": search or ""}
        except OSError as exc:
            raise ApiError(500, "unreadable", f"cannot read {path}: {exc.strerror}") from None
        return {"name": name, "file": str(path), "exists": True, "lines": found,
                "matched": matched, "search": search or ""}
