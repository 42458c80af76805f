"""The region's reactor (esrt.region.reactor): Twisted's epoll reactor without a log context
per event must still serve every connection, and a handler that raises must cost only its
own connection, logged, as with Twisted's own reactor."""

import subprocess
import sys
import textwrap

SERVER = textwrap.dedent("""
    import os, socket, sys, threading
    from esrt.region.reactor import LeanEPollReactor, install
    reactor = install()
    from twisted.internet import error, protocol
    from twisted.python import log
    log.startLogging(sys.stderr, setStdout=False)

    class Echo(protocol.Protocol):
        def dataReceived(self, data):
            self.transport.write(data)

    lost = []

    class Broken(protocol.Protocol):
        def connectionLost(self, reason):
            lost.append(reason)
            raise RuntimeError("a bug in connectionLost")

    def stop_once_all_are_lost():
        if len(lost) < 4:
            reactor.callLater(0.01, stop_once_all_are_lost)
        else:
            reactor.stop()

    class BrokenPipeReader:
        # A reader whose connectionLost raises past the reactor's own handling.

        def __init__(self, fd):
            self.fd = fd

        def fileno(self):
            return self.fd

        def logPrefix(self):
            return "broken pipe reader"

        def doRead(self):
            if not os.read(self.fd, 100):
                return error.ConnectionDone()

        def connectionLost(self, reason):
            os.close(self.fd)
            lost.append(reason)
            raise RuntimeError("a bug in a pipe's connectionLost")

    read_end, write_end = os.pipe()
    reactor.addReader(BrokenPipeReader(read_end))
    os.close(write_end)

    echo = reactor.listenTCP(0, protocol.Factory.forProtocol(Echo), interface="127.0.0.1")
    broken = reactor.listenTCP(0, protocol.Factory.forProtocol(Broken), interface="127.0.0.1")

    def client():
        answers = []
        for _ in range(3):
            with socket.create_connection(("127.0.0.1", broken.getHost().port)) as sock:
                pass  # closing it makes Broken.connectionLost raise
            with socket.create_connection(("127.0.0.1", echo.getHost().port)) as sock:
                sock.sendall(b"ping")
                answers.append(sock.recv(4))
        print("answers", answers, type(reactor) is LeanEPollReactor, flush=True)
        reactor.callFromThread(stop_once_all_are_lost)

    reactor.callWhenRunning(threading.Thread(target=client).start)
    reactor.run()
""")


def test_the_lean_reactor_serves_and_survives_a_handler_that_raises():
    done = subprocess.run([sys.executable, "-c", SERVER], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    assert "answers [b'ping', b'ping', b'ping'] True" in done.stdout
    assert done.stderr.count("RuntimeError: a bug in connectionLost") == 3
    # Past the reactor's own handling: logged by the lean reactor, which goes on.
    assert "RuntimeError: a bug in a pipe's connectionLost" in done.stderr
    assert "error handling an event of" in done.stderr
