"""The node's audit log ($ESRT_HOME/audit.log): one JSON line per administrative action and per
refused service call, {"time", "user", "action", "target", "outcome", "detail"}, written by
mfds, the CLI and regions alike (O_APPEND: lines from several processes do not mix)."""

import json
import os
from datetime import datetime, timezone
from pathlib import Path

AUDIT_FILE = "audit.log"


def audit(home, user, action, target, outcome, detail=None):
    """Append one record to the audit log of `home` (an esrt.home.Home); return the record."""
    record = {"time": datetime.now(timezone.utc).isoformat(timespec="seconds"), "user": user,
              "action": action, "target": target, "outcome": outcome}
    if detail:
        record["detail"] = str(detail)
    path = Path(home.root) / AUDIT_FILE
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    with os.fdopen(fd, "a", encoding="utf-8") as out:
        out.write(json.dumps(record, sort_keys=True) + "\n")
    return record
