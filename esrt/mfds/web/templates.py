"""HTML of the admin pages: plain functions from data to escaped markup.

No template engine: the pages are few and small, and building them with functions keeps every
value going through `e()` (html.escape) on its way out. Nothing here touches Twisted.
"""

import time
from datetime import datetime
from html import escape
from urllib.parse import quote, urlencode

from esrt.mfds.users import ROLES
from esrt.node.members import listeners_text
from esrt.settings import SERVER_SETTINGS

REFRESH_CHOICES = (0, 5, 10, 30, 60)
TABS = (("listeners", "Listeners"), ("services", "Services"), ("packages", "Packages"),
        ("seps", "SEPs"), ("members", "Members"), ("monitor", "Monitor & Control"),
        ("console", "Console log"), ("edit", "Edit"))


def e(value):
    """Escape any value for HTML text or a quoted attribute."""
    return escape("" if value is None else str(value), quote=True)


def q(value):
    """Quote a path segment."""
    return quote(str(value), safe="")


class Page:
    """What every page needs from the request: user, CSRF token, refresh, flashes, path."""

    def __init__(self, user=None, role=None, csrf="", refresh=0, flashes=(), path="/",
                 query=None, auth_enabled=True):
        self.user = user
        self.role = role
        self.csrf = csrf
        self.refresh = refresh
        self.flashes = list(flashes)
        self.path = path
        self.query = dict(query or {})
        self.auth_enabled = auth_enabled

    def can(self, role):
        from esrt.mfds.users import role_allows
        return role_allows(self.role or "readonly", role)


def csrf_field(page):
    return f'<input type="hidden" name="csrf" value="{e(page.csrf)}">'


def layout(page, title, body):
    """The whole document around `body`."""
    refresh = (f'<meta http-equiv="refresh" content="{int(page.refresh)}">'
               if page.refresh else "")
    options = "".join(
        f'<option value="{n}"{" selected" if n == page.refresh else ""}>'
        f'{"off" if n == 0 else f"{n} s"}</option>' for n in REFRESH_CHOICES)
    keep = "".join(f'<input type="hidden" name="{e(k)}" value="{e(v)}">'
                   for k, v in page.query.items() if k != "refresh")
    if page.user:
        who = (f'<span class="user">{e(page.user)} ({e(page.role)})</span>'
               f'<form method="post" action="/logout" class="inline">{csrf_field(page)}'
               f'<button id="logout">Log out</button></form>')
    elif not page.auth_enabled:
        who = '<span class="user warn">no accounts: open to local users</span>'
    else:
        who = ""
    flashes = "".join(f'<p class="flash {e(kind)}">{e(text)}</p>'
                      for kind, text in page.flashes)
    users_link = ('<a href="/users" id="nav-users">Users</a>'
                  '<a href="/callers" id="nav-callers">Callers</a>'
                  if page.role and page.can("admin") else "")
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{e(title)} - esrt</title>{refresh}
<link rel="stylesheet" href="/static/style.css"></head>
<body><header><a class="brand" href="/">esrt</a>
<nav><a href="/">Servers</a>{users_link}<a href="/api/openapi.json">API</a></nav>
<form method="get" action="{e(page.path)}" class="refresh">{keep}
<label>Auto-refresh <select name="refresh" id="refresh" onchange="this.form.submit()">
{options}</select></label><noscript><button>Set</button></noscript></form>
{who}</header>
<main><h1>{e(title)}</h1>{flashes}{body}</main></body></html>
"""


def login_page(page, error=None, name="", next_path="/"):
    """The login form."""
    problem = f'<p class="flash error">{e(error)}</p>' if error else ""
    body = f"""{problem}<form method="post" action="/login" class="login">{csrf_field(page)}
