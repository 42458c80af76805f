"""The admin pages: a Twisted resource serving server-rendered HTML over esrt.mfds.api.

Every page reads through MfdsApi and every action goes through it too, so the pages obey
exactly the API's rules (roles, validation, audit). Actions are HTML forms posted with the
session's CSRF token; after an action the browser is redirected (303) to a page that shows what
happened, so a reload never repeats it.
"""

import email.parser
import email.policy
import json
from urllib.parse import unquote, urlencode, urlsplit

from twisted.internet.threads import deferToThread
from twisted.web import server

from esrt.mfds.api.packages import MAX_PACKAGE_BYTES
from esrt.mfds.api.routes import ApiError, Later
from esrt.mfds.repository import ServerExists, ServerNotFound
from esrt.mfds.users import OPEN, NoSuchUser
from esrt.mfds.web import templates
from esrt.mfds.web.auth import set_cookie
from esrt.mfds.web.graphs import GRAPHS_JS
from esrt.mfds.web.static import STYLE_CSS
from esrt.settings import SERVER_SETTING_NAMES, SERVER_SETTINGS, SettingError

SERVER_ACTIONS = ("start", "stop", "force-stop", "deploy", "edit", "delete")
USER_ACTIONS = ("role", "password", "delete")


def _text(request, name, default=""):
    values = (request.args or {}).get(name.encode())
    if not values:
        return default
    return values[-1].decode("utf-8", "replace")


def _safe_next(path):
    """Only local paths: a login must not redirect to another site."""
    path = str(path or "/")
    if not path.startswith("/") or path.startswith("//") or "\\" in path:
        return "/"
    return path


def _multipart(request):
    """{field: (filename, bytes)} of a multipart/form-data body."""
    content_type = request.getHeader("Content-Type") or ""
    request.content.seek(0)
    body = request.content.read()
    head = f"Content-Type: {content_type}\r\n\r\n".encode("latin-1", "replace")
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
    fields = {}
    if not message.is_multipart():
        return fields
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if name:
            fields[name] = (part.get_filename(), part.get_payload(decode=True) or b"")
    return fields


def _lines(text):
    return [line.strip() for line in str(text or "").splitlines() if line.strip()]


def definition_from_form(form, creating):
    """A definition (or changes) from the form's field texts; SettingError on bad ones.

    A blank field of a setting with a default (a number, a choice) means that default on
    creation and "unchanged" on an edit; a list field holds one item per line.
    """
    errors, definition = {}, {}
    for setting in SERVER_SETTINGS:
        if setting.name == "name" and not creating:
            continue
        text = form.get(setting.name, "")
        if setting.kind.repeatable:
            texts = _lines(text)
        elif not text.strip() and setting.default not in (None, ""):
            continue
        else:
            texts = [text]
        try:
            definition[setting.name] = setting.from_texts(texts)
        except SettingError as exc:
            errors.update(exc.fields)
    if errors:
        raise SettingError(errors)
    return definition


def form_values(definition):
    """The form's field texts for a definition; defaults for settings it lacks."""
    return {setting.name: "\n".join(setting.to_texts(definition.get(setting.name,
                                                                    setting.default)))
            for setting in SERVER_SETTINGS}


def field_errors(exc):
    """SettingError fields mapped onto the form's field names."""
    errors = {}
    for key, message in exc.fields.items():
        field = "listeners" if key.startswith("listener") else key
        errors[field] = f"{errors[field]}; {message}" if field in errors else message
    return errors


