"""The time limits of one connection: how long a request head may take, how long a connection
may stay idle (the listener settings head_timeout and idle_timeout).

A connection moves between states many thousand times a second under load, so a state change
only notes the new deadline; one timer per connection is moved only when a deadline comes
earlier than it (a head starting on an idle connection), and when it fires before the current
deadline it just sets itself again for what is left.
"""


class ConnectionClock:
    """One connection's deadline: `head` (counted from the head's first byte), `idle`
    (counted from the last activity), or none while the region owes the answers."""

    def __init__(self, reactor, on_expiry):
        """`on_expiry(kind)` is called once a deadline passes ("head" or "idle")."""
        self.reactor = reactor
        self.on_expiry = on_expiry
        self.kind = None
        self.deadline = None
        self._call = None
        self._at = None
        self._stopped = False

    def follow(self, partial, owed, limits):
        """Run the limit that fits a connection's state: none while the region `owed`
        answers (or stopped reading), the head's (`limits.head_timeout`) while a request is
        `partial`ly sent, the idle one (`limits.idle_timeout`) otherwise."""
        if owed:
            self.clear()
        elif partial:
            self.head(limits.head_timeout)
        else:
            self.idle(limits.idle_timeout)

    def head(self, seconds):
        """Part of a request has arrived: it must be whole within `seconds` of its first
        byte (a head already counting keeps its deadline)."""
        if self.kind != "head":
            self._set("head", seconds)

    def idle(self, seconds):
        """Nothing under way: the connection may stay so for `seconds` from now."""
        # After every answered call: _set's work, without its call.
        if self._stopped:
            return
        now = self.reactor.seconds()
        self.kind, self.deadline = "idle", now + seconds
        if self._call is None or self._at > self.deadline:
            self._schedule(now)

    def clear(self):
        """The region owes answers: no limit meanwhile."""
        self.kind = None

    def stop(self):
        """The connection is gone: no limit any more, whatever is asked later."""
        self._stopped = True
        self.kind = None
        if self._call is not None and self._call.active():
            self._call.cancel()
        self._call = None

    def _set(self, kind, seconds):
        if self._stopped:
            return
        now = self.reactor.seconds()
        self.kind, self.deadline = kind, now + seconds
        if self._call is None or self._at > self.deadline:
            self._schedule(now)

    def _schedule(self, now):
        if self._call is not None and self._call.active():
            self._call.cancel()
        self._at = self.deadline
        self._call = self.reactor.callLater(max(0.0, self.deadline - now), self._fire)

    def _fire(self):
        self._call = None
        if self.kind is None:
            return
        now = self.reactor.seconds()
        if now < self.deadline:
            self._schedule(now)
            return
        kind, self.kind = self.kind, None
        self.on_expiry(kind)