<input type="hidden" name="next" value="{e(next_path)}">
<label>User <input name="name" id="name" value="{e(name)}" autofocus required></label>
<label>Password <input type="password" name="password" id="password" required></label>
<button id="login">Log in</button></form>"""
    return layout(page, "Log in", body)


def error_page(page, title, message):
    """A page that only says what went wrong."""
    return layout(page, title, f'<p class="flash error">{e(message)}</p>'
                               f'<p><a href="/">Back to the servers</a></p>')


def status_badge(status):
    return f'<span class="status s-{e(str(status).split()[0].lower())}">{e(status)}</span>'


def action_buttons(page, name, status):
    """Start / Stop / Force stop, each asking for confirmation."""
    if not page.can("operator"):
        return ""
    buttons = []
    for action, label, allowed in (
            ("start", "Start", status in ("Stopped", "Failed")),
            ("stop", "Stop", status in ("Started", "Starting", "Stopping")),
            ("force-stop", "Force stop", status != "Stopped")):
        disabled = "" if allowed else " disabled"
        question = f"{label} server {name}?"
        if action == "force-stop":
            question += " Its processes are killed: requests in flight are lost."
        buttons.append(
            f'<form method="post" action="/servers/{q(name)}/{action}" class="inline" '
            f'onsubmit="return confirm({e(repr(question))})">{csrf_field(page)}'
            f'<button class="{action}" id="{action}-{e(name)}"{disabled}>{label}</button></form>')
    return "".join(buttons)


def _listeners_cell(listeners):
    return "<br>".join(f'{e(item.get("CN"))}: {e(item.get("address"))} '
                       f'{status_badge(item.get("mfListenerStatus", "?"))}'
                       for item in listeners)


def _seps_summary(server):
    seps = (server.get("status") or {}).get("seps") or []
    configured = server["definition"].get("seps")
    if not seps or server["mfServerStatus"] == "Stopped":
        return f"0 / {e(configured)}"
    up = sum(1 for sep in seps if sep.get("state") in ("Idle", "Busy"))
    busy = sum(1 for sep in seps if sep.get("state") == "Busy")
    return f"{up} / {e(configured)} ({busy} busy)"


def home_page(page, servers):
    """The server list."""
    rows = []
    for server in servers:
        name = server["name"]
        status = server.get("status") or {}
        live = status.get("listeners") if server["mfServerStatus"] != "Stopped" else None
        listeners = live or [{"CN": item["name"], "address": item["address"],
                              "mfListenerStatus": "Stopped"}
                             for item in server["definition"].get("listeners", [])]
        message = status.get("message") or ""
        when = server.get("received") or ""
        rows.append(
            f'<tr id="server-{e(name)}"><td><a href="/servers/{q(name)}">{e(name)}</a>'
            f'<div class="muted">{e(server["definition"].get("description"))}</div></td>'
            f'<td class="state">{status_badge(server["mfServerStatus"])}</td>'
            f'<td>{_seps_summary(server)}</td><td>{_listeners_cell(listeners)}</td>'
            f'<td class="message">{e(message)}<div class="muted">{e(when)}</div></td>'
            f'<td class="actions">{action_buttons(page, name, server["mfServerStatus"])}</td>'
            f'</tr>')
    table = ("<table><thead><tr><th>Server</th><th>Status</th><th>SEPs</th><th>Listeners</th>"
             "<th>Last status message</th><th></th></tr></thead><tbody>"
             + "".join(rows) + "</tbody></table>") if rows else (
        "<p>No servers defined yet.</p>")
    new = ('<p><a class="button" href="/servers/new" id="new-server">New server</a></p>'
           if page.can("admin") else "")
    return layout(page, "Servers", table + new)


def server_page(page, server, tab, content):
    """One server: header, actions and tabs around the tab's `content`."""
    name = server["name"]
    tabs = "".join(
        f'<a href="/servers/{q(name)}?tab={key}" class="tab{" active" if key == tab else ""}"'
        f' id="tab-{key}">{label}</a>'
        for key, label in TABS if key != "edit" or page.can("admin"))
    message = (server.get("status") or {}).get("message") or ""
    body = (f'<p>{status_badge(server["mfServerStatus"])} <span class="message">{e(message)}'
            f'</span> {action_buttons(page, name, server["mfServerStatus"])}</p>'
            f'<p class="muted">{e(server["definition"].get("description"))}</p>'
            f'<nav class="tabs">{tabs}</nav><section class="tab-body">{content}</section>')
    return layout(page, f"Server {name}", body)


