"""API tokens and call rules of the node, in mfds's repository (tables `api_tokens` and
`call_rules` of $ESRT_HOME/repository.db, beside the accounts).

Like the accounts, they are written by `esrt mfds token ...` and `esrt mfds rule ...` straight
into the repository, whether mfds runs or not, and by mfds's API and pages. Regions get them
through GET /api/callers (`snapshot`), the format and the decisions being esrt.node.callers's.
"""

import hashlib
import json
import sqlite3
from pathlib import Path

from esrt.mfds.repository import connect_store, now_iso
from esrt.mfds.users import UserStore
from esrt.node.callers import check_pattern, new_token, parse_subject, token_hash

_SCHEMA = """
CREATE TABLE IF NOT EXISTS api_tokens (
    id TEXT PRIMARY KEY,
    user TEXT NOT NULL,
    hash TEXT NOT NULL UNIQUE,
    note TEXT NOT NULL DEFAULT '',
    created TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS call_rules (
    subject TEXT NOT NULL,
    pattern TEXT NOT NULL,
    created TEXT NOT NULL,
    PRIMARY KEY (subject, pattern)
);
"""


class CallerError(ValueError):
    """A bad token or rule request; the message says what to do."""


class CallerStore:
    """The tokens and rules tables of one repository file."""

    def __init__(self, path):
        self.path = Path(path)
        self._db = connect_store(self.path)
        # Tokens belong to accounts: the accounts table (and its later columns) first.
        UserStore(self.path).close()
        self._db.executescript(_SCHEMA)

    def close(self):
        self._db.close()

    # -- tokens ------------------------------------------------------------------------------

    def create_token(self, user, note=""):
        """A new token for account `user` (which must exist): {"id", "user", "token", ...}.
        The token itself is in this answer only; what is kept is its hash."""
        if self._db.execute("SELECT 1 FROM users WHERE name = ?", (user,)).fetchone() is None:
            raise CallerError(f"no user {user}: tokens belong to an account; add it with "
                              f"`esrt mfds user add {user} --role ROLE` first")
        ident, token = new_token()
        created = now_iso()
        self._db.execute("INSERT INTO api_tokens (id, user, hash, note, created) "
                         "VALUES (?, ?, ?, ?, ?)", (ident, user, token_hash(token),
                                                    str(note or "")[:200], created))
        return {"id": ident, "user": user, "note": note or "", "created": created,
                "token": token}

    def list_tokens(self):
        """[{"id", "user", "note", "created"}] (never the tokens or their hashes)."""
        rows = self._db.execute("SELECT id, user, note, created FROM api_tokens "
                                "ORDER BY user, created, id")
        return [dict(zip(("id", "user", "note", "created"), row)) for row in rows.fetchall()]

    def revoke_token(self, ident):
        """Delete token `ident` (its id, or the token itself); return its owner."""
        ident = str(ident or "").strip()
        if ident.startswith("esrt_"):
            ident = ident[5:13]
        row = self._db.execute("SELECT user FROM api_tokens WHERE id = ?", (ident,)).fetchone()
        if row is None:
            raise CallerError(f"no token {ident!r}: list them with `esrt mfds token list`")
        self._db.execute("DELETE FROM api_tokens WHERE id = ?", (ident,))
        return row[0]

    # -- rules -------------------------------------------------------------------------------

    def add_rule(self, subject, pattern):
        """Let `subject` (an account or role) call the services matching `pattern`."""
        try:
            subject, pattern = parse_subject(subject), check_pattern(pattern)
        except ValueError as exc:
            raise CallerError(str(exc)) from None
        try:
            self._db.execute("INSERT INTO call_rules (subject, pattern, created) "
                             "VALUES (?, ?, ?)", (subject, pattern, now_iso()))
        except sqlite3.IntegrityError:
            raise CallerError(f"{subject} may already call {pattern}") from None
        return {"subject": subject, "pattern": pattern}

    def list_rules(self):
        """[{"subject", "pattern", "created"}] sorted."""
        rows = self._db.execute("SELECT subject, pattern, created FROM call_rules "
                                "ORDER BY subject, pattern")
        return [dict(zip(("subject", "pattern", "created"), row)) for row in rows.fetchall()]

    def remove_rule(self, subject, pattern):
        try:
            subject = parse_subject(subject)
        except ValueError as exc:
            raise CallerError(str(exc)) from None
        if self._db.execute("DELETE FROM call_rules WHERE subject = ? AND pattern = ?",
                            (subject, str(pattern).strip())).rowcount == 0:
            raise CallerError(f"no rule lets {subject} call {pattern}: list them with "
                              "`esrt mfds rule list`")
        return {"subject": subject, "pattern": pattern}

    # -- what regions get -------------------------------------------------------------------

    def snapshot(self):
        """Accounts (with their password hashes), token hashes and rules, with a `version`
        that changes whenever any of them does."""
        users = [{"name": n, "role": r, "hash": h} for n, r, h in self._db.execute(
            "SELECT name, role, hash FROM users ORDER BY name").fetchall()]
        tokens = [{"id": i, "user": u, "hash": h} for i, u, h in self._db.execute(
            "SELECT id, user, hash FROM api_tokens ORDER BY id").fetchall()]
        rules = [{"subject": s, "pattern": p} for s, p in self._db.execute(
            "SELECT subject, pattern FROM call_rules ORDER BY subject, pattern").fetchall()]
        document = {"users": users, "tokens": tokens, "rules": rules}
        document["version"] = hashlib.sha256(
            json.dumps(document, sort_keys=True).encode()).hexdigest()[:16]
        return document
