"""A region's heartbeat in its PostgreSQL store: the row that makes it a member of its server
(esrt.node.members), written every BEAT seconds and deleted when the region stops.

The database is reached from a worker thread, never from the reactor: a store that hangs must
not hold the region's calls. One heartbeat at a time; a store that does not answer is said once
in the console log, and again once it answers.
"""

from twisted.internet import defer, task, threads

from esrt.node.members import BEAT, MemberStore, StoreUnavailable, member_name


def listener_addresses(snapshots):
    """What the other members and the admin UI need of the region's listeners."""
    return [{"name": snapshot["CN"], "address": snapshot["address"],
             "conversation": snapshot["conversation"], "tls": bool(snapshot.get("tls"))}
            for snapshot in snapshots]


def _summary(members):
    # What the status shows of the members: worth a new status when it changes (ages are not).
    return [(member["member"], member["state"], member["lost"], member["listeners"])
            for member in members or ()]


class Membership:
    """Heartbeats of one region; `members` is what the last one read of every member."""

    # Seconds a stopping region waits for its row to be deleted.
    leave_timeout = 3.0

    def __init__(self, reactor, conninfo, server, home_root, describe, console, on_change):
        """`describe()` returns (state, pid, listener snapshots, started epoch) as of now;
        on_change() is called when a member comes, goes, changes state or is lost, and when
        the store is lost or found again."""
        self.reactor = reactor
        self.server = server
        self.member = member_name(home_root)
        self.describe = describe
        self.console = console
        self.on_change = on_change
        self.store = MemberStore(conninfo, application=f"esrt region {server}")
        self.members = None
        self.problem = None
        self._loop = None
        self._beating = None

    def start(self):
        """Beat now and every BEAT seconds."""
        self._loop = task.LoopingCall(self._beat)
        self._loop.clock = self.reactor
        self._loop.start(BEAT, now=True)

    def _beat(self):
        if self._beating is not None:
            return  # the last one still waits for the store
        try:
            state, pid, snapshots, started = self.describe()
        except Exception as exc:  # noqa: BLE001 - a bug here must not end the heartbeats
            self.console.log("ESCS5007E", what="the heartbeat", problem=repr(exc))
            return
        beating = threads.deferToThreadPool(
            self.reactor, self.reactor.getThreadPool(), self.store.beat, self.server,
            self.member, state, pid, listener_addresses(snapshots), started)
        self._beating = beating
        beating.addCallbacks(self._heard, self._failed)
        beating.addBoth(self._done)

    def _heard(self, members):
        before = _summary(self.members)
        self.members = members
        if self.problem is not None:
            self.problem = None
            self.console.log("ESCS5025I")
            self.on_change()
        elif _summary(members) != before:
            self.on_change()

    def _failed(self, failure):
        if not failure.check(StoreUnavailable):
            self.console.log("ESCS5007E", what="the heartbeat", problem=failure.getTraceback())
            return
        problem = failure.getErrorMessage()
        if self.problem is None:
            self.console.log("ESCS5024W", problem=problem)
            self.problem = problem
            self.on_change()

    def _done(self, result):
        self._beating = None
        return result

    async def stop(self):
        """Stop beating and delete this member's row; never fails, and gives up after
        leave_timeout (the row then ages into "lost" and is forgotten in time)."""
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        pool = self.reactor.getThreadPool()
        leaving = defer.Deferred()
        if self._beating is not None:
            # After the heartbeat in flight, or it would write the row again.
            self._beating.addBoth(lambda _: leaving.callback(None))
        else:
            leaving.callback(None)
        leaving.addCallback(lambda _: threads.deferToThreadPool(
            self.reactor, pool, self.store.leave, self.server, self.member))
        leaving.addTimeout(self.leave_timeout, self.reactor)
        try:
            await leaving
        except Exception:  # noqa: BLE001 - leaving is a courtesy: stopping goes on regardless
            pass
        finally:
            pool.callInThread(self.store.close)
