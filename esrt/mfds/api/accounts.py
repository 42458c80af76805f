"""The accounts resource (admin only) and the caller's own session.

The last admin account can be neither deleted nor demoted (409 last_admin): without one,
nobody could manage the node from a browser any more.
"""

from esrt.mfds.api.routes import ApiError, Response, Route, schema_ref
from esrt.mfds.users import OPEN, LastAdmin, UserError, UserExists, check_account


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


class Accounts:
    """The node's accounts (a UserStore, None when this mfds has none)."""

    def __init__(self, users, authority):
        self.users = users
        self.authority = authority
        # Set by the web layer: called with an account name whose password an admin reset,
        # to end that account's sessions.
        self.on_password_change = None

    def routes(self):
        """The routes of /api/users and /api/session."""
        user = schema_ref("User")
        return [
            Route("GET", "/api/users", self._list_route,
                  "List the accounts (never their passwords)", "admin",
                  {200: ("every account, by name", {"type": "object", "properties": {
                      "users": {"type": "array", "items": user}}})}, (401, 403)),
            Route("POST", "/api/users", lambda call: Response(201, self.create(
                call.json(), call.who)), "Add an account", "admin", {201: ("added", user)},
                (400, 401, 403, 409), schema_ref("NewUser")),
            Route("GET", "/api/users/{user}", self._get_route, "One account", "admin",
                  {200: ("the account", user)}, (401, 403, 404)),
            Route("PUT", "/api/users/{user}", lambda call: Response(200, self.update(
                call.params["user"], call.json(), call.who)),
                "Change an account's role and/or reset its password (the last admin cannot "
                "be demoted)", "admin", {200: ("changed", user)}, (400, 401, 403, 404, 409),
                schema_ref("UserChange")),
            Route("DELETE", "/api/users/{user}", self._delete_route,
                  "Delete an account (never the last admin)", "admin",
                  {204: ("deleted", None)}, (401, 403, 404, 409)),
            Route("GET", "/api/session", lambda call: Response(200, self.whoami(call.who)),
                  "Who the credentials of this request belong to (check them before a "
                  "script starts its work)", "readonly", {200: ("the caller", schema_ref(
                      "Session"))}, (401,)),
        ]

    def _list_route(self, call):
        self.authority.require(call.who, "admin", "list the accounts", "users")
        return Response(200, {"users": self.users.list() if self.users else []})

    def _get_route(self, call):
        name = call.params["user"]
        self.authority.require(call.who, "admin", "see the accounts", name)
        return Response(200, self._store().get(name))

    def _delete_route(self, call):
        self.delete(call.params["user"], call.who)
        return Response(204)

    @staticmethod
    def whoami(who):
        """{name, role, via} of the caller; via "open" while no account exists."""
        who = who or OPEN
        return {"name": who.name, "role": who.role, "via": who.via}

    def _store(self):
        if self.users is None:
            raise ApiError(500, "internal", "this mfds has no account store: restart it with "
                           "`esrt mfds --stop` and `esrt mfds`")
        return self.users

    def create(self, document, who=None):
        """Create an account from {name, password, role} (admin); return it (no secrets)."""
        label = str(document.get("name") or "?")
        self.authority.require(who, "admin", "add accounts", label)
        store = self._store()
        fields = _user_fields(document, ("name", "password", "role"))
        values = {key: fields.get(key, "") for key in ("name", "password", "role")}
        problems = check_account(**values)
        if "role" not in problems and values["role"] != "admin" and store.count() == 0:
            # Accounts switch authentication on: without an admin among them nobody could
            # manage the node from a browser any more.
            problems["role"] = ("the first account must be an admin: choose the admin role, "
                                "then add the other accounts")
        if problems:
            self.authority.record(who, "add user", label, "failed",
                                  "; ".join(problems.values()))
            raise ApiError(400, "invalid", "the account was not added: "
                           + "; ".join(problems.values()), problems)
        try:
            store.add(values["name"], values["password"], values["role"])
        except UserExists:
            message = (f"user {values['name']} already exists: choose another name, or change "
                       "that account's role or password instead")
            self.authority.record(who, "add user", label, "failed", "already exists")
            raise ApiError(409, "exists", message, {"name": message}) from None
        self.authority.record(who, "add user", values["name"], "ok", f"role {values['role']}")
        return store.get(values["name"])

    def update(self, name, document, who=None):
        """Change the role and/or reset the password of account `name` (admin); return it.
        The last admin cannot be demoted (409 last_admin)."""
        self.authority.require(who, "admin", "change accounts", name)
        store = self._store()
        fields = _user_fields(document, ("role", "password"))
        if not fields:
            raise ApiError(400, "invalid", f"nothing to change for user {name}: send "
                           "{\"role\": ...} and/or {\"password\": ...}")
        problems = check_account(**fields)
        if problems:
            self.authority.record(who, "change user", name, "failed",
                                  "; ".join(problems.values()))
            raise ApiError(400, "invalid", f"user {name} was not changed: "
                           + "; ".join(problems.values()), problems)
        before = store.get(name)
        if "role" in fields and fields["role"] != before["role"]:
            try:
                store.set_role(name, fields["role"])
            except LastAdmin as exc:
                self.authority.record(who, "change role", name, "failed", exc)
                raise ApiError(409, "last_admin", str(exc), {"role": str(exc)}) from None
            self.authority.record(who, "change role", name, "ok",
                                  f"{before['role']} -> {fields['role']}")
        if "password" in fields:
            store.set_password(name, fields["password"])
            self.authority.record(who, "reset password", name, "ok")
            if self.on_password_change is not None and name != (who or OPEN).name:
                # Whoever knew the old password is logged out; the admin doing it stays in.
                self.on_password_change(name)
        return store.get(name)

    def delete(self, name, who=None):
        """Delete account `name` (admin); the last admin cannot be deleted (409 last_admin)."""
        self.authority.require(who, "admin", "delete accounts", name)
        store = self._store()
        try:
            store.delete(name, keep_admin=True)
        except LastAdmin as exc:
            self.authority.record(who, "delete user", name, "failed", exc)
            raise ApiError(409, "last_admin", str(exc)) from None
        except UserError as exc:
            self.authority.record(who, "delete user", name, "failed", exc)
            raise
        self.authority.record(who, "delete user", name, "ok")