def table(headers, rows, table_id=None, empty="none"):
    """A table of already-escaped cells."""
    if not rows:
        return f'<p class="muted">{e(empty)}</p>'
    head = "".join(f"<th>{e(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>"
                   for row in rows)
    ident = f' id="{e(table_id)}"' if table_id else ""
    return f"<table{ident}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def listeners_tab(server):
    status = server.get("status") or {}
    live = {item.get("CN"): item for item in (status.get("listeners") or [])}
    running = server["mfServerStatus"] != "Stopped"
    rows = []
    for item in server["definition"].get("listeners", []):
        now = live.get(item["name"], {}) if running else {}
        rows.append([e(item["name"]), e(now.get("mfRequestedEndpoint")
                                        or f"tcp:{item['address']}"),
                     e(now.get("address") or ""), e(item["conversation"]),
                     status_badge(now.get("mfListenerStatus", "Stopped")),
                     e(now.get("message") or "")])
    return table(["CN", "mfRequestedEndpoint", "Address", "Conversation", "mfListenerStatus",
                  "Message"], rows, "listeners", "no listeners defined")


def services_tab(services, status):
    loaded = set((status or {}).get("services") or [])
    rows = [[e(s["name"]), e(s["package"]), e(s["program"]),
             e(", ".join(f'{p.get("name")} ({p.get("direction")})'
                         for p in s.get("parameters") or [])),
             "yes" if s["name"] in loaded else "no"] for s in services]
    return table(["Service", "Package", "Program", "Parameters", "Loaded by the region"], rows,
                 "services", "no services: deploy a package")


def packages_tab(page, name, packages, max_bytes):
    rows = [[e(p["package"]), e(", ".join(x.get("program", "") for x in
                                          p["manifest"].get("programs") or [])),
             e(p["installed"]), e(p["size"])] for p in packages]
    form = ""
    if page.can("operator"):
        form = (f'<form method="post" action="/servers/{q(name)}/deploy" '
                f'enctype="multipart/form-data" class="deploy">{csrf_field(page)}'
                f'<label>Deploy a package (.car, at most {max_bytes // (1024 * 1024)} MiB) '
                f'<input type="file" name="package" id="package" accept=".car" required></label>'
                f'<button id="deploy">Deploy</button></form>')
    return table(["Package", "Programs", "Installed", "Bytes"], rows, "packages",
                 "no packages installed") + form


def members_tab(seen):
    """The regions running this server on any node, as mfds last read them from its store."""
    if not seen["store"]:
        return ('<p class="muted" id="members">This server keeps its files in this node\'s '
                "Berkeley DB environment, so it runs on this node only. Give it a PostgreSQL "
                "store (its <code>store</code> setting) to run it on several nodes at once."
                "</p>")
    problem = ""
    if seen["problem"]:
        problem = (f'<p class="flash error" id="members-problem">The store cannot be read now: '
                   f'{e(seen["problem"])}' + (f" (shown: as read at {e(seen['read'])})"
                                                if seen["read"] else "") + "</p>")
    if seen["members"] is None:
        return problem or '<p class="muted" id="members">not read yet</p>'
    rows = [[e(m["member"]), e(m["host"]), e(m["pid"]),
             status_badge("Lost") if m["lost"] else status_badge(m["state"]),
             e(listeners_text(m)),
             e(m["started"]), e(f"{m['age']:.1f} s ago")] for m in seen["members"]]
    return problem + table(["Member", "Host", "PID", "State", "Listeners", "Started",
                            "Heard"], rows, "members", "no region runs this server now")


def seps_tab(server):
    running = server["mfServerStatus"] != "Stopped"
    seps = (server.get("status") or {}).get("seps") or [] if running else []
    rows = [[e(s.get("id")), e(s.get("pid")), status_badge(s.get("state", "?")),
             e(s.get("requests")), e(s.get("restarts"))] for s in seps]
    return table(["SEP", "PID", "State", "Requests", "Restarts"], rows, "seps",
                 "no SEPs running")


def _parse_started(text):
    try:
        stamp = datetime.fromisoformat(str(text))
    except ValueError:
        return None
    return stamp.timestamp()


def graphs_section(server):
    """The live graphs of Monitor & Control (drawn by /static/graphs.js from the region's
    history: esrt.region.history)."""
    interval = (server.get("definition") or {}).get("history_interval", 5)
    return (f'<h2>Over the last hour</h2>'
            f'<label>Show <select id="graph-service"><option value="">the whole server'
            f'</option></select></label> <span class="muted" id="graph-status">loading'
            f'</span><div id="graphs" class="graphs" data-server="{e(server["name"])}" '
            f'data-interval="{e(interval)}"></div>'
            f'<script src="/static/graphs.js" defer></script>')


