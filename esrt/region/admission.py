"""The region's front door: how a call gets in, whichever listener brought it.

HTTP's POST /services/<package>/<PROGRAM> (esrt.region.http) and the binary conversation's
request frames (esrt.region.wire_listener) both hand Admission.admit what the client sent, as
bytes. It decides in one place, in this order, whether the call may run:

1. the region serves here: a standby standing by answers 503 `unavailable` (its packages are
   on the disk the active node holds, so "unknown" would be wrong);
2. the service is deployed: 404 `unknown_service`, naming the deployed ones;
3. the parameters fit the server's max_body: 413 `too_large`;
4. the idempotency key is 1 to 200 printable ASCII characters: 400 `bad_idempotency_key`;

and then sends it to the dispatcher. A call that passes 2 to 4 plainly (an ASCII name, a
good key or none) is admitted in one step by esrt.region.frontdoor.admit, in C when it is
built; the checks above decide the rest and word every refusal.

On a listener that authenticates its callers (its `auth` setting), the listener says who is
calling (an esrt.node.callers.Caller) and the checks begin with them: an unknown caller is
refused with 401 `unauthenticated` before anything else (not even which services exist is
told), and a known one that no rule lets call the service with 403 `forbidden`, after step 2.
Each denial is reported (`on_denied`: the console log, the audit log) and counted.
A refusal is a Reply like any other, carrying the one JSON error body (esrt.region.replies),
and counted in the metrics by conversation and code.
"""

import re

from esrt.region import frontdoor
from esrt.region.replies import error_reply

IDEMPOTENCY_KEY = re.compile(rb"[\x21-\x7e]{1,200}")


class Admission:
    """Admits or refuses the service calls of every listener of one region."""

    def __init__(self, server_name, services, dispatcher, max_body, metrics=None,
                 callers=None, on_denied=None):
        """`services` is the region's ServiceTable; `metrics` (a RegionMetrics, default the
        dispatcher's) counts refusals; `callers` (esrt.region.callers.CallerDirectory) holds
        the rules; `on_denied(conversation, caller, service, status, reason)` reports each
        denial."""
        self.server_name = server_name
        self.services = services
        self.dispatcher = dispatcher
        self.max_body = max_body
        self.metrics = metrics if metrics is not None else getattr(dispatcher, "metrics", None)
        self.callers = callers
        self.on_denied = on_denied

    def admit(self, conversation, service, params, key, reply_to, token, caller=None):
        """Run the call of `service` (bytes, "package.PROGRAM") with JSON `params` bytes
        under idempotency `key` (bytes, None without one) if it may run.

        `reply_to(reply, token, ticket)` is called once with the Reply: the service's, or at
        once the refusal. Returns the call's ticket (Dispatcher.send), whose withdraw() drops
        or rolls back the call when the client goes away; None when it was answered at once.
        `conversation` ("http", "esrt") labels refusals in the metrics. `caller` is who
        calls on a listener that authenticates (None on one that does not).
        """
        if caller is not None and not caller.known:
            return self._deny(conversation, caller, service, 401, "unauthenticated",
                              f"who is calling is not known: {caller.problem}", reply_to, token)
        if not self.dispatcher.inactive_reason:
            # The common case (deployed, not too large, a good key or none) is decided in one
            # step, in C when it is built; whatever it declines, the checks below decide.
            common = frontdoor.admit(self.services.by_name, service, params, key,
                                     self.max_body)
            if common is not None:
                if caller is not None and not self.callers.policy.allows(caller, common[0]):
                    return self._forbidden(conversation, caller, common[0], reply_to, token)
                return self.dispatcher.send(common[0], params, common[1], reply_to, token)
        try:
            name = service.decode("utf-8")
        except UnicodeDecodeError:
            name = None
        standing_by = self.dispatcher.inactive_reason
        if standing_by:
            return self.refuse(conversation, 503, "unavailable", f"{name}: {standing_by}",
                               reply_to, token)
        found = self.services.lookup(name) if name else None
        if found is None:
            if caller is not None:
                # Rules may hide services from this caller: the list would show them.
                return self.refuse(conversation, 404, "unknown_service",
                                   f"no service {name or repr(service)} on "
                                   f"{self.server_name}", reply_to, token)
            deployed = ", ".join(self.services.names()) or "none (deploy a package first)"
            return self.refuse(conversation, 404, "unknown_service",
                               f"no service {name or repr(service)} on {self.server_name}; "
                               f"deployed: {deployed}", reply_to, token)
        if caller is not None and not self.callers.policy.allows(caller, found.name):
            return self._forbidden(conversation, caller, found.name, reply_to, token)
        if len(params) > self.max_body:
            return self.refuse(conversation, 413, "too_large",
                               f"request parameters of {len(params)} bytes are larger than "
                               f"this server's max_body of {self.max_body} bytes; send less, "
                               "or raise max_body in the server definition", reply_to, token)
        if key is not None and not IDEMPOTENCY_KEY.fullmatch(key):
            return self.refuse(conversation, 400, "bad_idempotency_key",
                               "the idempotency key (HTTP: the Idempotency-Key header) must be "
                               "1 to 200 printable ASCII characters (a UUID is a good choice)",
                               reply_to, token)
        return self.dispatcher.send(found.name, params,
                                    key.decode("ascii") if key is not None else None,
                                    reply_to, token)

    def _forbidden(self, conversation, caller, name, reply_to, token):
        return self._deny(conversation, caller, name, 403, "forbidden",
                          f"{caller.name} (role {caller.role}) may not call {name}: no call "
                          f"rule allows it; an admin can add one with `esrt mfds rule add "
                          f"{caller.name} {name}`", reply_to, token)

    def _deny(self, conversation, caller, service, status, code, message, reply_to, token):
        if isinstance(service, bytes):
            service = service.decode("utf-8", "replace")
        self.report_denied(conversation, caller, service, status, message)
        return self.refuse(conversation, status, code, message, reply_to, token)

    def report_denied(self, conversation, caller, service, status, message):
        """Report a denial (console, audit log) through `on_denied`."""
        if self.on_denied is not None:
            self.on_denied(conversation, caller, service, status, message)

    def refuse(self, conversation, status, code, message, reply_to, token):
        """Answer with an error Reply at once, counted as refused by `conversation`; None (no
        ticket)."""
        self.count_refused(conversation, code)
        reply_to(error_reply(status, code, message), token, None)
        return None

    def count_refused(self, conversation, code):
        """Count a request a listener answered itself without running a service."""
        if self.metrics is not None:
            self.metrics.refused(conversation, code)
