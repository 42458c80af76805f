"""mfds's JSON API, free of any web framework: (method, path, query, body, who) -> Response.

server.py plugs this into Twisted web; keeping the routing and the rules here lets them read
as plain functions. Every error leaves as {"error": {"code", "message", "fields"?}}.

Authorization lives here too: `who` is the esrt.mfds.users.Principal the web layer
authenticated (None = authentication is off). Reading needs readonly; starting, stopping and
deploying need operator; creating, editing and deleting servers and managing accounts need
admin. The last admin account can be neither deleted nor demoted (409 last_admin).
Every change (and every refused attempt) is written to the audit log, and changes to a server
also to that server's console log (ESAD0001I/ESAD0002W).

Starting and stopping a region take time, so those routes answer a Later: the web layer runs it
in a thread (never in the reactor) and sends the Response it returns.
"""

import json
import os
import signal
import time
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import unquote

import esrt
from esrt.home import Home
from esrt.mfds.repository import ServerExists, ServerNotFound
from esrt.mfds.users import (OPEN, LastAdmin, NoSuchUser, UserError, UserExists, audit,
                             check_account)
from esrt.node.console import format_line, tail_lines
from esrt.node.control import RegionControlError, start_region, stop_region
from esrt.node.runs import LIVE_STATES, effective_status
from esrt.paths import RegionPaths
from esrt.procs import process_alive
from esrt.settings import SettingError

CONSOLE_FILES = {"log": "console_log", "bak": "console_bak"}
MAX_CONSOLE_LINES = 5000
START_CONSOLE_WAIT = 15.0

MAX_PACKAGE_BYTES = 64 * 1024 * 1024


class Response:
    """What the API answers: an HTTP status and a JSON-able body (None = no body)."""

    def __init__(self, status, body=None):
        self.status = status
        self.body = body

    def encode(self):
        """The body as UTF-8 JSON bytes (b"" when there is none)."""
        if self.body is None:
            return b""
        return json.dumps(self.body).encode("utf-8") + b"\n"


