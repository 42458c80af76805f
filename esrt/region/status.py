"""The region's status document: written to run/status.json and pushed to mfds.

The file is rewritten atomically on every life-cycle change (coalesced within one reactor turn)
and every `interval` seconds for the statistics. The same document is PUT to mfds at
/api/servers/NAME/status; mfds being down is normal in a cluster, so failures are ignored and
the next change or tick simply tries again.
"""

import io
import json
import time

from twisted.internet import defer, task
from twisted.web.client import FileBodyProducer, readBody
from twisted.web.http_headers import Headers

from esrt.home import write_json_atomic
from esrt.node.mfds_client import TOKEN_HEADER
from esrt.node.tls import mfds_agent
from esrt.states import ServerStatus


class StatusReporter:
    """Collects the status from the region, writes it and reports it."""

    interval = 5.0
    # A PUT to a hung mfds must not pile up: at most one is in flight, and it is abandoned
    # after this many seconds.
    put_timeout = 5.0

    def __init__(self, reactor, path, server, collect, mfds_url=None, token=None,
                 mfds_cert=None):
        """`collect()` returns the status document (a dict) as of now; `token` is the node
        token that lets a region report to an mfds that requires a login; `mfds_cert` the
        certificate file of an https:// mfds, which is trusted alone (esrt.node.tls)."""
        self.reactor = reactor
        self.token = token
        self.path = path
        self.server = server
        self.collect = collect
        self.mfds_url = mfds_url.rstrip("/") if mfds_url else None
        self._agent = mfds_agent(reactor, self.mfds_url, mfds_cert, self.put_timeout)
        self._pending = None
        self._loop = None
        self._put_in_flight = None
        self._put_again = False
        self.last = None

    def start(self):
        """Write now and then every `interval` seconds."""
        self._loop = task.LoopingCall(self.publish)
        self._loop.clock = self.reactor
        self._loop.start(self.interval, now=True)

    def stop(self):
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        if self._pending is not None and self._pending.active():
            self._pending.cancel()
        self._pending = None

    def changed(self):
        """Something changed: publish once at the end of this reactor turn."""
        if self._pending is None or not self._pending.active():
            self._pending = self.reactor.callLater(0, self.publish)

    def publish(self):
        """Write status.json and send it to mfds; return the document."""
        if self._pending is not None and self._pending.active():
            self._pending.cancel()
        self._pending = None
        document = self.collect()
        self.last = document
        try:
            write_json_atomic(self.path, document)
        except OSError:
            pass  # the run directory vanished (shared disk lost); mfds still hears from us
        self._put(document)
        return document

    def _put(self, document):
        if self._agent is None:
            return None
        if self._put_in_flight is not None:
            self._put_again = True
            return self._put_in_flight
        body = FileBodyProducer(io.BytesIO(json.dumps(document).encode()))
        url = f"{self.mfds_url}/api/servers/{self.server}/status".encode()
        headers = {b"content-type": [b"application/json"]}
        if self.token:
            headers[TOKEN_HEADER.lower().encode()] = [self.token.encode()]
        put = self._agent.request(b"PUT", url, Headers(headers), body)
        # Set before adding callbacks: a refused connection may fire `put` synchronously.
        self._put_in_flight = put
        put.addTimeout(self.put_timeout, self.reactor)
        put.addCallback(_discard_body)
        put.addErrback(lambda failure: None)
        put.addBoth(self._put_done)
        return put

    def _put_done(self, _):
        self._put_in_flight = None
        if self._put_again:
            self._put_again = False
            self._put(self.last)

    def flush(self):
        """Publish now; the Deferred fires once mfds answered (or gave up), never fails."""
        self.publish()
        return self._wait_puts()

    def _wait_puts(self):
        put = self._put_in_flight
        if put is None:
            return defer.succeed(None)
        waiter = defer.Deferred()

        def done(result):
            # _put_done ran first and may have sent the newer document: wait for that too.
            self._wait_puts().chainDeferred(waiter)
            return result

        put.addBoth(done)
        return waiter


def _discard_body(response):
    # Reading the body lets the HTTP/1.1 connection be reused or closed cleanly.
    return readBody(response).addErrback(lambda failure: None)


def server_status(explicit, listeners_started, seps_ready):
    """Derive mfServerStatus: an explicit Stopping/Stopped/Failed wins; else Started only when
    every listener is Started and every SEP is ready, Starting before that."""
    if explicit in (ServerStatus.STOPPING, ServerStatus.STOPPED, ServerStatus.FAILED):
        return explicit
    if explicit == ServerStatus.STARTED or (listeners_started and seps_ready):
        return ServerStatus.STARTED
    return ServerStatus.STARTING


def iso_time(epoch):
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(epoch))
