"""Who may call services: API tokens, call rules, and the snapshot regions check calls with
(admin only; the node token acts as admin, which is how regions read it).

GET /api/callers?version=V answers 304 when V is still the version, so a region asking every
few seconds costs a few SQLite reads and no transfer.
"""

from esrt.mfds.api.routes import ApiError, Response, Route
from esrt.mfds.callers import CallerError, CallerStore
from esrt.mfds.users import NODE

OBJECT = {"type": "object"}


class Callers:
    """Tokens and rules of the node's repository."""

    def __init__(self, home, authority):
        self.home = home
        self.authority = authority
        self._store = None

    def store(self):
        if self._store is None:
            self._store = CallerStore(self.home.repository)
        return self._store

    def routes(self):
        """The routes of /api/callers, /api/tokens and /api/rules."""
        return [
            Route("GET", "/api/callers", self._snapshot_route,
                  "Accounts (with password hashes), token hashes and call rules, as regions "
                  "check service calls with them (the node token only)", "admin",
                  {200: ("the snapshot and its version", OBJECT),
                   304: ("unchanged since `version`", None)},
                  (401, 403), query=(("version", {"type": "string"},
                                      "the version the caller holds"),)),
            Route("GET", "/api/tokens", self._list_tokens, "List the API tokens (never the "
                  "tokens)", "admin", {200: ("every token", OBJECT)}, (401, 403)),
            Route("POST", "/api/tokens", self.create_token,
                  "Create an API token for an account; the answer is the only place the token "
                  "is ever shown", "admin", {201: ("created, with the token", OBJECT)},
                  (400, 401, 403), OBJECT),
            Route("DELETE", "/api/tokens/{id}", self.revoke_token, "Revoke an API token",
                  "admin", {204: ("revoked", None)}, (401, 403, 404)),
            Route("GET", "/api/rules", self._list_rules, "List the call rules", "admin",
                  {200: ("every rule", OBJECT)}, (401, 403)),
            Route("POST", "/api/rules", self.add_rule,
                  "Let an account or role call the services matching a pattern", "admin",
                  {201: ("added", OBJECT)}, (400, 401, 403), OBJECT),
            Route("DELETE", "/api/rules", self.remove_rule, "Remove a call rule (subject and "
                  "pattern in the query)", "admin", {204: ("removed", None)}, (400, 401, 403),
                  query=(("subject", {"type": "string"}, "user:NAME or role:NAME"),
                         ("pattern", {"type": "string"}, "the rule's pattern"))),
        ]

    def _snapshot_route(self, call):
        # It holds the accounts' password hashes: for the node's own regions (the node
        # token) only, not for every admin who can log in from elsewhere.
        if call.who is not NODE:
            self.authority.record(call.who, "read the callers", "callers", "denied",
                                  "only the node token may")
            raise ApiError(403, "forbidden", "GET /api/callers is for the node's regions "
                           "(the node token); admins see tokens and rules at /api/tokens and "
                           "/api/rules")
        snapshot = self.store().snapshot()
        if call.query.get("version") == snapshot["version"]:
            return Response(304)
        return Response(200, snapshot)

    def _list_tokens(self, call):
        self.authority.require(call.who, "admin", "list the tokens", "tokens")
        return Response(200, {"tokens": self.store().list_tokens()})

    def create_token(self, call):
        """POST /api/tokens {user, note}: a new token, shown in this answer only."""
        document = call.json()
        user = str(document.get("user") or "")
        self.authority.require(call.who, "admin", "create tokens", user)
        try:
            made = self.store().create_token(user, str(document.get("note") or ""))
        except CallerError as exc:
            self.authority.record(call.who, "create token", user, "failed", exc)
            raise ApiError(400, "invalid", str(exc), {"user": str(exc)}) from None
        self.authority.record(call.who, "create token", user, "ok", f"token {made['id']}")
        return Response(201, made)

    def revoke_token(self, call):
        """DELETE /api/tokens/{id}."""
        ident = call.params["id"]
        self.authority.require(call.who, "admin", "revoke tokens", ident)
        try:
            owner = self.store().revoke_token(ident)
        except CallerError as exc:
            raise ApiError(404, "not_found", str(exc)) from None
        self.authority.record(call.who, "revoke token", owner, "ok", f"token {ident}")
        return Response(204)

    def _list_rules(self, call):
        self.authority.require(call.who, "admin", "list the rules", "rules")
        return Response(200, {"rules": self.store().list_rules()})

    def add_rule(self, call):
        """POST /api/rules {subject, pattern}."""
        document = call.json()
        subject, pattern = document.get("subject"), document.get("pattern")
        self.authority.require(call.who, "admin", "add rules", str(subject))
        try:
            rule = self.store().add_rule(subject, pattern)
        except CallerError as exc:
            raise ApiError(400, "invalid", str(exc)) from None
        self.authority.record(call.who, "add rule", rule["subject"], "ok", rule["pattern"])
        return Response(201, rule)

    def remove_rule(self, call):
        """DELETE /api/rules?subject=...&pattern=...."""
        subject, pattern = call.query.get("subject"), call.query.get("pattern")
        self.authority.require(call.who, "admin", "remove rules", str(subject))
        try:
            rule = self.store().remove_rule(subject, pattern or "")
        except CallerError as exc:
            raise ApiError(400, "invalid", str(exc)) from None
        self.authority.record(call.who, "remove rule", rule["subject"], "ok", rule["pattern"])
        return Response(204)
