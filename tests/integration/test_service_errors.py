"""Every documented error of the "Web Services" listener, and abends that must not hurt the
region."""

import http.client
import json
import threading
from decimal import Decimal

import pytest

from esrt.client import Client, ServiceError

from conftest import Region, scrape_metrics, start_cblapp01_region, wait_for


@pytest.fixture
def region(node, srv01_car, tst_car):
    region = start_cblapp01_region(node, srv01_car, extra=("--env", "X=1"))
    node.esrt("deploy", str(tst_car), "--server", region.name)
    return region


def raw(region, method, path, body=b"", headers=None):
    host, port = region.url[len("http://"):].rsplit(":", 1)
    connection = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, json.loads(response.read() or b"null")
    finally:
        connection.close()


def test_inputs_are_converted_both_ways(region):
    with Client(region.url) as client:
        reply = client.call("tst.ECHOPARM", {"LK-IN-NAME": "ADA", "LK-IN-AMOUNT": Decimal("-12.50"),
                                             "LK-IN-ITEMS": {"LK-ITEM": [1, 2, 3]}})
    assert reply == {"LK-OUT-GREETING": "HELLO ADA", "LK-OUT-TOTAL": Decimal("-6.50")}


def test_missing_inputs_are_initialised(region):
    with Client(region.url) as client:
        assert client.call("tst.ECHOPARM", {}) == {"LK-OUT-GREETING": "HELLO",
                                                   "LK-OUT-TOTAL": Decimal("0.00")}


@pytest.mark.parametrize("body, code", [
    ({"LK-IN-NAME": "ABCDEFGHIJK"}, "too_long"),
    ({"LK-IN-NAME": 5}, "wrong_type"),
    ({"LK-IN-AMOUNT": "12"}, "wrong_type"),
    ({"LK-IN-AMOUNT": 1.005}, "too_precise"),
    ({"LK-IN-AMOUNT": 123456}, "out_of_range"),
    ({"LK-IN-ITEMS": {"LK-ITEM": [-1]}}, "out_of_range"),
    ({"LK-IN-ITEMS": {"LK-ITEM": [1, 2, 3, 4]}}, "too_long"),
    ({"LK-NOPE": 1}, "unknown_parameter"),
    ({"LK-OUT-TOTAL": 1}, "not_input"),
])
def test_bad_values_get_400_naming_the_field(region, body, code):
    status, reply = raw(region, "POST", "/services/tst/ECHOPARM", json.dumps(body).encode())
    assert status == 400
    assert reply["error"]["code"] == code
    assert list(body)[0] in reply["error"]["message"]


def test_a_parameter_name_no_text_can_hold_gets_400_and_kills_no_sep(node, region):
    """A lone surrogate is valid JSON but no UTF-8: quoted in the error, it used to fail the
    SEP's reply frame, so the SEP died with the whole batch."""
    status, reply = raw(region, "POST", "/services/tst/ECHOPARM", b'{"\\ud800x": 1}')
    assert status == 400 and reply["error"]["code"] == "unknown_parameter"
    assert "\\ud800x" in reply["error"]["message"]
    with Client(region.url) as client:
        assert client.call("tst.ECHOPARM", {"LK-IN-NAME": "ADA"})["LK-OUT-GREETING"]
    assert "ESSI1700W" not in (node.home / "servers" / region.name / "logs" / "console.log"
                               ).read_text()


@pytest.mark.parametrize("body", [b"{", b"[1, 2]", b"\"text\"", b"{\"a\": NaN}", b"\xff\xfe"])
def test_bad_json_gets_400(region, body):
    status, reply = raw(region, "POST", "/services/tst/ECHOPARM", body)
    assert status == 400 and reply["error"]["code"] == "bad_json"


def test_unknown_service_wrong_method_and_oversize(region):
    status, reply = raw(region, "POST", "/services/srv01/NOPE", b"{}")
    assert status == 404 and reply["error"]["code"] == "unknown_service"
    assert "srv01.CBLAPP01" in reply["error"]["message"]
    status, reply = raw(region, "POST", "/services/nopkg/X", b"{}")
    assert status == 404
    status, reply = raw(region, "GET", "/services/srv01/CBLAPP01")
    assert status == 405 and "error" in reply
    status, reply = raw(region, "POST", "/services/srv01/CBLAPP01", b" " * (2 * 1024 * 1024))
    assert status == 413 and reply["error"]["code"] == "too_large"


@pytest.mark.parametrize("mode, cause", [("STOPRUN", "STOP RUN"), ("MISSING", "NOSUCHPROGRAM"),
                                         ("CRASH", "SIGSEGV")])
