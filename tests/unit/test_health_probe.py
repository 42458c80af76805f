"""The cluster monitor's health probe: a region that answers is alive; one that is starting
(a standby being activated) is not failed; one that answers "unavailable" once started is."""

import http.server
import json
import threading

import pytest

from esrt.region.monitor import probe_health


@pytest.fixture
def health_server():
    """A listener answering GET /health with the status and body the test sets."""
    answer = {"code": 200, "body": {"status": "ok", "detail": "Started"}}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = json.dumps(answer["body"]).encode()
            self.send_response(answer["code"])
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    status = {"listeners": [{"CN": "Web Services", "mfListenerStatus": "Started",
                             "address": "127.0.0.1:%d" % server.server_port,
                             "conversation": "web-services"}]}
    try:
        yield answer, status
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_a_healthy_region_is_ok(health_server):
    answer, status = health_server
    assert probe_health(status, 2.0)[0] is True


def test_a_region_starting_its_seps_after_activation_is_not_failed(health_server):
    answer, status = health_server
    answer.update(code=503, body={"status": "unavailable", "detail": "Starting"})
    assert probe_health(status, 2.0)[0] is True


def test_a_started_region_that_cannot_serve_is_failed(health_server):
    answer, status = health_server
    answer.update(code=503, body={"status": "unavailable", "detail": "Started"})
    ok, detail = probe_health(status, 2.0)
    assert ok is False and "HTTP 503" in detail
