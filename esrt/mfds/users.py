"""mfds accounts, the node token and the audit log.

Accounts live in the node's repository (table `users` of $ESRT_HOME/repository.db) so that
`esrt mfds user add` works whether or not mfds runs. Passwords are hashed with Argon2id
(argon2-cffi); the clear password is never stored.

Roles, from least to most powerful:
    readonly  sees everything, changes nothing
    operator  also starts and stops servers and deploys packages
    admin     also creates, edits and deletes servers and manages the accounts

The last admin account can be neither deleted nor demoted through mfds (`keep_admin=True`):
without one, nobody could manage the node from a browser any more.

The node token ($ESRT_HOME/mfds.token, mode 0600, created by mfds at start) lets processes of
this node that can read it -- regions reporting their status, the CLI run by the node's owner --
talk to mfds without an account: whoever can read that file can read repository.db anyway.
It is sent as the header `X-Esrt-Node-Token` and acts with the admin role.

The audit log ($ESRT_HOME/audit.log) gets one JSON line per administrative action:
{"time", "user", "action", "target", "outcome", "detail"}.
"""

import hmac
import os
import re
import secrets
import sqlite3
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from esrt.mfds.repository import Transaction, connect_store, now_iso
# The audit log is written by regions too (denied service calls); users of it import it here.
from esrt.node.audit import AUDIT_FILE, audit  # noqa: F401 - re-exported
# The node token's file is shared with the client side, which reads it to authenticate.
from esrt.node.mfds_client import TOKEN_FILE, read_node_token

ROLES = ("readonly", "operator", "admin")
USER_NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_.@-]{0,63}$")
MIN_PASSWORD = 8

_SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    name TEXT PRIMARY KEY,
    hash TEXT NOT NULL,
    role TEXT NOT NULL,
    created TEXT NOT NULL
);
"""
# Added after the first release: older repositories get the column when first opened.
_LAST_LOGIN_COLUMN = "ALTER TABLE users ADD COLUMN last_login TEXT"

_hasher = PasswordHasher()
# Verifying against this when the user does not exist keeps "no such user" and "wrong password"
# equally slow, so response times do not tell which account names exist. Made on first use:
# hashing costs about 0.1 s, which every esrt command would otherwise pay at import.
_dummy_hash = []


def _hash_of_nobody():
    if not _dummy_hash:
        _dummy_hash.append(_hasher.hash("not a real password"))
    return _dummy_hash[0]


class UserError(ValueError):
    """A bad account request; the message says what to do. `field` names the bad input
    ("name", "password" or "role") when there is one."""

    def __init__(self, message, field=None):
        super().__init__(message)
        self.field = field


class UserExists(UserError):
    """An account of that name exists already."""


class NoSuchUser(UserError):
    """No account of that name exists."""


class LastAdmin(UserError):
    """The change would leave the node without any admin account."""


def check_account(**values):
    """{field: message} for each given value (name, password, role) that is not acceptable."""
    problems = {}
    if "name" in values and not USER_NAME_RE.match(str(values["name"] or "")):
        problems["name"] = (f"user name {values['name']!r} is not valid: use a letter then up "
                            "to 63 letters, digits, '.', '_', '-' or '@'")
    if "password" in values:
        password = values["password"]
        if not isinstance(password, str) or len(password) < MIN_PASSWORD:
            problems["password"] = (f"the password is too short: use at least {MIN_PASSWORD} "
                                    "characters")
    if "role" in values and values["role"] not in ROLES:
        problems["role"] = f"role {values['role']!r} is unknown: use one of {', '.join(ROLES)}"
    return problems


def role_allows(role, needed):
    """True when `role` is at least as powerful as `needed`."""
    try:
        return ROLES.index(role) >= ROLES.index(needed)
    except ValueError:
        return False


class UserStore:
    """The accounts table of one repository file."""

    def __init__(self, path):
        self.path = Path(path)
        self._db = connect_store(self.path)
        self._db.executescript(_SCHEMA)
        columns = [row[1] for row in self._db.execute("PRAGMA table_info(users)")]
        if "last_login" not in columns:
            try:
                self._db.execute(_LAST_LOGIN_COLUMN)
            except sqlite3.OperationalError:
                pass  # another process (CLI or mfds) added it at the same moment

    def close(self):
        """Close the database connection."""
        self._db.close()

    def add(self, name, password, role):
        """Create account `name`; UserError when the name, password or role is not acceptable,
        UserExists when the name is taken."""
        problems = check_account(name=name, role=role, password=password)
        for field in ("name", "role", "password"):
            if field in problems:
                message = problems[field]
                if field == "password":
                    message = message.replace("the password", f"the password of {name}", 1)
                raise UserError(message, field)
        try:
            self._db.execute("INSERT INTO users (name, hash, role, created) VALUES (?, ?, ?, ?)",
                             (name, _hasher.hash(password), role, now_iso()))
        except sqlite3.IntegrityError:
            raise UserExists(f"user {name} already exists: delete it first with "
                             f"`esrt mfds user delete {name}`", "name") from None

    def delete(self, name, keep_admin=False):
        """Delete account `name`; NoSuchUser when there is none. With `keep_admin`, LastAdmin
        when it is the only admin."""
        with self._write():
            if keep_admin:
                self._refuse_last_admin(name, "delete")
            if self._db.execute("DELETE FROM users WHERE name = ?", (name,)).rowcount == 0:
                raise NoSuchUser(f"no user {name}: list them with `esrt mfds user list`")
            # Its API tokens and call rules go with it: a new account of the same name must
            # not inherit them (esrt.mfds.callers keeps them in these tables).
            tables = {row[0] for row in self._db.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table'")}
            if "api_tokens" in tables:
                self._db.execute("DELETE FROM api_tokens WHERE user = ?", (name,))
            if "call_rules" in tables:
                self._db.execute("DELETE FROM call_rules WHERE subject = ?", (f"user:{name}",))

    def set_role(self, name, role, keep_admin=True):
        """Give account `name` the role `role`; LastAdmin when that demotes the only admin."""
        problems = check_account(role=role)
        if problems:
            raise UserError(problems["role"], "role")
        with self._write():
            if role != "admin" and keep_admin:
                self._refuse_last_admin(name, "demote")
            if self._db.execute("UPDATE users SET role = ? WHERE name = ?",
                                (role, name)).rowcount == 0:
                raise NoSuchUser(f"no user {name}: list them with `esrt mfds user list`")

    def set_password(self, name, password):
        """Replace the password of account `name` (hashed like a new one)."""
        problems = check_account(password=password)
        if problems:
            raise UserError(problems["password"], "password")
        if self._db.execute("UPDATE users SET hash = ? WHERE name = ?",
                            (_hasher.hash(password), name)).rowcount == 0:
            raise NoSuchUser(f"no user {name}: list them with `esrt mfds user list`")

    def touch_login(self, name):
        """Record that `name` just logged in."""
        self._db.execute("UPDATE users SET last_login = ? WHERE name = ?", (now_iso(), name))

    def get(self, name):
        """{"name", "role", "created", "last_login"} of account `name`; NoSuchUser if none."""
        row = self._db.execute("SELECT name, role, created, last_login FROM users "
                               "WHERE name = ?", (name,)).fetchone()
        if row is None:
            raise NoSuchUser(f"no user {name}: list them with `esrt mfds user list`")
        return dict(zip(("name", "role", "created", "last_login"), row))

    def _write(self):
        """A write transaction: the admin count checked in it cannot change before commit,
        whichever process (mfds, the CLI) writes at the same time."""
        return Transaction(self._db)

    def _refuse_last_admin(self, name, verb):
        if self.role(name) != "admin":
            return
        admins = self._db.execute("SELECT COUNT(*) FROM users WHERE role = 'admin'").fetchone()[0]
        if admins <= 1:
            raise LastAdmin(f"user {name} is the last admin and cannot be {verb}d: give another "
                            "account the admin role first, so that someone can still manage "
                            "mfds", "role")

    def list(self):
        """[{"name", "role", "created", "last_login"}] sorted by name (never the hashes);
        last_login is None until the account logs in through the login page."""
        rows = self._db.execute("SELECT name, role, created, last_login FROM users "
                                "ORDER BY name")
        return [{"name": n, "role": r, "created": c, "last_login": t}
                for n, r, c, t in rows.fetchall()]

    def count(self):
        """How many accounts exist (0 = authentication is off)."""
        return self._db.execute("SELECT COUNT(*) FROM users").fetchone()[0]

    def has_admin(self):
        """True when at least one admin account exists."""
        return self._db.execute("SELECT 1 FROM users WHERE role = 'admin'").fetchone() is not None

    def role(self, name):
        """The role of account `name`, or None when it does not exist (any more)."""
        row = self._db.execute("SELECT role FROM users WHERE name = ?", (name,)).fetchone()
        return row[0] if row else None

    def authenticate(self, name, password):
        """Return the role of `name` when `password` is right, else None."""
        row = self._db.execute("SELECT hash, role FROM users WHERE name = ?",
                               (str(name),)).fetchone()
        try:
            _hasher.verify(row[0] if row else _hash_of_nobody(), str(password))
        except (VerificationError, InvalidHashError):
            return None
        return row[1] if row else None


# -- node token --------------------------------------------------------------------------------

def token_path(home):
    """Where the node token of `home` (an esrt.home.Home) lives."""
    return Path(home.root) / TOKEN_FILE


def ensure_node_token(home):
    """Return the node token, creating it (readable by its owner only) when missing."""
    path = token_path(home)
    token = read_node_token(home)
    if token:
        return token
    token = secrets.token_urlsafe(32)
    tmp = path.with_name(f".{TOKEN_FILE}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(token + "\n")
    os.replace(tmp, path)
    return token


def token_matches(expected, given):
    """Constant-time comparison of a presented token with the node's."""
    return bool(expected and given) and hmac.compare_digest(str(expected), str(given))


class Principal:
    """Who makes a request: account name, role, and how they proved it (session, basic, token,
    open = authentication is off because no account exists yet)."""

    def __init__(self, name, role, via):
        self.name = name
        self.role = role
        self.via = via

    def allows(self, needed):
        """True when this principal's role is at least `needed`."""
        return role_allows(self.role, needed)

    def __repr__(self):
        return f"Principal({self.name!r}, {self.role!r}, via={self.via!r})"


# Before the first account exists mfds is reachable on loopback only and everyone is admin.
OPEN = Principal("anonymous", "admin", "open")
NODE = Principal("node-token", "admin", "token")
