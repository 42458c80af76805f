"""mfds's route table: one entry per operation answers requests and writes the OpenAPI paths.

Driven through MfdsApi.handle over a real repository in a temporary home, as the web layer
calls it, with no sockets."""

import pytest

from esrt.home import Home
from esrt.mfds.api import MfdsApi
from esrt.mfds.repository import Repository


@pytest.fixture
def api(tmp_path):
    home = Home(tmp_path / "home").ensure()
    repository = Repository(home.repository)
    try:
        yield MfdsApi(repository, home)
    finally:
        repository.close()


def error_of(answer):
    return answer.status, answer.body["error"]["message"]


def test_documented_operations_are_exactly_the_routed_ones(api):
    documented = {(method.upper(), path) for path, entry in api.table.openapi_paths().items()
                  for method in entry if method != "parameters"}
    routed = {(route.method, route.template) for route in api.table.routes}
    assert documented == routed
    assert len(routed) == len(api.table.routes), "two routes for one operation"


def test_path_parameters_are_described(api):
    for path, entry in api.table.openapi_paths().items():
        names = {part[1:-1] for part in path.split("/") if part.startswith("{")}
        assert {p["name"] for p in entry.get("parameters", [])} == names, path
        assert all(p["description"] for p in entry.get("parameters", []))


def test_a_wrong_method_names_the_right_ones(api):
    status, message = error_of(api.handle("PATCH", "/api/servers"))
    assert status == 405
    assert message == "PATCH is not allowed on /api/servers: use GET or POST"


def test_an_unknown_leaf_lists_its_siblings(api):
    status, message = error_of(api.handle("GET", "/api/servers/ESSRV01/colour"))
    assert status == 404
    assert message.startswith("no such path /api/servers/ESSRV01/colour: "
                              "/api/servers/{name}/ has status, start, stop, packages")
    status, message = error_of(api.handle("GET", "/api/nothing"))
    assert status == 404 and "see /api/health, /api/openapi.json, /api/servers" in message
    status, message = error_of(api.handle("GET", "/elsewhere"))
    assert status == 404 and "the API lives under /api/" in message


def test_routes_reach_their_resources(api):
    created = api.handle("POST", "/api/servers", body=b'{"name": "ESSRV01", "seps": 3}')
    assert created.status == 201 and created.body["definition"]["seps"] == 3
    listed = api.handle("GET", "/api/servers")
    assert [s["name"] for s in listed.body["servers"]] == ["ESSRV01"]
    assert api.handle("GET", "/api/servers/ESSRV01%20X").status == 404
    assert api.handle("GET", "/api/session").body == {"name": "anonymous", "role": "admin",
                                                     "via": "open"}
    assert api.handle("DELETE", "/api/servers/ESSRV01").status == 204
    assert api.handle("GET", "/api/servers/ESSRV01").status == 404


def test_only_health_is_public(api):
    assert api.is_public("/api/health")
    assert not api.is_public("/api/servers")
    assert not api.is_public("/api/openapi.json")
    assert not api.is_public("/not-api")
