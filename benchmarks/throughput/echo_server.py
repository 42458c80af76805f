"""A bare Twisted server of the "esrt" framing that does no work: the transport limit.

    python -m benchmarks.throughput.echo_server [PORT]

Each request frame is split and parsed with esrt.wire, exactly as the region's binary listener
does, and answered at once with a valid 200 reply frame carrying a fixed JSON body shaped like
NULLSVC's output. No dispatch, no SEP, no COBOL: what is left is Twisted's reactor, TCP and the
framing code, so esrt's binary listener can be compared with the most it could reach on the
same core. Listens on 127.0.0.1 (port 0 by default: a free one) and prints
``listening on PORT`` on stdout once it accepts connections.
"""

import sys

from twisted.internet import protocol

from esrt import wire

# What NULLSVC answers for the benchmark's request, so reply sizes match the real service's.
REPLY_BODY = b'{"LK-OUT-NAME": "bench", "LK-OUT-AMOUNT": 42}'


class EchoWire(protocol.Protocol):
    """One connection: every whole request frame gets one 200 reply frame, in order."""

    def connectionMade(self):
        self.decoder = wire.FrameDecoder(1024 * 1024 + wire.REQUEST_OVERHEAD)

    def dataReceived(self, data):
        try:
            payloads = self.decoder.feed(data)
            replies = [wire.encode_reply(wire.parse_request(p).request_id, 200, 0, REPLY_BODY)
                       for p in payloads]
        except wire.FrameError as exc:
            self.transport.write(wire.encode_reply(exc.request_id, exc.status, 0,
                                                   b'{"error": {"code": "bad_frame"}}'))
            self.transport.loseConnection()
            return
        if replies:
            self.transport.write(b"".join(replies))


def main(argv=None):
    """Listen, print the port, run the reactor until SIGTERM/SIGINT."""
    from twisted.internet import reactor
    args = sys.argv[1:] if argv is None else argv
    port = int(args[0]) if args else 0
    factory = protocol.Factory.forProtocol(EchoWire)
    listening = reactor.listenTCP(port, factory, interface="127.0.0.1")
    print(f"listening on {listening.getHost().port}", flush=True)
    reactor.run()


if __name__ == "__main__":
    main()