class Pages:
    """Renders every non-API path. `gate` authenticates; `api` does the work."""

    def __init__(self, api, gate, log):
        self.api = api
        self.gate = gate
        self.log = log

    # -- entry -----------------------------------------------------------------------------

    def render(self, request):
        """Answer one page request (bytes, or NOT_DONE_YET for a slow action)."""
        request.setHeader(b"X-Frame-Options", b"DENY")
        request.setHeader(b"X-Content-Type-Options", b"nosniff")
        request.setHeader(b"Referrer-Policy", b"same-origin")
        path = request.path.decode("utf-8", "replace")
        method = request.method.decode("ascii", "replace").upper()
        if path == "/static/style.css":
            request.setHeader(b"Content-Type", b"text/css; charset=utf-8")
            return STYLE_CSS.encode("utf-8")
        if path == "/static/graphs.js":
            request.setHeader(b"Content-Type", b"text/javascript; charset=utf-8")
            return GRAPHS_JS.encode("utf-8")
        session = self.gate.session_of(request)
        if session is None:
            session = self.gate.sessions.new()
            set_cookie(request, session)
        principal, _, _ = self.gate.identify(request)
        enabled = self.gate.auth_enabled()
        if principal is None and not enabled:
            principal = OPEN
        refresh = _text(request, "refresh")
        if refresh.isdigit() and int(refresh) in templates.REFRESH_CHOICES:
            session.refresh = int(refresh)
        query = {k.decode("utf-8", "replace"): v[-1].decode("utf-8", "replace")
                 for k, v in (request.args or {}).items() if v and method == "GET"}
        page = templates.Page(principal.name if principal and principal.via != "open" else None,
                              principal.role if principal else None, session.csrf,
                              session.refresh, session.take_flashes(), path, query, enabled)
        if path == "/login":
            return self.login(request, page, session, method, enabled)
        if principal is None:
            return self.redirect(request, "/login?" + urlencode({"next": request.uri.decode(
                "utf-8", "replace")}))
        if method == "POST":
            token = _text(request, "csrf")
            problem = self.gate.csrf_problem(request, principal, session, token)
            if problem:
                return self.html(request, 403, templates.error_page(page, "Refused", problem))
        try:
            return self.route(request, page, session, principal, method, path)
        except ApiError as exc:
            return self.html(request, exc.status, templates.error_page(page, "Error",
                                                                       exc.message))
        except (ServerNotFound, NoSuchUser) as exc:
            return self.html(request, 404, templates.error_page(page, "Not found", str(exc)))

    def route(self, request, page, session, principal, method, path):
        parts = [part for part in path.split("/") if part]
        if path == "/" and method == "GET":
            return self.html(request, 200, templates.home_page(page, self.api.servers.objects()))
        if path == "/logout" and method == "POST":
            self.gate.sessions.drop(session)
            if principal.via == "session":
                self.api.authority.record(principal, "logout", principal.name, "ok")
            return self.redirect(request, "/login")
        if parts == ["servers", "new"]:
            if method == "POST":
                return self.save_server(request, page, session, principal, None)
            self.api.authority.require(principal, "admin", "create servers", "new server")
            return self.html(request, 200, templates.layout(page, "New server",
                                                            templates.server_form(
                                                                page, "/servers/new",
                                                                form_values({}), {}, True)))
        if len(parts) == 2 and parts[0] == "servers" and method == "GET":
            return self.server(request, page, parts[1])
        if (len(parts) == 3 and parts[0] == "servers" and parts[2] in SERVER_ACTIONS
                and method == "POST"):
            return self.action(request, page, session, principal, parts[1], parts[2])
        if parts == ["users"] and method == "GET":
            self.api.authority.require(principal, "admin", "manage the accounts", "users")
            return self.users_page(request, page, 200)
        if parts == ["users", "new"] and method == "POST":
            return self.add_user(request, page, session, principal)
        if (len(parts) == 3 and parts[0] == "users" and parts[2] in USER_ACTIONS
                and method == "POST"):
            # Account names may hold "@", which the page's links send percent-encoded.
            return self.user_action(request, page, session, principal, unquote(parts[1]),
                                    parts[2])
        if parts and parts[0] == "callers":
            return self.callers(request, page, session, principal, method, parts[1:])
        return self.not_found(request, page, method, path)

    # -- callers: tokens and rules ------------------------------------------------------------

    def callers(self, request, page, session, principal, method, parts):
        """The Callers page and its forms (admin only, as the API)."""
        self.api.authority.require(principal, "admin", "manage the callers", "callers")
        callers = self.api.callers
        if method == "GET" and not parts:
            return self.callers_page(request, page, 200)
        if method != "POST":
            return self.not_found(request, page, method, "/callers/" + "/".join(parts))
        try:
            if parts == ["tokens", "new"]:
                made = callers.create_token(_form_call(request, principal, {
                    "user": _text(request, "user"), "note": _text(request, "note")})).body
                return self.callers_page(request, page, 201, new_token=made)
            if len(parts) == 3 and parts[0] == "tokens" and parts[2] == "revoke":
                callers.revoke_token(_form_call(request, principal, {}, {"id": parts[1]}))
                session.flash(f"token {parts[1]} revoked; regions refuse it within seconds")
            elif parts == ["rules", "new"]:
                rule = callers.add_rule(_form_call(request, principal, {
                    "subject": _text(request, "subject"),
                    "pattern": _text(request, "pattern")})).body
                session.flash(f"{rule['subject']} may call {rule['pattern']}")
            elif parts == ["rules", "remove"]:
                subject, pattern = _text(request, "subject"), _text(request, "pattern")
                callers.remove_rule(_form_call(request, principal, {}, query={
                    "subject": subject, "pattern": pattern}))
                session.flash(f"{subject} may no longer call {pattern}")
            else:
                return self.not_found(request, page, method, "/callers/" + "/".join(parts))
        except ApiError as exc:
            if exc.status == 403:
                raise
            return self.callers_page(request, page, exc.status, error=exc.message)
        return self.redirect(request, "/callers")

    def callers_page(self, request, page, status, new_token=None, error=None):
        store = self.api.callers.store()
        users = self.api.users.list() if self.api.users else []
        return self.html(request, status, templates.callers_page(
            page, users, store.list_tokens(), store.list_rules(), new_token, error))

    # -- answers ---------------------------------------------------------------------------

    @staticmethod
    def html(request, status, text):
        request.setResponseCode(status)
        request.setHeader(b"Content-Type", b"text/html; charset=utf-8")
        request.setHeader(b"Cache-Control", b"no-store")
        return text.encode("utf-8")

    @staticmethod
    def redirect(request, location):
        request.setResponseCode(303)
        request.setHeader(b"Location", location.encode("utf-8"))
        return b""

    def not_found(self, request, page, method, path):
        accept = request.getHeader("Accept") or ""
        if "text/html" not in accept:
            # Scripts (and the API's tests) expect the API's JSON error shape everywhere.
            answer = ApiError(404, "not_found", f"no such path {path}: the API lives under "
                              "/api/, the admin pages at /").response()
            request.setResponseCode(404)
            request.setHeader(b"Content-Type", b"application/json; charset=utf-8")
            return answer.encode()
        return self.html(request, 404, templates.error_page(
            page, "Not found", f"no page {method} {path}: start from the server list"))

    # -- login -----------------------------------------------------------------------------

    def login(self, request, page, session, method, enabled):
        next_path = _safe_next(_text(request, "next", "/"))
        if not enabled:
            session.flash("no accounts exist yet, so no login is needed: add one with "
                          "`esrt mfds user add NAME --password P --role admin`")
            return self.redirect(request, "/")
        if method != "POST":
            return self.html(request, 200, templates.login_page(page, next_path=next_path))
        if not session.csrf_ok(_text(request, "csrf")):
            return self.html(request, 403, templates.login_page(
                page, "the form expired: log in again", next_path=next_path))
        name = _text(request, "name")
        role = self.gate.users.authenticate(name, _text(request, "password"))
        if role is None:
            self.api.authority.record(_anonymous(name), "login", name, "failed",
                            "wrong user name or password")
            return self.html(request, 401, templates.login_page(
                page, "wrong user name or password", name, next_path))
        self.gate.sessions.drop(session)
        fresh = self.gate.sessions.new(user=name)
        fresh.refresh = session.refresh
        set_cookie(request, fresh)
        self.gate.users.touch_login(name)
        self.api.authority.record(_anonymous(name, role), "login", name, "ok")
        return self.redirect(request, next_path)

    # -- server pages ----------------------------------------------------------------------

    def server(self, request, page, name):
        server_object = self.api.servers.object(name)
        tab = _text(request, "tab", "listeners")
        if tab == "listeners":
            content = templates.listeners_tab(server_object)
        elif tab == "services":
            content = templates.services_tab(self.api.packages.services(name),
                                             server_object["status"])
        elif tab == "packages":
            content = templates.packages_tab(page, name, self.api.repository.list_packages(name),
                                             MAX_PACKAGE_BYTES)
        elif tab == "seps":
            content = templates.seps_tab(server_object)
        elif tab == "members":
            content = templates.members_tab(self.api.stores.seen(server_object["definition"]))
        elif tab == "monitor":
            content = templates.monitor_tab(server_object)
        elif tab == "console":
            which, lines = _text(request, "file", "log"), _text(request, "lines", "200")
            search = _text(request, "search")
            try:
                console = self.api.console.tail(name, which, lines, search)
            except ApiError as exc:
                page.flashes.append(("error", exc.message))
                which, lines = "log", "200"
                console = self.api.console.tail(name, which, lines, search)
            content = templates.console_tab(name, console, which, lines, search)
        elif tab == "edit" and page.can("admin"):
            content = self.edit_form(page, server_object)
        else:
            raise ApiError(404, "not_found", f"server {name} has no tab {tab!r}")
        return self.html(request, 200, templates.server_page(page, server_object, tab, content))

    @staticmethod
    def edit_form(page, server_object, values=None, errors=None):
        name = server_object["name"]
        form = templates.server_form(page, f"/servers/{templates.q(name)}/edit",
                                     values or form_values(server_object["definition"]),
                                     errors or {}, False)
        delete = (f'<form method="post" action="/servers/{templates.q(name)}/delete" '
                  f'onsubmit="return confirm({templates.e(repr(f"Delete server {name}?"))})">'
                  f'{templates.csrf_field(page)}<button id="delete">Delete server</button>'
                  f'</form>')
        return form + delete

    def save_server(self, request, page, session, principal, name):
        """Create (name None) or edit a server from the posted form."""
        creating = name is None
        form = {key: _text(request, key) for key in SERVER_SETTING_NAMES}
        try:
            definition = definition_from_form(form, creating)
            if creating:
                created = self.api.servers.create(definition, principal)
                name = created["name"]
                session.flash(f"server {name} created")
            else:
                self.api.servers.update(name, definition, principal)
                session.flash(f"server {name} saved")
        except SettingError as exc:
            return self.form_again(request, page, name, form, field_errors(exc), creating)
        except ServerExists as exc:
            return self.form_again(request, page, name, form, {"name": str(exc)}, creating)
        return self.redirect(request, f"/servers/{templates.q(name)}")

    def form_again(self, request, page, name, form, errors, creating):
        page.flashes.append(("error", "the server was not saved: see the messages next to "
                                      "the fields"))
        if creating:
            body = templates.server_form(page, "/servers/new", form, errors, True)
            return self.html(request, 400, templates.layout(page, "New server", body))
        server_object = self.api.servers.object(name)
        content = self.edit_form(page, server_object, form, errors)
        return self.html(request, 400, templates.server_page(page, server_object, "edit",
                                                             content))

    # -- accounts ----------------------------------------------------------------------------

    def users_page(self, request, page, status, values=None, errors=None):
        users = self.api.users.list() if self.api.users else []
        return self.html(request, status, templates.users_page(page, users, values, errors))

    def add_user(self, request, page, session, principal):
        """Add an account from the posted form; errors are shown next to their fields."""
        form = {key: _text(request, key) for key, _ in templates.USER_FIELDS}
        try:
            user = self.api.accounts.create(form, principal)
        except ApiError as exc:
            if exc.status == 403 or not exc.fields:
                raise
            page.flashes.append(("error", "the account was not added: see the messages "
                                          "next to the fields"))
            errors = {f"new-{key}": message for key, message in exc.fields.items()}
            return self.users_page(request, page, exc.status, form, errors)
        session.flash(f"user {user['name']} added with role {user['role']}")
        return self.redirect(request, "/users")

    def user_action(self, request, page, session, principal, name, action):
        """Change the role of, reset the password of, or delete account `name`."""
        try:
            if action == "delete":
                self.api.accounts.delete(name, principal)
                session.flash(f"user {name} deleted")
            elif action == "role":
                role = _text(request, "role")
                self.api.accounts.update(name, {"role": role}, principal)
                session.flash(f"user {name} now has the role {role}")
            else:
                self.api.accounts.update(name, {"password": _text(request, "password")}, principal)
                session.flash(f"password of user {name} reset"
                              + ("" if name == principal.name else
                                 f": {name} is logged out everywhere"))
        except ApiError as exc:
            if exc.status == 403:
                raise
            page.flashes.append(("error", f"user {name} was not changed: see the message on "
                                          "its row"))
            message = "; ".join((exc.fields or {}).values()) or exc.message
            return self.users_page(request, page, exc.status, None, {f"user-{name}": message})
        demoted = self.gate.users.role(principal.name) != "admin"
        if principal.via in ("session", "basic") and demoted:
            # The admin demoted or deleted themselves: the Users page is no longer theirs.
            return self.redirect(request, "/")
        return self.redirect(request, "/users")

    # -- actions ---------------------------------------------------------------------------

    def action(self, request, page, session, principal, name, action):
        back = self._back(request, name)
        if action == "edit":
            return self.save_server(request, page, session, principal, name)
        if action == "delete":
            self.api.servers.delete(name, principal)
            session.flash(f"server {name} deleted")
            return self.redirect(request, "/")
        if action == "deploy":
            fields = _multipart(request)
            filename, data = fields.get("package", (None, b""))
            answer = self.api.handle("POST", f"/api/servers/{name}/packages",
                                     {"filename": filename or "package.car"}, data, principal)
            packages_tab = f"/servers/{templates.q(name)}?tab=packages"
            if isinstance(answer, Later):
                # A server on a PostgreSQL store: the package is being stored there too.
                return self._run_later(request, session, answer, packages_tab)
            self._flash_answer(session, answer)
            return self.redirect(request, packages_tab)
        if action == "start":
            later = self.api.servers.start_later(name, principal)
        else:
            later = self.api.servers.stop_later(name, principal, force=action == "force-stop")
        return self._run_later(request, session, later, back)

    def _run_later(self, request, session, later, back):
        def done(answer):
            self._flash_answer(session, answer)
            finish(self.redirect(request, back))

        def failed(failure):
            self.log(f"action failed: {failure.getErrorMessage()}")
            session.flash(f"internal error: {failure.getErrorMessage()}", "error")
            finish(self.redirect(request, back))

        def finish(payload):
            if request.finished or getattr(request, "_disconnected", False):
                return
            request.write(payload)
            request.finish()

        deferToThread(later.run).addCallbacks(done, failed)
        return server.NOT_DONE_YET

    @staticmethod
    def _flash_answer(session, answer):
        if isinstance(answer, Later):  # handle() never returns one for these routes
            return
        body = answer.body or {}
        if answer.status >= 400:
            session.flash(body.get("error", {}).get("message", f"HTTP {answer.status}"),
                          "error")
        else:
            session.flash(body.get("message") or "done")

    @staticmethod
    def _back(request, name):
        referer = request.getHeader("Referer") or ""
        parts = urlsplit(referer)
        if parts.path.startswith("/") and parts.netloc == (request.getHeader("Host") or ""):
            return _safe_next(parts.path + (f"?{parts.query}" if parts.query else ""))
        return f"/servers/{templates.q(name)}"


def _form_call(request, principal, document, params=None, query=None):
    """A form's fields as the API's Call, so that the page and the API share every check."""
    from esrt.mfds.api.routes import Call
    return Call(params or {}, query or {}, json.dumps(document).encode(), principal)


def _anonymous(name, role="readonly"):
    """A principal for audit lines about logins (the user is not authenticated yet)."""
    from esrt.mfds.users import Principal
    return Principal(name or "?", role, "login")

