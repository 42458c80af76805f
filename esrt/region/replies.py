"""What a call is answered with inside the region: a Reply for its caller, or a Rerun that
tells the dispatcher to run the call again.

Every error a caller gets, from a listener, the dispatcher or a SEP, has one JSON shape,
{"error": {"code": ..., "message": ...}}, built here (json_error, error_reply).
"""

import enum
import json


class Reply:
    """What a caller gets for one call: HTTP-like status, JSON body bytes, RETURN-CODE (200
    only)."""

    __slots__ = ("status", "body", "rc")

    def __init__(self, status, body, rc=None):
        self.status = status
        self.body = body
        self.rc = rc

    @property
    def ok(self):
        return self.status == 200

    def __repr__(self):
        return f"Reply({self.status}, {self.body[:80]!r}, rc={self.rc})"


class Rerun(enum.Enum):
    """The call did not commit and runs again; never sent to a caller."""

    # Its SEP was killed from outside before the call committed: run it on another SEP.
    RETRY = "retry"
    # Its SEP died (an abend, a timeout) running a batch: whichever call of the batch caused
    # it, each one runs again on its own, so that only the culprit meets the same end again.
    ALONE = "alone"


def json_error(code, message):
    """esrt's JSON error body, as bytes."""
    return json.dumps({"error": {"code": code, "message": message}}).encode()


def error_reply(status, code, message):
    """A Reply carrying esrt's JSON error body."""
    return Reply(status, json_error(code, message))
