"""esrt.region.deadlines: a connection's head and idle time limits on a fake clock."""

from twisted.internet.task import Clock

from esrt.region.deadlines import ConnectionClock


class Limits:
    head_timeout = 5
    idle_timeout = 60


def clock():
    reactor, expired = Clock(), []
    return reactor, ConnectionClock(reactor, expired.append), expired


def test_a_head_is_timed_from_its_first_byte_whatever_arrives_after():
    reactor, watch, expired = clock()
    watch.follow(False, False, Limits)  # idle: 60 s
    reactor.advance(10)
    watch.follow(True, False, Limits)  # the first byte of a head: 5 s from now
    for _ in range(4):
        reactor.advance(1)
        watch.follow(True, False, Limits)  # more bytes, still not whole
    assert expired == []
    reactor.advance(1.01)
    assert expired == ["head"]
    assert len(reactor.getDelayedCalls()) == 0


def test_activity_moves_the_idle_limit_and_owed_answers_stop_it():
    reactor, watch, expired = clock()
    for _ in range(10):
        watch.follow(False, False, Limits)
        reactor.advance(50)  # a request every 50 s: never idle for 60
    assert expired == []
    assert len(reactor.getDelayedCalls()) == 1  # one timer, moved, not one per request
    watch.follow(False, True, Limits)  # a call is running: no limit
    reactor.advance(1000)
    assert expired == []
    watch.follow(False, False, Limits)
    reactor.advance(60.01)
    assert expired == ["idle"]


def test_stop_leaves_no_timer():
    reactor, watch, expired = clock()
    watch.follow(True, False, Limits)
    watch.stop()
    assert reactor.getDelayedCalls() == []
    reactor.advance(100)
    assert expired == []
