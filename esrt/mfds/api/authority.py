"""Who may do what through mfds, and the record of what they did.

Reading needs readonly; starting, stopping and deploying need operator; creating, editing and
deleting servers and managing accounts need admin. Every change, and every refused attempt,
goes to the audit log; changes to a server also to that server's console log
(ESAD0001I/ESAD0002W), where its operators look first.
"""

import os
import time

from esrt.mfds.api.routes import ApiError
from esrt.mfds.users import OPEN, audit
from esrt.paths import RegionPaths
from esrt.node.console import format_line


class Authority:
    """Checks roles and writes the audit trail of one node (`home`)."""

    def __init__(self, home):
        self.home = home

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
