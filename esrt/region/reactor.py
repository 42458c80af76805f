"""The region's reactor: Twisted's epoll reactor without a log context per event.

For each descriptor ready, Twisted's epoll reactor calls its handler through
twisted.python.log.callWithLogger, which asks the descriptor for its log prefix and pushes a
context for the call: about a tenth of the region's Python time per call (a call is one
socket event, and a share of a SEP pipe event). The region's reports go to its console log,
not through Twisted's log context, so LeanEPollReactor calls the handler directly. What
escapes a handler is still caught and logged, as callWithLogger does, and the next
descriptor is served.
"""

import errno

from twisted.internet import epollreactor
from twisted.python import log


class LeanEPollReactor(epollreactor.EPollReactor):
    """EPollReactor whose doPoll calls each ready descriptor's handler without callWithLogger."""

    def doPoll(self, timeout):  # noqa: N802 - Twisted's name
        if timeout is None:
            timeout = -1  # wait until something is ready
        try:
            events = self._poller.poll(timeout, len(self._selectables))
        except OSError as exc:
            if exc.errno == errno.EINTR:
                return
            raise
        handle = self._doReadOrWrite
        selectables = self._selectables
        for fd, event in events:
            selectable = selectables.get(fd)
            if selectable is None:
                continue
            try:
                handle(selectable, fd, event)
            except KeyboardInterrupt:
                raise
            except BaseException:  # noqa: BLE001 - as callWithLogger: log it and go on
                log.err(None, f"error handling an event of {selectable!r}")

    doIteration = doPoll  # noqa: N815 - Twisted's name


def install():
    """Install and return a LeanEPollReactor as the process's reactor (before anything
    imports twisted.internet.reactor); Twisted's own epoll reactor if this Twisted's has
    changed the insides LeanEPollReactor relies on."""
    from twisted.internet.main import installReactor
    reactor = LeanEPollReactor()
    if not all(hasattr(reactor, name) for name in ("_poller", "_selectables",
                                                    "_doReadOrWrite")):
        reactor = epollreactor.EPollReactor()
    installReactor(reactor)
    return reactor