def test_an_abend_answers_the_caller_and_the_region_keeps_serving(region, mode, cause):
    with Client(region.url) as client:
        before = client.call("srv01.CBLAPP01")["LK-COUNTER"]
        with pytest.raises(ServiceError) as failure:
            client.call("tst.ABENDER", {"LK-MODE": mode})
        assert failure.value.status == 500 and failure.value.code == "abend"
        assert "ABENDER" in failure.value.message and cause in failure.value.message
        after = [client.call("srv01.CBLAPP01")["LK-COUNTER"] for _ in range(4)]
        assert client.call("tst.ABENDER", {"LK-MODE": "FINE"}) == {"LK-RESULT": "OK"}
    assert after == [before + 1, before + 2, before + 3, before + 4]


def test_openapi_describes_deployed_services(region):
    status, document = raw(region, "GET", "/openapi.json")
    assert status == 200
    assert "/services/srv01/CBLAPP01" in document["paths"]
    assert "/services/tst/ECHOPARM" in document["paths"]


def test_an_abend_among_calls_that_share_a_sep_hurts_only_its_own_caller(node, srv01_car,
                                                                         tst_car):
    # One SEP and many callers: the SEP gets the waiting calls in batches, so abends land in
    # the middle of batches. Each abending call must be answered with its abend, and every
    # CBLAPP01 call with its own, committed, counter.
    region = start_cblapp01_region(node, srv01_car, name="ESBATCH", seps=1)
    node.esrt("deploy", str(tst_car), "--server", region.name)
    outcomes = []

    def caller(index):
        with Client(region.url) as client:
            for turn in range(12):
                if (index + turn) % 9 == 0:
                    try:
                        client.call("tst.ABENDER", {"LK-MODE": "CRASH"})
                        outcomes.append(("abender", "answered"))
                    except ServiceError as exc:
                        outcomes.append(("abender", exc.code))
                else:
                    outcomes.append(("counter", client.call("srv01.CBLAPP01")["LK-COUNTER"]))

    threads = [threading.Thread(target=caller, args=(index,)) for index in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    abends = [outcome for kind, outcome in outcomes if kind == "abender"]
    counters = sorted(outcome for kind, outcome in outcomes if kind == "counter")
    assert abends and set(abends) == {"abend"}
    # The first call after INITFILE1 reads 0; no counter is lost or given twice.
    assert counters == list(range(len(counters)))
    with Client(region.url) as client:
        assert client.call("srv01.CBLAPP01")["LK-COUNTER"] == len(counters)


def test_a_call_that_hangs_inside_a_batch_times_out_alone(node, srv01_car, tst_car, tmp_path):
    # One SEP, a 2 s request timeout. A first hung call keeps the SEP busy while others queue;
    # they then reach the SEP together, as a batch, with one more hung call among them. The
    # SEP's own per-call timer ends it (the region's timer covers the whole batch); the calls
    # of the batch run again alone: the good ones answer, the hung one times out.
    name = "ESHANG"
    node.esrt("server", "create", name, "--seps", "1", "--listener", "Web Services=127.0.0.1:*",
              "--env", "DD_APPFILE01=APPFILE01")
    definition = json.loads(node.esrt("server", "export", name).stdout)
    definition["request_timeout"] = 2
    region_file = tmp_path / "hang.json"
    region_file.write_text(json.dumps(definition))
    node.esrt("server", "import", str(region_file))
    node.esrt("casstart", "-r", name, "--wait")
    node.esrt("deploy", str(tst_car), "--server", name)
    url = Region(node, name, node.region_status(name)).url
    outcomes = {}

    def call(label, mode):
        with Client(url) as client:
            try:
                outcomes[label] = client.call("tst.ABENDER", {"LK-MODE": mode})["LK-RESULT"]
            except ServiceError as exc:
                outcomes[label] = exc.code

    first = threading.Thread(target=call, args=("first", "LOOP"))
    first.start()
    # The first call must reach the idle SEP before the others queue; it then holds it for
    # the 2 s of its timeout.
    wait_for(lambda: scrape_metrics(url)[1].get(("esrt_seps", (("state", "Busy"),))) == 1,
             "the first call to keep the SEP busy")
    others = [threading.Thread(target=call, args=(label, mode)) for label, mode in
              (("a", "FINE"), ("b", "FINE"), ("hung", "LOOP"), ("c", "FINE"))]
    for thread in others:
        thread.start()
    for thread in [first] + others:
        thread.join()
    assert outcomes == {"first": "timeout", "a": "OK", "b": "OK", "hung": "timeout", "c": "OK"}
    console = (node.home / "servers" / name / "logs" / "console.log").read_text()
    assert "ran longer than request_timeout (2 s); each unanswered call runs again alone" \
        in console