def monitor_tab(server, now=None):
    """Monitor & Control: the region's counters, computed per hour / per second, and graphs
    of the last hour."""
    status = server.get("status") or {}
    stats = status.get("stats") or {}
    if server["mfServerStatus"] == "Stopped" or not stats:
        return ('<p class="muted">The server is not running: no statistics. The graphs show '
                f'its last run.</p>{graphs_section(server)}')
    now = time.time() if now is None else now
    started = _parse_started(stats.get("started") or status.get("started"))
    elapsed = max(0.0, now - started) if started else 0.0
    requests = int(stats.get("requests") or 0)
    per_hour = requests * 3600.0 / elapsed if elapsed else 0.0
    per_second = requests / elapsed if elapsed else 0.0
    hours, rest = divmod(int(elapsed), 3600)
    minutes, seconds = divmod(rest, 60)
    items = [("Start time", stats.get("started") or status.get("started"), "started"),
             ("Elapsed", f"{hours}:{minutes:02d}:{seconds:02d}", "elapsed"),
             ("Transactions", requests, "transactions"),
             ("Errors", stats.get("errors", 0), "errors"),
             ("Transactions per hour", f"{per_hour:.1f}", "per-hour"),
             ("Active clients", stats.get("active", 0), "active"),
             ("Max tasks", stats.get("max_tasks", ""), "max-tasks"),
             ("Average latency (ms)", f'{float(stats.get("avg_latency_ms") or 0):.3f}',
              "avg-latency"),
             ("Tasks per second", f"{per_second:.3f}", "tasks-per-second")]
    counters = "".join(f'<dt>{e(label)}</dt><dd id="m-{key}">{e(value)}</dd>'
                       for label, value, key in items)
    per_service = status.get("services_stats") or {}
    rows = [[e(name), e(s.get("calls")), e(s.get("errors")),
             e(f'{float(s.get("avg_ms") or 0):.3f}'), e(f'{float(s.get("p99_ms") or 0):.3f}')]
            for name, s in sorted(per_service.items()) if isinstance(s, dict)]
    services = table(["Service", "Calls", "Errors", "Average (ms)", "p99 (ms)"], rows,
                     "service-stats", "no per-service statistics reported yet")
    return (f'<dl class="counters">{counters}</dl>'
            f'<p class="muted">as reported at {e(server.get("received"))}</p>'
            f"{graphs_section(server)}<h2>Services</h2>{services}")


def console_tab(name, console, which, lines, search):
    files = "".join(
        f'<a href="/servers/{q(name)}?{urlencode({"tab": "console", "file": key})}" '
        f'class="tab{" active" if key == which else ""}" id="console-{key}">{label}</a>'
        for key, label in (("log", "console.log"), ("bak", "console.bak")))
    form = (f'<form method="get" action="/servers/{q(name)}" class="search">'
            f'<input type="hidden" name="tab" value="console">'
            f'<input type="hidden" name="file" value="{e(which)}">'
            f'<label>Search <input name="search" id="search" value="{e(search)}"></label>'
            f'<label>Lines <input name="lines" id="lines" value="{e(lines)}" size="5"></label>'
            f'<button id="search-button">Show</button></form>')
    if not console["exists"]:
        text = f'<p class="muted">{e(console["file"])} does not exist (yet).</p>'
    else:
        shown = "\n".join(console["lines"])
        text = (f'<p class="muted">{e(console["file"])}: last {len(console["lines"])} of '
                f'{console["matched"]} line(s){" matching" if search else ""}</p>'
                f'<pre id="console">{e(shown)}</pre>')
    return f'<nav class="tabs small">{files}</nav>{form}{text}'


def _setting_control(setting, value, readonly):
    """The form control of one setting, drawn as its kind asks."""
    key, control = setting.name, setting.kind.control
    if control == "lines":
        return (f'<textarea name="{key}" id="f-{key}" rows="3" cols="50">{e(value)}'
                f'</textarea>')
    if control == "choice":
        options = "".join(f'<option value="{e(choice)}"'
                          f'{" selected" if choice == value else ""}>{e(choice)}</option>'
                          for choice in setting.kind.choices)
        return f'<select name="{key}" id="f-{key}">{options}</select>'
    kind = "number" if control == "number" else "text"
    return f'<input name="{key}" id="f-{key}" value="{e(value)}" type="{kind}"{readonly}>'


def _setting_help(setting):
    if setting.kind.repeatable:
        return f"{setting.help}; one per line: {setting.kind.syntax}"
    return setting.describe()


