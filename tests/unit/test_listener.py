"""A region listener's life cycle (esrt.region.http.Listener) on a fake reactor: binding,
waiting for an address that is not on the node yet, binding when it appears, failing on a
port in use, and stopping in each state. No sockets, no sleeps: time moves with advance().
"""

import errno

from twisted.internet import defer, error
from twisted.internet.testing import MemoryReactorClock

from esrt.messages import format_message
from esrt.region.http import Listener
from esrt.states import ListenerStatus as Status

CONFIG = {"name": "Web Services", "address": "10.0.0.1:9003", "conversation": "web-services"}


class Console:
    """Records what the listener writes to the console log."""

    def __init__(self):
        self.ids = []

    def log(self, message_id, **fields):
        self.ids.append(message_id)
        return format_message(message_id, **fields)


class Port:
    def __init__(self, host, port):
        self.host, self.port, self.listening = host, port, True

    def getHost(self):  # noqa: N802 - Twisted's IListeningPort
        return self

    def stopListening(self):  # noqa: N802 - Twisted's IListeningPort
        self.listening = False
        return defer.succeed(None)


class Node(MemoryReactorClock):
    """A reactor whose listenTCP sees the node's addresses: binding an address not on the node
    fails as the kernel says it (EADDRNOTAVAIL), a port in use with EADDRINUSE."""

    def __init__(self, addresses=("10.0.0.1",), ports_in_use=()):
        super().__init__()
        self.addresses = set(addresses)
        self.ports_in_use = set(ports_in_use)
        self.binds = []

    def listenTCP(self, port, factory, backlog=50, interface=""):  # noqa: N802 - Twisted's
        self.binds.append((interface, port))
        if interface not in self.addresses:
            raise error.CannotListenError(interface, port, OSError(
                errno.EADDRNOTAVAIL, "Cannot assign requested address"))
        if port in self.ports_in_use:
            raise error.CannotListenError(interface, port, OSError(
                errno.EADDRINUSE, "Address already in use"))
        return Port(interface, port)


def listener(node, config=CONFIG):
    console = Console()
    states = []
    made = Listener(node, config, factory=object(), server_name="ESSRV01", console=console,
                    on_change=lambda: states.append(made.state))
    return made, console, states


def test_an_address_on_the_node_is_bound_at_once():
    node = Node()
    made, console, states = listener(node)
    assert made.start() is True
    assert states == [Status.STARTING, Status.STARTED]
    assert made.address == "10.0.0.1:9003" and made.problem is None
    assert console.ids == ["ESCS5004I"]
    assert made.snapshot()["mfListenerStatus"] == "Started"


def test_a_missing_address_is_waited_for_and_bound_when_it_appears():
    node = Node(addresses=())
    made, console, states = listener(node)
    assert made.start() is True
    assert made.state == Status.WAITING
    assert "address not on this" in made.problem and "10.0.0.1:9003" in made.problem
    for _ in range(5):
        node.advance(Listener.retry_interval)
    assert made.state == Status.WAITING
    assert len(node.binds) == 6
    assert console.ids == ["ESCS5008W"]   # said once, not at every retry
    node.addresses.add("10.0.0.1")         # the cluster moves the address to this node
    node.advance(Listener.retry_interval)
    assert states == [Status.STARTING, Status.WAITING, Status.STARTED]
    assert made.address == "10.0.0.1:9003" and made.problem is None
    assert console.ids == ["ESCS5008W", "ESCS5004I"]
    node.advance(10 * Listener.retry_interval)
    assert len(node.binds) == 7            # no retry once bound


def test_a_port_in_use_fails_with_a_message_that_says_so():
    node = Node(ports_in_use={9003})
    made, console, states = listener(node)
    assert made.start() is False
    assert states == [Status.STARTING, Status.FAILED]
    assert "address already in use" in made.problem and "Web Services" in made.problem
    assert console.ids == ["ESCS5005E"]
    node.advance(10 * Listener.retry_interval)
    assert len(node.binds) == 1            # a failure is not retried


def test_the_port_is_taken_while_waiting_for_the_address():
    node = Node(addresses=(), ports_in_use={9003})
    made, _, states = listener(node)
    made.start()
    node.addresses.add("10.0.0.1")
    node.advance(Listener.retry_interval)
    assert states == [Status.STARTING, Status.WAITING, Status.FAILED]
    assert "address already in use" in made.problem


def test_stopping_while_waiting_cancels_the_retries():
    node = Node(addresses=())
    made, console, states = listener(node)
    made.start()
    stopped = made.stop()
    assert stopped.called
    assert states == [Status.STARTING, Status.WAITING, Status.STOPPED]
    node.addresses.add("10.0.0.1")
    node.advance(10 * Listener.retry_interval)
    assert len(node.binds) == 1 and made.state == Status.STOPPED
    assert not node.getDelayedCalls()


def test_stopping_a_started_listener_stops_listening_once():
    node = Node()
    made, console, states = listener(node)
    made.start()
    port = made._port
    assert made.stop().called
    assert not port.listening
    assert states[-1] == Status.STOPPED and console.ids[-1] == "ESCS5006I"
    assert made.stop().called               # stopping again is harmless
    assert states.count(Status.STOPPED) == 1


def test_any_address_binds_every_interface():
    node = Node(addresses=("",))
    made, _, _ = listener(node, dict(CONFIG, address="*:9003"))
    assert made.start() is True
    assert node.binds == [("", 9003)]
