"""A client of several listeners serving the same services (regions on one PostgreSQL store,
or the same region's listeners on two nodes): `Client(["http://a:9003", "http://b:9003"])`.

Calls go to one listener until it fails; a call that meets no answer, or a 503 (no SEP free,
the region stopping or standing by; 502 and 504 from a proxy), moves on to the next listener
at once and runs there
with the same idempotency key, generated when the caller gave none. A call that committed on
the first listener before its reply was lost therefore returns that reply from the next one
(the regions share their stored replies), instead of running twice. Once every listener has
failed the call, it fails, unless `retry_for` seconds allow more rounds (with the pauses of
esrt.client.common).
"""

import time
import uuid

from esrt.client.common import RETRIED_STATUSES, ConnectionFailed, ServiceError, pauses


class FailoverClient:
    """Calls services through the first listener of `urls` that answers (see the module)."""

    def __init__(self, urls, make_client, *args, **options):
        """`make_client(url, *args, **options)` makes the client of one listener
        (esrt.client.Client: HTTP or binary, by the URL's scheme; the options are its)."""
        urls = list(urls)
        if not urls:
            raise ValueError("give at least one listener URL")
        self.urls = urls
        self._clients = [make_client(url, *args, **options) for url in urls]
        self.current = 0

    @property
    def connected(self):
        """True while the listener calls go to has an open connection."""
        return self._clients[self.current].connected

    @property
    def url(self):
        """The listener calls go to now."""
        return self.urls[self.current]

    def call(self, service, params=None, idempotency_key=None, retry_for=None):
        """Call PACKAGE.PROGRAM as Client.call does, on the listener that answers."""
        key = idempotency_key or uuid.uuid4().hex
        deadline = time.monotonic() + (retry_for or 0)
        between_rounds = pauses()
        pause, failed = next(between_rounds), 0
        while True:
            try:
                return self._clients[self.current].call(service, params, key)
            except (ConnectionFailed, ServiceError) as exc:
                if isinstance(exc, ServiceError) and exc.status not in RETRIED_STATUSES:
                    raise  # the service's own answer: the same anywhere
                self._clients[self.current].close()
                self.current = (self.current + 1) % len(self._clients)
                failed += 1
                if failed % len(self._clients):
                    continue  # the next listener, at once
                if time.monotonic() + pause > deadline:
                    raise
            time.sleep(pause)
            pause = next(between_rounds)

    def close(self):
        for client in self._clients:
            client.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()
