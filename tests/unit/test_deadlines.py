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


class Transport:
    """Enough of a TCP transport for a listener's connection, in memory."""

    def __init__(self):
        from twisted.internet.testing import StringTransport
        self.inner = StringTransport()
        self.reading = True

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def setTcpNoDelay(self, enabled):
        pass

    def pauseProducing(self):
        self.reading = False

    def resumeProducing(self):
        self.reading = True


class Slow:
    """Answers nothing by itself: the test finishes the requests one by one."""

    def __init__(self):
        self.requests = []

    def render(self, request):
        from esrt.region.httpserver import NOT_DONE_YET
        self.requests.append(request)
        return NOT_DONE_YET

    def refused(self, code):
        pass


def http_connection(**limits):
    from esrt.region.httpserver import ServicesFactory
    reactor, root = Clock(), Slow()
    factory = ServicesFactory(root, 1024, reactor, limits=limits)
    channel = factory.buildProtocol(None)
    transport = Transport()
    channel.makeConnection(transport)
    return reactor, root, channel, transport


REQUEST = b"POST /services/a/B HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}"


def test_pipelined_requests_waiting_on_the_region_are_not_timed_out():
    reactor, root, channel, transport = http_connection(max_pipelined=2, head_timeout=5)
    channel.dataReceived(REQUEST * 12)
    answered = 0
    while answered < 12:
        reactor.advance(3)  # slower than head_timeout per pair of requests
        assert root.requests, "a whole request was left unread"
        root.requests.pop(0).finish_json(200, b"{}")
        answered += 1
        reactor.advance(0)  # the channel parses again on the next turn
    assert transport.value().count(b"HTTP/1.1 200 ") == 12
    assert b" 408 " not in transport.value()


def test_max_pipelined_1_still_reads_the_next_request():
    reactor, root, channel, transport = http_connection(max_pipelined=1)
    channel.dataReceived(REQUEST * 3)
    for _ in range(3):
        reactor.advance(0)
        root.requests.pop(0).finish_json(200, b"{}")
    reactor.advance(0)
    assert transport.value().count(b"HTTP/1.1 200 ") == 3


def test_a_head_sent_slowly_gets_408():
    reactor, root, channel, transport = http_connection(head_timeout=5)
    for byte in REQUEST[:30]:
        channel.dataReceived(bytes([byte]))
        reactor.advance(0.2)  # 6 s for 30 bytes
    assert transport.value().startswith(b"HTTP/1.1 408 ")
    assert b"head_timeout" in transport.value()