def server_form(page, action, values, errors, creating):
    """Create / edit form with a field per setting of esrt.settings.SERVER_SETTINGS;
    `errors` maps field -> message shown next to it."""
    rows = []
    general = errors.get("server")
    if general:
        rows.append(f'<p class="flash error" id="error-server">{e(general)}</p>')
    for setting in SERVER_SETTINGS:
        key = setting.name
        readonly = " readonly" if key == "name" and not creating else ""
        control = _setting_control(setting, values.get(key, ""), readonly)
        error = errors.get(key)
        note = f'<span class="field-error" id="error-{key}">{e(error)}</span>' if error else ""
        help_text = f'<span class="muted" id="help-{key}">{e(_setting_help(setting))}</span>'
        rows.append(f'<div class="field{" invalid" if error else ""}"><label for="f-{key}">'
                    f'{e(setting.label)}</label>{control}{note}{help_text}</div>')
    button = "Create" if creating else "Save"
    return (f'<form method="post" action="{e(action)}" class="server-form">{csrf_field(page)}'
            + "".join(rows) + f'<button id="save">{button}</button></form>')


USER_FIELDS = (("name", "Name"), ("password", "Password"), ("role", "Role"))


def _role_select(select_id, name, selected):
    options = "".join(f'<option value="{r}"{" selected" if r == selected else ""}>{r}</option>'
                      for r in ROLES)
    return f'<select name="{name}" id="{e(select_id)}">{options}</select>'


def _field_error(key, errors):
    error = errors.get(key)
    return f'<span class="field-error" id="error-{e(key)}">{e(error)}</span>' if error else ""


def users_page(page, users, values=None, errors=None):
    """The accounts: a row per account (change role, reset password, delete) and a form to
    add one. `errors` maps "new-FIELD" or "user-NAME" to the message shown next to it;
    `values` refills the add form after an error (never the password)."""
    values, errors = values or {}, errors or {}
    rows = []
    for user in users:
        name, ident = user["name"], e(user["name"])
        base = f"/users/{q(name)}"
        role_form = (f'<form method="post" action="{base}/role" class="inline">'
                     f'{csrf_field(page)}{_role_select("role-" + name, "role", user["role"])}'
                     f'<button id="set-role-{ident}">Change role</button></form>')
        password_form = (f'<form method="post" action="{base}/password" class="inline">'
                         f'{csrf_field(page)}<input type="password" name="password" '
                         f'id="password-{ident}" placeholder="new password" '
                         f'autocomplete="new-password">'
                         f'<button id="reset-password-{ident}">Reset password</button></form>')
        question = f"Delete user {name}? They can no longer log in."
        delete_form = (f'<form method="post" action="{base}/delete" class="inline" '
                       f'onsubmit="return confirm({e(repr(question))})">{csrf_field(page)}'
                       f'<button class="delete" id="delete-{ident}">Delete</button></form>')
        rows.append(f'<tr id="user-{ident}"><td class="name">{ident}'
                    f'{" (you)" if name == page.user else ""}</td>'
                    f'<td class="role">{e(user["role"])}</td><td>{e(user["created"])}</td>'
                    f'<td>{e(user.get("last_login") or "never")}</td>'
                    f'<td class="actions">{role_form} {password_form} {delete_form}'
                    f'{_field_error("user-" + name, errors)}</td></tr>')
    listing = ("<table id=\"users\"><thead><tr><th>User</th><th>Role</th><th>Created</th>"
               "<th>Last login</th><th></th></tr></thead><tbody>" + "".join(rows)
               + "</tbody></table>") if rows else (
        '<p class="muted" id="no-users">No accounts yet: mfds is open to local users. Add an '
        'admin first.</p>')
    fields = []
    for key, label in USER_FIELDS:
        if key == "role":
            control = _role_select("new-role", "role", values.get("role", "readonly"))
        else:
            secret = key == "password"
            value = "" if secret else values.get(key, "")
            extra = ' type="password" autocomplete="new-password"' if secret else ' type="text"'
            control = f'<input name="{key}" id="new-{key}"{extra} value="{e(value)}">'

        invalid = " invalid" if errors.get(f"new-{key}") else ""
        fields.append(f'<div class="field{invalid}"><label for="new-{key}">{label}</label>'
                      f'{control}{_field_error("new-" + key, errors)}</div>')
    add_form = (f'<h2>Add an account</h2><form method="post" action="/users/new" '
                f'class="user-form">{csrf_field(page)}{"".join(fields)}'
                f'<button id="add-user">Add</button></form>'
                f'<p class="muted">readonly: looks; operator: also starts, stops and deploys; '
                f'admin: everything, including this page.</p>')
    return layout(page, "Users", listing + add_form)