class ApiError(Exception):
    """An error answer: HTTP status, short machine code, human message, optional fields."""

    def __init__(self, status, code, message, fields=None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.fields = fields

    def response(self):
        error = {"code": self.code, "message": self.message}
        if self.fields:
            error["fields"] = self.fields
        return Response(self.status, {"error": error})


class Later:
    """A slow answer: call run() in a worker thread; it returns the Response (never raises)."""

    def __init__(self, api, function, *args):
        self._api = api
        self._function = function
        self._args = args

    def run(self):
        """Run the slow part; errors become error Responses like handle()'s."""
        return self._api.guard(self._function, *self._args)


def _truthy(value):
    return str(value or "").lower() in ("1", "true", "yes", "on")


def _package_name(manifest, filename):
    name = manifest.get("package") or manifest.get("service")
    if not name:
        name = Path(filename or "package.car").stem
    return str(name)


def _programs(manifest):
    return [entry.get("program") for entry in manifest.get("programs") or []
            if isinstance(entry, dict) and entry.get("program")]


class MfdsApi:
    """The routes of mfds's JSON API over one Repository."""

    def __init__(self, repository, home, users=None):
        self.repository = repository
        self.home = home if isinstance(home, Home) else Home(home)
        self.users = users
        # Set by the web layer: called with an account name whose password an admin reset,
        # to end that account's sessions.
        self.on_password_change = None

    # -- dispatch --------------------------------------------------------------------------

    def handle(self, method, path, query=None, body=b"", who=None):
        """Answer one request with a Response or a Later; never raises ApiError & co.

        `who` is the authenticated Principal (None: authentication is off, everyone is admin).
        """
        return self.guard(self._route, method.upper(), path, query or {}, body or b"",
                          who or OPEN)

    def guard(self, function, *args):
        """Call function(*args), turning the API's known errors into error Responses."""
        try:
            return function(*args)
        except ApiError as exc:
            return exc.response()
        except SettingError as exc:
            return ApiError(400, "invalid", f"invalid definition: {exc}",
                            exc.fields).response()
        except ServerNotFound as exc:
            return ApiError(404, "not_found", str(exc)).response()
        except ServerExists as exc:
            return ApiError(409, "exists", str(exc)).response()
        except NoSuchUser as exc:
            return ApiError(404, "not_found", str(exc)).response()

    def _route(self, method, path, query, body, who):
        parts = [unquote(part) for part in path.strip("/").split("/") if part]
        if parts[:1] != ["api"]:
            raise ApiError(404, "not_found", f"no such path {path}: the API lives under /api/")
        parts = parts[1:]
        if parts == ["health"]:
            self._allow(method, path, "GET")
            return Response(200, self.health())
        if parts == ["openapi.json"]:
            self._allow(method, path, "GET")
            from esrt.mfds.openapi import openapi_document
            return Response(200, openapi_document())
        if parts == ["users"]:
            self._allow(method, path, "GET", "POST")
            if method == "GET":
                self.require(who, "admin", "list the accounts", "users")
                return Response(200, {"users": self.users.list() if self.users else []})
            return Response(201, self.create_user(self._json(body), who))
        if len(parts) == 2 and parts[0] == "users":
            name = parts[1]
            self._allow(method, path, "GET", "PUT", "DELETE")
            if method == "GET":
                self.require(who, "admin", "see the accounts", name)
                return Response(200, self._account_store().get(name))
            if method == "PUT":
                return Response(200, self.update_user(name, self._json(body), who))
            self.delete_user(name, who)
            return Response(204)
        if parts == ["servers"]:
            self._allow(method, path, "GET", "POST")
            if method == "GET":
                return Response(200, {"servers": self.server_objects()})
            definition = self._json(body)
            return Response(201, self.create_server(definition, who))
        if len(parts) == 2 and parts[0] == "servers":
            name = parts[1]
            self._allow(method, path, "GET", "PUT", "DELETE")
            if method == "GET":
                return Response(200, self._server_object(self.repository.get_server(name)))
            if method == "PUT":
                return Response(200, self.update_server(name, self._json(body), who))
            self.delete_server(name, who)
            return Response(204)
        if len(parts) == 3 and parts[0] == "servers":
            return self._server_leaf(method, path, query, body, who, parts[1], parts[2])
        raise ApiError(404, "not_found", f"no such path {path}: see /api/servers, /api/users, "
                       "/api/health, /api/openapi.json")

    def _server_leaf(self, method, path, query, body, who, name, leaf):
        if leaf == "status":
            self._allow(method, path, "GET", "PUT")
            if method == "PUT":
                self.require(who, "admin", "report a region's status", name)
                self.repository.set_status(name, self._json(body, what="status document"))
                return Response(204)
            return Response(200, self._status_object(name))
        if leaf == "packages":
            self._allow(method, path, "GET", "POST")
            if method == "GET":
                return Response(200, {"packages": self.repository.list_packages(name)})
            return Response(201, self.deploy(name, body, query.get("filename"), who))
        if leaf == "services":
            self._allow(method, path, "GET")
            return Response(200, {"services": self.services(name)})
        if leaf == "console":
            self._allow(method, path, "GET")
            return Response(200, self.console(name, query.get("file", "log"),
                                              query.get("lines", 200), query.get("search")))
        if leaf == "start":
            self._allow(method, path, "POST")
            return self.start_later(name, who)
        if leaf == "stop":
            self._allow(method, path, "POST")
            return self.stop_later(name, who, _truthy(query.get("force")))
        raise ApiError(404, "not_found", f"no such path {path}: a server has status, packages, "
                       "services, console, start and stop")

    # -- authorization and audit -----------------------------------------------------------

    def require(self, who, role, what, target):
        """Raise 403 (and audit the refusal) unless `who` has at least `role`."""
        who = who or OPEN
        if who.allows(role):
            return
        self.record(who, what, target, "denied", f"role {who.role} lacks {role}")
        raise ApiError(403, "forbidden", f"user {who.name} (role {who.role}) may not {what}: "
                       f"that needs the {role} role; ask an admin")

    def record(self, who, action, target, outcome, detail=None, definition=None):
        """Write an admin action to the audit log and, for a server, to its console log."""
        who = who or OPEN
        try:
            audit(self.home, who.name, action, target, outcome, detail)
        except OSError as exc:
            print(f"mfds: cannot write the audit log in {self.home.root}: {exc}")
        if definition is None:
            return
        message_id = "ESAD0002W" if outcome in ("failed", "denied") else "ESAD0001I"
        text = f"admin action {action} {outcome} by user {who.name}"
        if detail:
            text += f": {detail}"
        line = format_line(time.time(), os.getpid(), definition["name"], message_id, text)
        log = RegionPaths(definition, self.home).console_log
        try:
            log.parent.mkdir(parents=True, exist_ok=True)
            with open(log, "a", encoding="utf-8") as out:
                out.write(line + "\n")
        except OSError:
            pass  # the audit log has it; a missing log directory must not fail the action

    @staticmethod
    def _allow(method, path, *methods):
        if method not in methods:
            raise ApiError(405, "method_not_allowed",
                           f"{method} is not allowed on {path}: use {' or '.join(methods)}")

    @staticmethod
    def _json(body, what="request body"):
        try:
            value = json.loads(body.decode("utf-8") if body else "")
        except (UnicodeDecodeError, ValueError) as exc:
            raise ApiError(400, "bad_json", f"the {what} is not valid JSON ({exc}): send a "
                           "JSON object with Content-Type application/json") from None
        if not isinstance(value, dict):
            raise ApiError(400, "bad_json", f"the {what} must be a JSON object, "
                           f"got {type(value).__name__}")
        return value

    # -- accounts (admin) ------------------------------------------------------------------

    def _account_store(self):
        if self.users is None:
            raise ApiError(500, "internal", "this mfds has no account store: restart it with "
                           "`esrt mfds --stop` and `esrt mfds`")
        return self.users

    @staticmethod
    def _user_fields(document, allowed):
        """The account fields of a request body; 400 on unknown or non-text ones."""
        unknown = sorted(set(document) - set(allowed))
        if unknown:
            raise ApiError(400, "invalid", f"unknown account field(s) {', '.join(unknown)}: "
                           f"send only {', '.join(allowed)}",
                           {key: "unknown field" for key in unknown})
        bad = {key: f"{key} must be a string" for key, value in document.items()
               if not isinstance(value, str)}
        if bad:
            raise ApiError(400, "invalid", "invalid account: " + "; ".join(bad.values()), bad)
        return document

    def create_user(self, document, who=None):
        """Create an account from {name, password, role} (admin); return it (no secrets)."""
        label = str(document.get("name") or "?")
        self.require(who, "admin", "add accounts", label)
        store = self._account_store()
        fields = self._user_fields(document, ("name", "password", "role"))
        values = {key: fields.get(key, "") for key in ("name", "password", "role")}
        problems = check_account(**values)
        if "role" not in problems and values["role"] != "admin" and store.count() == 0:
            # Accounts switch authentication on: without an admin among them nobody could
            # manage the node from a browser any more.
            problems["role"] = ("the first account must be an admin: choose the admin role, "
                                "then add the other accounts")
        if problems:
            self.record(who, "add user", label, "failed", "; ".join(problems.values()))
            raise ApiError(400, "invalid", "the account was not added: "
                           + "; ".join(problems.values()), problems)
        try:
            store.add(values["name"], values["password"], values["role"])
        except UserExists:
            message = (f"user {values['name']} already exists: choose another name, or change "
                       "that account's role or password instead")
            self.record(who, "add user", label, "failed", "already exists")
            raise ApiError(409, "exists", message, {"name": message}) from None
        self.record(who, "add user", values["name"], "ok", f"role {values['role']}")
        return store.get(values["name"])

    def update_user(self, name, document, who=None):
        """Change the role and/or reset the password of account `name` (admin); return it.
        The last admin cannot be demoted (409 last_admin)."""
        self.require(who, "admin", "change accounts", name)
        store = self._account_store()
        fields = self._user_fields(document, ("role", "password"))
        if not fields:
            raise ApiError(400, "invalid", f"nothing to change for user {name}: send "
                           "{\"role\": ...} and/or {\"password\": ...}")
        problems = check_account(**fields)
        if problems:
            self.record(who, "change user", name, "failed", "; ".join(problems.values()))
            raise ApiError(400, "invalid", f"user {name} was not changed: "
                           + "; ".join(problems.values()), problems)
        before = store.get(name)
        if "role" in fields and fields["role"] != before["role"]:
            try:
                store.set_role(name, fields["role"])
            except LastAdmin as exc:
                self.record(who, "change role", name, "failed", exc)
                raise ApiError(409, "last_admin", str(exc), {"role": str(exc)}) from None
            self.record(who, "change role", name, "ok",
                        f"{before['role']} -> {fields['role']}")
        if "password" in fields:
            store.set_password(name, fields["password"])
            self.record(who, "reset password", name, "ok")
            if self.on_password_change is not None and name != (who or OPEN).name:
                # Whoever knew the old password is logged out; the admin doing it stays in.
                self.on_password_change(name)
        return store.get(name)

    def delete_user(self, name, who=None):
        """Delete account `name` (admin); the last admin cannot be deleted (409 last_admin)."""
        self.require(who, "admin", "delete accounts", name)
        store = self._account_store()
        try:
            store.delete(name, keep_admin=True)
        except LastAdmin as exc:
            self.record(who, "delete user", name, "failed", exc)
            raise ApiError(409, "last_admin", str(exc)) from None
        except UserError as exc:
            self.record(who, "delete user", name, "failed", exc)
            raise
        self.record(who, "delete user", name, "ok")

    # -- resources -------------------------------------------------------------------------

    def health(self):
        """The /api/health answer."""
        return {"status": "ok", "pid": os.getpid(), "home": str(self.home.root),
                "version": esrt.__version__}

    def _reported(self, name, definition=None):
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

    def server_objects(self):
        """Every server object, sorted by name."""
        return [self._server_object(d) for d in self.repository.list_servers()]

    def server_object(self, name):
        """The server object of `name` (ServerNotFound when there is none)."""
        return self._server_object(self.repository.get_server(name))

    def _server_object(self, definition):
        name = definition["name"]
        document, received = self._reported(name, definition)
        created, updated = self.repository.server_times(name)
        paths = RegionPaths(definition, self.home)
        return {"name": name, "definition": definition,
                "mfServerStatus": effective_status(document),
                "status": document, "received": received,
                "created": created, "updated": updated,
                "paths": {"root": str(paths.root), "data": str(paths.data),
                          "deploy": str(paths.deploy), "casroot": str(paths.casroot)}}

    def _status_object(self, name):
        self.repository.get_server(name)
        document, received = self._reported(name)
        return {"name": name, "mfServerStatus": effective_status(document),
                "status": document, "received": received}

    def _live_pid(self, name):
        """The pid of region `name` when it is running, else None."""
        document, _ = self._reported(name)
        if document and effective_status(document) in LIVE_STATES:
            return document.get("pid")
        return None

    def create_server(self, definition, who=None):
        """Create a server (admin); return its server object."""
        label = str(definition.get("name") or "?")
        self.require(who, "admin", "create servers", label)
        try:
            clean = self.repository.create_server(definition)
        except (SettingError, ServerExists) as exc:
            self.record(who, "create server", label, "failed", exc)
            raise
        self.record(who, "create server", clean["name"], "ok", definition=clean)
        return self._server_object(clean)

    def update_server(self, name, changes, who=None):
        """Apply partial `changes` to server `name` (admin); return its server object."""
        self.require(who, "admin", "edit servers", name)
        try:
            clean = self.repository.update_server(name, changes)
        except (SettingError, ServerNotFound) as exc:
            self.record(who, "edit server", name, "failed", exc)
            raise
        self.record(who, "edit server", name, "ok", ", ".join(sorted(changes)), clean)
        return self._server_object(clean)

    def delete_server(self, name, who=None):
        """Delete a stopped server (admin)."""
        self.require(who, "admin", "delete servers", name)
        definition = self.repository.get_server(name)
        pid = self._live_pid(name)
        if pid:
            self.record(who, "delete server", name, "failed", f"running (pid {pid})")
            raise ApiError(409, "running", f"server {name} is running (pid {pid}): stop it "
                           f"first with `esrt casstop -r {name}`, then delete it")
        self.repository.delete_server(name)
        self.record(who, "delete server", name, "ok", definition=definition)

    def deploy(self, name, data, filename, who=None):
        """Install a .car package into server `name` (operator); tell a running region to
        rescan. The archive is checked (size, member names, manifest, checksums) first."""
        self.require(who, "operator", "deploy packages", name)
        definition = self.repository.get_server(name)
        try:
            answer = self._install(name, definition, data, filename)
        except ApiError as exc:
            self.record(who, "deploy", name, "failed", exc.message, definition)
            raise
        self.record(who, "deploy", name, "ok", answer["message"], definition)
        return answer

    def _install(self, name, definition, data, filename):
        if not data:
            raise ApiError(400, "bad_package", "the request body is empty: send the .car "
                           "file's bytes as the body (POST .../packages?filename=srv01.car)")
        if len(data) > MAX_PACKAGE_BYTES:
            raise ApiError(413, "too_large", f"package of {len(data)} bytes is larger than "
                           f"the limit of {MAX_PACKAGE_BYTES} bytes")
        try:
            from esrt.mapping.car import CarError, install_car
        except ImportError as exc:
            raise ApiError(500, "internal", f"cannot install packages: esrt.mapping.car is "
                           f"not available ({exc})") from None
        deploy_dir = RegionPaths(definition, self.home).deploy
        deploy_dir.mkdir(parents=True, exist_ok=True)
        try:
            manifest = install_car(data, deploy_dir)
        except CarError as exc:
            label = filename or "package"
            raise ApiError(400, "bad_package", f"{label}: {exc}") from None
        package = _package_name(manifest, filename)
        self.repository.record_package(name, package, manifest, len(data))
        programs = _programs(manifest)
        noun = "program" if len(programs) == 1 else "programs"
        message = (f"installed {package} ({len(programs)} {noun}: "
                   f"{', '.join(programs) or 'none'}) into {name}")
        pid = self._live_pid(name)
        if pid:
            try:
                # SIGHUP makes the region rescan its deploy directory.
                os.kill(int(pid), signal.SIGHUP)
                message += f"; region {name} (pid {pid}) told to rescan"
            except (ProcessLookupError, PermissionError, ValueError):
                pass
        return {"manifest": manifest, "package": package, "message": message}

    # -- start / stop (slow: run in a thread through Later) ---------------------------------

    def start_later(self, name, who=None):
        """Check and prepare starting region `name` (operator); the Later starts it."""
        self.require(who, "operator", "start servers", name)
        definition = self.repository.get_server(name)
        return Later(self, self._start, name, definition, who)

    def _start(self, name, definition, who):
        try:
            started = start_region(name, home=self.home, definition=definition, wait=False)
        except (RegionControlError, OSError) as exc:
            self.record(who, "start", name, "failed", exc, definition)
            raise ApiError(409, "start_failed", f"cannot start {name}: {exc}") from None
        pid = started.get("pid")
        # The region moves console.log to console.bak as it opens its console, and writes
        # status.json after that: wait for it, so that our line lands in the new log.
        status_file = RegionPaths(definition, self.home).status_file
        deadline = time.monotonic() + START_CONSOLE_WAIT
        while (not status_file.exists() and process_alive(pid)
               and time.monotonic() < deadline):
            time.sleep(0.05)
        self.record(who, "start", name, "ok", f"region pid {pid}", definition)
        return Response(202, {"name": name, "pid": pid, "mfServerStatus": "Starting",
                              "message": f"{name} starting (pid {pid})"})

    def stop_later(self, name, who=None, force=False):
        """Check and prepare stopping region `name` (operator); the Later stops it."""
        self.require(who, "operator", "stop servers", name)
        definition = self.repository.get_server(name)
        return Later(self, self._stop, name, definition, who, force)

    def _stop(self, name, definition, who, force):
        action = "force stop" if force else "stop"
        # Logged before: a clean stop's last console lines are the region's own.
        self.record(who, action, name, "requested", definition=definition)
        try:
            message = stop_region(name, home=self.home, force=force)
        except (RegionControlError, OSError) as exc:
            self.record(who, action, name, "failed", exc, definition)
            raise ApiError(409, "stop_failed", f"cannot stop {name}: {exc}") from None
        self.record(who, action, name, "ok", message, definition)
        return Response(200, {"name": name, "message": message})

    # -- console ---------------------------------------------------------------------------

    def console(self, name, which="log", lines=200, search=None):
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

    def services(self, name):
        """The services of server `name`, from its installed packages' manifests and mappings."""
        definition = self.repository.get_server(name)
        deploy_dir = RegionPaths(definition, self.home).deploy
        services = []
        for record in self.repository.list_packages(name):
            package, manifest = record["package"], record["manifest"]
            parameters = self._mapping_parameters(deploy_dir / package, manifest)
            for program in _programs(manifest):
                services.append({"name": f"{package}.{program}", "package": package,
                                 "program": program,
                                 "parameters": parameters.get(program, [])})
        return services

    @staticmethod
    def _mapping_parameters(package_dir, manifest):
        """{program: parameters} from the package's mapping file ({} when it cannot be read)."""
        mapping_name = manifest.get("mapping")
        if not mapping_name:
            return {}
        try:
            document = json.loads((Path(package_dir) / mapping_name).read_text())
        except (OSError, ValueError):
            return {}
        found = {}
        for entry in document.get("programs") or []:
            if isinstance(entry, dict) and entry.get("program"):
                found[entry["program"]] = entry.get("parameters") or []
        return found
