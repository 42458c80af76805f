"""The servers resource: definitions, the status regions report, starting and stopping.

Starting and stopping a region take time, so those routes answer a Later: the web layer runs
it in a thread (never in the reactor) and sends the Response it returns.
"""

import json
import time
from datetime import datetime, timezone

from esrt.mfds.api.routes import ApiError, Later, Response, Route, schema_ref
from esrt.mfds.repository import ServerExists, ServerNotFound
from esrt.node.control import RegionControlError, start_region, stop_region
from esrt.node.runs import LIVE_STATES, effective_status
from esrt.paths import RegionPaths
from esrt.procs import process_alive
from esrt.settings import SettingError

# How long a start waits for the region's first status file (see Servers._start).
START_CONSOLE_WAIT = 15.0


def _truthy(value):
    return str(value or "").lower() in ("1", "true", "yes", "on")


class Servers:
    """Server definitions in the repository, and the regions that run them."""

    def __init__(self, repository, home, authority):
        self.repository = repository
        self.home = home
        self.authority = authority

    def routes(self):
        """The routes of /api/servers and of one server."""
        server = schema_ref("Server")
        message = {"type": "object", "properties": {"name": {"type": "string"},
                                                    "message": {"type": "string"}}}
        return [
            Route("GET", "/api/servers", lambda call: Response(200, {
                "servers": self.objects()}), "List servers with their status", "readonly",
                {200: ("every server, by name", {"type": "object", "properties": {
                    "servers": {"type": "array", "items": server}}})}, (401,)),
            Route("POST", "/api/servers", lambda call: Response(201, self.create(
                call.json(), call.who)), "Create a server", "admin",
                {201: ("created", server)}, (400, 401, 403, 409), schema_ref("Definition")),
            Route("GET", "/api/servers/{name}", lambda call: Response(200, self.object(
                call.params["name"])), "One server", "readonly",
                {200: ("the server", server)}, (401, 404)),
            Route("PUT", "/api/servers/{name}", lambda call: Response(200, self.update(
                call.params["name"], call.json(), call.who)),
                "Change some settings of a server", "admin", {200: ("changed", server)},
                (400, 401, 403, 404), schema_ref("DefinitionChanges")),
            Route("DELETE", "/api/servers/{name}", self._delete_route,
                  "Delete a stopped server", "admin", {204: ("deleted", None)},
                  (401, 403, 404, 409)),
            Route("GET", "/api/servers/{name}/status", lambda call: Response(
                200, self.status_object(call.params["name"])), "Last reported status",
                "readonly", {200: ("status", {"type": "object", "properties": {
                    "mfServerStatus": schema_ref("ServerStatus"),
                    "status": schema_ref("StatusDocument")}})}, (401, 404)),
            Route("PUT", "/api/servers/{name}/status", self._report_route,
                  "Report a region's status (regions, with the node token)", "admin",
                  {204: ("stored", None)}, (400, 401, 403, 404),
                  schema_ref("StatusDocument")),
            Route("POST", "/api/servers/{name}/start", lambda call: self.start_later(
                call.params["name"], call.who),
                "Start the region (returns once it is spawned)", "operator",
                {202: ("starting", message)}, (401, 403, 404, 409)),
            Route("POST", "/api/servers/{name}/stop", lambda call: self.stop_later(
                call.params["name"], call.who, _truthy(call.query.get("force"))),
                "Stop the region (force=true kills its processes)", "operator",
                {200: ("stopped", message)}, (401, 403, 404, 409),
                query=(("force", {"type": "boolean"}, "kill the region's processes"),)),
        ]

    def _delete_route(self, call):
        self.delete(call.params["name"], call.who)
        return Response(204)

    def _report_route(self, call):
        name = call.params["name"]
        self.authority.require(call.who, "admin", "report a region's status", name)
        self.repository.set_status(name, call.json(what="status document"))
        return Response(204)

    # -- what a region reported ------------------------------------------------------------

    def reported(self, name, definition=None):
        """(document, received) of region `name`: the newer of its last report and its
        run/status.json (a region on this node always writes the file, even when its report
        to mfds is lost or refused)."""
        reported = self.repository.get_status(name)
        document, received = reported if reported else (None, None)
        try:
            definition = definition or self.repository.get_server(name)
            status_file = RegionPaths(definition, self.home).status_file
            mtime = status_file.stat().st_mtime
        except (OSError, ServerNotFound):
            return document, received
        if received:
            try:
                if datetime.fromisoformat(received).timestamp() >= int(mtime):
                    return document, received
            except ValueError:
                pass
        try:
            on_disk = json.loads(status_file.read_text())
        except (OSError, ValueError):
            return document, received
        if not isinstance(on_disk, dict):
            return document, received
        stamp = datetime.fromtimestamp(int(mtime), timezone.utc).isoformat(timespec="seconds")
        return on_disk, stamp

    def live_pid(self, name):
        """The pid of region `name` when it is running, else None."""
        document, _ = self.reported(name)
        if document and effective_status(document) in LIVE_STATES:
            return document.get("pid")
        return None

    # -- definitions -----------------------------------------------------------------------

    def objects(self):
        """Every server object, sorted by name."""
        return [self._object(d) for d in self.repository.list_servers()]

    def object(self, name):
        """The server object of `name` (ServerNotFound when there is none)."""
        return self._object(self.repository.get_server(name))

    def _object(self, definition):
        name = definition["name"]
        document, received = self.reported(name, definition)
        created, updated = self.repository.server_times(name)
        paths = RegionPaths(definition, self.home)
        return {"name": name, "definition": definition,
                "mfServerStatus": effective_status(document),
                "status": document, "received": received,
                "created": created, "updated": updated,
                "paths": {"root": str(paths.root), "data": str(paths.data),
                          "deploy": str(paths.deploy), "casroot": str(paths.casroot)}}

    def status_object(self, name):
        """{name, mfServerStatus, status, received} of server `name`."""
        self.repository.get_server(name)
        document, received = self.reported(name)
        return {"name": name, "mfServerStatus": effective_status(document),
                "status": document, "received": received}

    def create(self, definition, who=None):
        """Create a server (admin); return its server object."""
        label = str(definition.get("name") or "?")
        self.authority.require(who, "admin", "create servers", label)
        try:
            clean = self.repository.create_server(definition)
        except (SettingError, ServerExists) as exc:
            self.authority.record(who, "create server", label, "failed", exc)
            raise
        self.authority.record(who, "create server", clean["name"], "ok", definition=clean)
        return self._object(clean)

    def update(self, name, changes, who=None):
        """Apply partial `changes` to server `name` (admin); return its server object."""
        self.authority.require(who, "admin", "edit servers", name)
        try:
            clean = self.repository.update_server(name, changes)
        except (SettingError, ServerNotFound) as exc:
            self.authority.record(who, "edit server", name, "failed", exc)
            raise
        self.authority.record(who, "edit server", name, "ok", ", ".join(sorted(changes)),
                              clean)
        return self._object(clean)

    def delete(self, name, who=None):
        """Delete a stopped server (admin)."""
        self.authority.require(who, "admin", "delete servers", name)
        definition = self.repository.get_server(name)
        pid = self.live_pid(name)
        if pid:
            self.authority.record(who, "delete server", name, "failed", f"running (pid {pid})")
            raise ApiError(409, "running", f"server {name} is running (pid {pid}): stop it "
                           f"first with `esrt casstop -r {name}`, then delete it")
        self.repository.delete_server(name)
        self.authority.record(who, "delete server", name, "ok", definition=definition)

    # -- start / stop (slow: run in a thread through Later) ---------------------------------

    def start_later(self, name, who=None):
        """Check and prepare starting region `name` (operator); the Later starts it."""
        self.authority.require(who, "operator", "start servers", name)
        definition = self.repository.get_server(name)
        return Later(self._start, name, definition, who)

    def _start(self, name, definition, who):
        try:
            started = start_region(name, home=self.home, definition=definition, wait=False)
        except (RegionControlError, OSError) as exc:
            self.authority.record(who, "start", name, "failed", exc, definition)
            raise ApiError(409, "start_failed", f"cannot start {name}: {exc}") from None
        pid = started.get("pid")
        # The region moves console.log to console.bak as it opens its console, and writes
        # status.json after that: wait for it, so that our line lands in the new log.
        status_file = RegionPaths(definition, self.home).status_file
        deadline = time.monotonic() + START_CONSOLE_WAIT
        while (not status_file.exists() and process_alive(pid)
               and time.monotonic() < deadline):
            time.sleep(0.05)
        self.authority.record(who, "start", name, "ok", f"region pid {pid}", definition)
        return Response(202, {"name": name, "pid": pid, "mfServerStatus": "Starting",
                              "message": f"{name} starting (pid {pid})"})

    def stop_later(self, name, who=None, force=False):
        """Check and prepare stopping region `name` (operator); the Later stops it."""
        self.authority.require(who, "operator", "stop servers", name)
        definition = self.repository.get_server(name)
        return Later(self._stop, name, definition, who, force)

    def _stop(self, name, definition, who, force):
        action = "force stop" if force else "stop"
        # Logged before: a clean stop's last console lines are the region's own.
        self.authority.record(who, action, name, "requested", definition=definition)
        try:
            message = stop_region(name, home=self.home, force=force)
        except (RegionControlError, OSError) as exc:
            self.authority.record(who, action, name, "failed", exc, definition)
            raise ApiError(409, "stop_failed", f"cannot stop {name}: {exc}") from None
        self.authority.record(who, action, name, "ok", message, definition)
        return Response(200, {"name": name, "message": message})
