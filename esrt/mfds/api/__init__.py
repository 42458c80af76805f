"""mfds's JSON API, free of any web framework: (method, path, query, body, who) -> Response.

server.py plugs this into Twisted web. The API is one table of routes (`routes.py`) gathered
from a module per resource: `servers` (definitions, status, start and stop), `packages`
(deploy, services), `console`, `accounts` (and the caller's own session); `authority` checks
roles and writes the audit trail. The OpenAPI document is written from the same table.
Every error leaves as {"error": {"code", "message", "fields"?}}.

`who` is the esrt.mfds.users.Principal the web layer authenticated (None = authentication is
off, everyone is admin).
"""

import os

import esrt
from esrt.home import Home
from esrt.mfds.api.accounts import Accounts
from esrt.mfds.api.authority import Authority
from esrt.mfds.api.callers import Callers
from esrt.mfds.api.console import Console
from esrt.mfds.api.history import History
from esrt.mfds.api.openapi import openapi_document
from esrt.mfds.api.packages import Packages
from esrt.mfds.api.routes import Call, Response, Route, RouteTable, guarded
from esrt.mfds.api.servers import Servers
from esrt.mfds.api.members import StoreSync
from esrt.mfds.users import OPEN

PATH_PARAMETERS = {"name": "server (region) name, e.g. ESSRV01",
                   "user": "account name, e.g. alice",
                   "id": "API token id: the 8 hex digits after esrt_"}


class MfdsApi:
    """The routes of mfds's JSON API over one Repository, and the resources behind them."""

    def __init__(self, repository, home, users=None, log=None):
        self.repository = repository
        self.home = home if isinstance(home, Home) else Home(home)
        self.users = users
        self.authority = Authority(self.home)
        # Servers on a PostgreSQL store: their members and shared packages (started by the
        # web layer, which has the reactor).
        self.stores = StoreSync(repository, log or (lambda line: None))
        self.servers = Servers(repository, self.home, self.authority)
        self.packages = Packages(repository, self.home, self.authority, self.servers,
                                 self.stores)
        self.stores.packages = self.packages
        self.console = Console(repository, self.home)
        self.history = History(repository, self.home)
        self.accounts = Accounts(users, self.authority)
        self.callers = Callers(self.home, self.authority)
        own = [Route("GET", "/api/health", lambda call: Response(200, self.health()),
                     "Is mfds up", None, {200: ("mfds is up", {"type": "object"})}),
               Route("GET", "/api/openapi.json", lambda call: Response(
                   200, openapi_document(self.table)), "This document", "readonly",
                   {200: ("OpenAPI 3.0 document", {"type": "object"})})]
        self.table = RouteTable(own + self.servers.routes() + self.packages.routes()
                                + self.stores.routes()
                                + self.console.routes() + self.history.routes()
                                + self.accounts.routes()
                                + self.callers.routes(), PATH_PARAMETERS)

    def handle(self, method, path, query=None, body=b"", who=None):
        """Answer one request with a Response or a Later; never raises ApiError & co."""
        return guarded(self._dispatch, method.upper(), path, query or {}, body or b"",
                       who or OPEN)

    def _dispatch(self, method, path, query, body, who):
        route, params = self.table.find(method, path)
        return route.handler(Call(params, query, body, who))

    def is_public(self, path):
        """True when `path` answers without credentials (the web layer skips the gate)."""
        return self.table.is_public(path)

    def health(self):
        """The /api/health answer."""
        return {"status": "ok", "pid": os.getpid(), "home": str(self.home.root),
                "version": esrt.__version__}
