"""Who may call which service: API tokens and call rules, as mfds keeps them and regions check
them.

mfds holds the node's accounts (esrt.mfds.users), API tokens and call rules in its repository
(esrt.mfds.callers) and hands regions a snapshot of them (GET /api/callers); a region keeps the
last one it got, so calls are still checked while mfds is down. This module is what both sides
share: the token format, the rule syntax and the decision.

- A token is "esrt_" + an 8-hex-digit id + "_" + 43 random URL-safe characters (256 bits). It
  is shown once, when created; mfds keeps its SHA-256 only. A token is a random secret, not a
  password someone chose, so a fast hash is as safe as a slow one and costs nothing per call.
- A rule lets a subject call the services whose PACKAGE.PROGRAM name matches a glob pattern
  (`*`, `?`, `[...]`; `srv01.*`). The subject is an account ("user:alice") or a role
  ("role:operator"); a bare name is a role when it is one of the roles, else an account.
- With no rule at all, every caller the listener authenticates may call every service (the
  behaviour before rules existed); once one rule exists, a call is refused unless a rule allows
  it (deny by default).
"""

import fnmatch
import hashlib
import re
import secrets

ROLES = ("readonly", "operator", "admin")
TOKEN_RE = re.compile(r"^esrt_([0-9a-f]{8})_[A-Za-z0-9_-]{43}$")
PATTERN_RE = re.compile(r"^[A-Za-z0-9_.$#@*?\[\]!-]{1,255}$")


def new_token():
    """(id, token) of a fresh API token."""
    token_id = secrets.token_hex(4)
    return token_id, f"esrt_{token_id}_{secrets.token_urlsafe(32)}"


def token_hash(token):
    """What is stored of a token: its SHA-256, hex."""
    return hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()


def token_id(token):
    """The id part of a well-formed token, else None."""
    found = TOKEN_RE.match(token or "")
    return found.group(1) if found else None


def parse_subject(text):
    """'user:NAME' or 'role:NAME' from what a user typed; ValueError saying what is wrong."""
    text = str(text or "").strip()
    kind, colon, name = text.partition(":")
    if not colon:
        kind, name = ("role" if text in ROLES else "user"), text
    if kind not in ("user", "role") or not name:
        raise ValueError(f"{text!r} is not a caller: give an account name, a role "
                         f"({', '.join(ROLES)}), or user:NAME / role:NAME")
    if kind == "role" and name not in ROLES:
        raise ValueError(f"role {name!r} is unknown: use one of {', '.join(ROLES)}")
    return f"{kind}:{name}"


def check_pattern(pattern):
    """A clean service pattern, or ValueError saying what is wrong."""
    pattern = str(pattern or "").strip()
    if not PATTERN_RE.match(pattern):
        raise ValueError(f"{pattern!r} is not a service pattern: give PACKAGE.PROGRAM with "
                         "* and ? for any characters, e.g. srv01.* or *.CBLAPP01")
    return pattern


class Caller:
    """Who sent a call: an account (`name`, `role`, `via`: token, basic or mtls), or nobody
    known, with `problem` saying why (no credentials, a revoked token, ...). `proof` is what
    they proved it with (the token's hash, the password hash it was checked against, the
    certificate's CN), so that a connection that stays open can be checked again when the
    accounts, tokens or rules change (CallerPolicy.recheck)."""

    __slots__ = ("name", "role", "via", "problem", "proof")

    def __init__(self, name=None, role=None, via=None, problem=None, proof=None):
        self.name, self.role, self.via, self.problem = name, role, via, problem
        self.proof = proof

    @property
    def known(self):
        return self.name is not None

    def __repr__(self):
        return f"Caller({self.name!r}, {self.role!r}, via={self.via!r})" if self.known \
            else f"Caller(unknown: {self.problem})"


class CallerPolicy:
    """The accounts, tokens and rules of one snapshot, and the decisions made with them."""

    def __init__(self, snapshot=None):
        snapshot = snapshot or {}
        self.snapshot = snapshot
        self.users = {user["name"]: user for user in snapshot.get("users", ())}
        self.tokens = {token["hash"]: token for token in snapshot.get("tokens", ())}
        self.rules = [(rule["subject"], rule["pattern"]) for rule in snapshot.get("rules", ())]

    def by_token(self, token):
        """The Caller a token stands for."""
        return self._by_token_hash(token_hash(token) if token_id(token) else None)

    def _by_token_hash(self, digest):
        entry = self.tokens.get(digest) if digest else None
        user = self.users.get(entry["user"]) if entry else None
        if user is None:
            return Caller(problem="the token is not known here (revoked, mistyped, or made on "
                                  "another node): create one with `esrt mfds token create "
                                  "USER` and send it as Authorization: Bearer TOKEN")
        return Caller(user["name"], user["role"], "token", proof=digest)

    def by_certificate(self, common_name):
        """The Caller of a client certificate whose subject CN is an account name."""
        user = self.users.get(common_name or "")
        if user is None:
            return Caller(problem=f"the client certificate's name (CN={common_name}) is not an "
                                  "account of this node: add the account with `esrt mfds user "
                                  "add NAME` or issue the certificate to an existing one")
        return Caller(user["name"], user["role"], "mtls", proof=user["name"])

    def by_verified_password(self, name, checked_hash):
        """The Caller of account `name` whose password was found to match `checked_hash`:
        unknown when the account is gone or its password changed since."""
        user = self.users.get(name)
        if user is None or user["hash"] != checked_hash:
            return Caller(problem=f"the account {name} was deleted or its password changed: "
                                  "send the current credentials")
        return Caller(user["name"], user["role"], "basic", proof=checked_hash)

    def recheck(self, caller):
        """`caller` as these accounts, tokens and rules see them: the same account with its
        current role, or unknown when what it proved no longer holds."""
        if not caller.known:
            return caller
        if caller.via == "token":
            return self._by_token_hash(caller.proof)
        if caller.via == "mtls":
            return self.by_certificate(caller.proof)
        return self.by_verified_password(caller.name, caller.proof)

    def allows(self, caller, service):
        """Whether `caller` (known) may call `service` (PACKAGE.PROGRAM)."""
        if not self.rules:
            return True
        subjects = (f"user:{caller.name}", f"role:{caller.role}")
        return any(subject in subjects and fnmatch.fnmatchcase(service, pattern)
                   for subject, pattern in self.rules)