def callers_page(page, users, tokens, rules, new_token=None, error=None):
    """API tokens (revoke, create for an account) and call rules (remove, add). `new_token` is
    a token just created, shown this once; `error` what went wrong with the last form."""
    shown = ""
    if new_token:
        shown = (f'<div class="flash ok" id="new-token"><p>Token {e(new_token["id"])} for '
                 f'{e(new_token["user"])}: copy it now, it is not shown again. Callers send it '
                 f'as <code>Authorization: Bearer TOKEN</code>.</p>'
                 f'<input readonly id="new-token-value" value="{e(new_token["token"])}" '
                 f'size="70" onfocus="this.select()"></div>')
    problem = f'<p class="flash error" id="callers-error">{e(error)}</p>' if error else ""
    rows = []
    for token in tokens:
        ident = e(token["id"])
        question = f"Revoke token {token['id']} of {token['user']}? Its callers are refused."
        rows.append(f'<tr id="token-{ident}"><td><code>{ident}</code></td>'
                    f'<td>{e(token["user"])}</td><td>{e(token["note"])}</td>'
                    f'<td>{e(token["created"])}</td><td><form method="post" '
                    f'action="/callers/tokens/{q(token["id"])}/revoke" class="inline" '
                    f'onsubmit="return confirm({e(repr(question))})">{csrf_field(page)}'
                    f'<button class="delete" id="revoke-{ident}">Revoke</button></form></td></tr>')
    token_table = ('<table id="tokens"><thead><tr><th>Token</th><th>User</th><th>Note</th>'
                   '<th>Created</th><th></th></tr></thead><tbody>' + "".join(rows)
                   + '</tbody></table>') if rows else '<p class="muted" id="no-tokens">No ' \
        'tokens.</p>'
    options = "".join(f'<option value="{e(user["name"])}">{e(user["name"])} '
                      f'({e(user["role"])})</option>' for user in users)
    token_form = (f'<form method="post" action="/callers/tokens/new" class="user-form">'
                  f'{csrf_field(page)}<div class="field"><label for="token-user">Account'
                  f'</label><select name="user" id="token-user">{options}</select></div>'
                  f'<div class="field"><label for="token-note">Note</label><input '
                  f'name="note" id="token-note" type="text"></div>'
                  f'<button id="create-token">Create token</button></form>') if users else (
        '<p class="muted">Tokens belong to accounts: add one on the Users page first.</p>')
    rule_rows = []
    for index, rule in enumerate(rules):
        rule_rows.append(
            f'<tr id="rule-{index}"><td>{e(rule["subject"])}</td><td><code>'
            f'{e(rule["pattern"])}</code></td><td><form method="post" '
            f'action="/callers/rules/remove" class="inline">{csrf_field(page)}'
            f'<input type="hidden" name="subject" value="{e(rule["subject"])}">'
            f'<input type="hidden" name="pattern" value="{e(rule["pattern"])}">'
            f'<button class="delete" id="remove-rule-{index}">Remove</button></form></td></tr>')
    rule_table = ('<table id="rules"><thead><tr><th>Who</th><th>May call</th><th></th></tr>'
                  '</thead><tbody>' + "".join(rule_rows) + '</tbody></table>') if rule_rows \
        else ('<p class="muted" id="no-rules">No rules: every caller a listener authenticates '
              'may call every service. The first rule turns that into deny by default.</p>')
    rule_form = (f'<form method="post" action="/callers/rules/new" class="user-form">'
                 f'{csrf_field(page)}<div class="field"><label for="rule-subject">Account or '
                 f'role</label><input name="subject" id="rule-subject" type="text" '
                 f'placeholder="alice, operator, role:admin"></div><div class="field"><label '
                 f'for="rule-pattern">Services</label><input name="pattern" id="rule-pattern" '
                 f'type="text" placeholder="srv01.*"></div>'
                 f'<button id="add-rule">Add rule</button></form>')
    return layout(page, "Callers", shown + problem + "<h2>API tokens</h2>" + token_table
                  + token_form + "<h2>Call rules</h2>" + rule_table + rule_form)
