"""Account management through mfds's API and Users page, with a real mfds process: who may do
it, the last-admin rule, per-field validation errors, the audit log and the OpenAPI document."""

import json
import re
from urllib.parse import urlencode

from esrt.mfds.daemon import start_daemon
from test_mfds_auth import (PASSWORDS, basic, call, error_of, home, login,  # noqa: F401
                            secured)

JSON = {"Content-Type": "application/json"}
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def api(info, method, path, body=None, who="alice", password=None):
    """An API call as `who` (HTTP Basic): (status, decoded JSON body or None)."""
    payload = json.dumps(body) if body is not None else None
    status, _, data = call(info, method, path, payload, {**basic(who, password), **JSON})
    return status, (json.loads(data) if data else None)


def audit_records(home):  # noqa: F811 - `home` is the imported fixture's value
    return [json.loads(line) for line in (home.root / "audit.log").read_text().splitlines()]


def test_an_admin_adds_changes_and_deletes_accounts(secured, home):  # noqa: F811
    status, user = api(secured, "POST", "/api/users",
                       {"name": "bob", "password": "bob-secret-1", "role": "operator"})
    assert status == 201
    assert user["name"] == "bob" and user["role"] == "operator"
    assert user["created"] and user["last_login"] is None
    assert "hash" not in user
    status, _ = api(secured, "GET", "/api/servers", who="bob", password="bob-secret-1")
    assert status == 200

    # Role change takes effect on bob's next request.
    status, _ = api(secured, "POST", "/api/servers/ESSRV01/stop", who="bob",
                    password="bob-secret-1")
    assert status != 403
    status, user = api(secured, "PUT", "/api/users/bob", {"role": "readonly"})
    assert status == 200 and user["role"] == "readonly"
    status, body = api(secured, "POST", "/api/servers/ESSRV01/stop", who="bob",
                       password="bob-secret-1")
    assert status == 403 and "bob (role readonly)" in body["error"]["message"]

    # A reset password replaces the old one and logs bob's browser sessions out.
    cookie, _ = login(secured, "bob", "bob-secret-1")
    status, _, _ = call(secured, "GET", "/api/servers", headers={"Cookie": cookie})
    assert status == 200
    status, user = api(secured, "GET", "/api/users/bob")
    assert status == 200 and user["last_login"]
    status, _ = api(secured, "PUT", "/api/users/bob", {"password": "bob-secret-2"})
    assert status == 200
    status, _, _ = call(secured, "GET", "/api/servers", headers={"Cookie": cookie})
    assert status == 401
    assert api(secured, "GET", "/api/servers", who="bob", password="bob-secret-1")[0] == 401
    assert api(secured, "GET", "/api/servers", who="bob", password="bob-secret-2")[0] == 200

    status, body = api(secured, "DELETE", "/api/users/bob")
    assert status == 204 and body is None
    assert api(secured, "GET", "/api/servers", who="bob", password="bob-secret-2")[0] == 401
    status, body = api(secured, "GET", "/api/users")
    assert [u["name"] for u in body["users"]] == ["alice", "oscar", "rita"]

    done = [(r["action"], r["target"], r["outcome"]) for r in audit_records(home)
            if r["user"] == "alice"]
    for entry in (("add user", "bob", "ok"), ("change role", "bob", "ok"),
                  ("reset password", "bob", "ok"), ("delete user", "bob", "ok")):
        assert entry in done, entry
    assert not any("bob-secret" in line for line in
                   (home.root / "audit.log").read_text().splitlines())


def test_bad_account_requests_name_the_bad_fields(secured):  # noqa: F811 - the imported fixture
    status, body = api(secured, "POST", "/api/users",
                       {"name": "1bad name", "password": "short", "role": "boss"})
    assert status == 400 and body["error"]["code"] == "invalid"
    fields = body["error"]["fields"]
    assert "is not valid" in fields["name"]
    assert "at least 8 characters" in fields["password"]
    assert "use one of readonly, operator, admin" in fields["role"]
    status, body = api(secured, "POST", "/api/users",
                       {"name": "rita", "password": "whatever-1", "role": "admin"})
    assert status == 409 and "already exists" in body["error"]["fields"]["name"]
    assert api(secured, "GET", "/api/users", who="rita")[1]["error"]["code"] == "forbidden"
    status, body = api(secured, "POST", "/api/users", {"name": "x1", "password": "long-enough",
                                                      "role": "readonly", "hash": "$argon2"})
    assert status == 400 and "hash" in body["error"]["message"]
    status, body = api(secured, "PUT", "/api/users/rita", {"role": 5})
    assert status == 400 and "role must be a string" in body["error"]["fields"]["role"]
    status, body = api(secured, "PUT", "/api/users/rita", {})
    assert status == 400 and "nothing to change" in body["error"]["message"]
    status, body = api(secured, "PUT", "/api/users/rita", {"password": "short"})
    assert status == 400 and "password" in body["error"]["fields"]
    status, _, data = call(secured, "POST", "/api/users", b"{not json",
                           {**basic("alice"), **JSON})
    assert status == 400 and error_of(data)["code"] == "bad_json"
    for method, body in (("GET", None), ("PUT", {"role": "admin"}), ("DELETE", None)):
        status, answer = api(secured, method, "/api/users/nobody", body)
        assert status == 404 and "no user nobody" in answer["error"]["message"], method
    # Nothing of the above changed any account.
    status, body = api(secured, "GET", "/api/users")
    assert {u["name"]: u["role"] for u in body["users"]} == {
        "alice": "admin", "oscar": "operator", "rita": "readonly"}


def test_only_admins_manage_accounts(secured, home):  # noqa: F811
    for name in ("oscar", "rita"):
        for method, path, body in (("GET", "/api/users", None),
                                   ("POST", "/api/users", {"name": "eve", "role": "admin",
                                                           "password": "eve-secret-1"}),
                                   ("GET", "/api/users/alice", None),
                                   ("PUT", "/api/users/" + name, {"role": "admin"}),
                                   ("PUT", "/api/users/alice", {"password": "taken-over"}),
                                   ("DELETE", "/api/users/alice", None)):
            status, answer = api(secured, method, path, body, who=name)
            assert status == 403, (name, method, path)
            message = answer["error"]["message"]
            assert answer["error"]["code"] == "forbidden"
            assert f"user {name}" in message and "needs the admin role" in message
    status, body = api(secured, "GET", "/api/users")
    assert {u["name"]: u["role"] for u in body["users"]} == {
        "alice": "admin", "oscar": "operator", "rita": "readonly"}
    assert api(secured, "GET", "/api/servers", who="alice")[0] == 200
    assert any(r["user"] == "oscar" and r["action"] == "add accounts"
               and r["outcome"] == "denied" for r in audit_records(home))

    # The pages: no Users link and a refusal page for operators and readonly users.
    for name in ("oscar", "rita"):
        cookie, csrf = login(secured, name)
        status, _, page = call(secured, "GET", "/", headers={"Cookie": cookie})
        assert b'href="/users"' not in page
        status, _, page = call(secured, "GET", "/users",
                               headers={"Cookie": cookie, "Accept": "text/html"})
        assert status == 403 and b"may not manage the accounts" in page
        status, _, page = call(secured, "POST", "/users/alice/delete",
                               urlencode({"csrf": csrf}), {"Cookie": cookie, **FORM})
        assert status == 403 and b"may not delete accounts" in page
    cookie, _ = login(secured, "alice")
    status, _, page = call(secured, "GET", "/", headers={"Cookie": cookie})
    assert b'href="/users"' in page
    assert api(secured, "GET", "/api/users/alice")[0] == 200


def test_the_last_admin_is_never_deleted_or_demoted(secured, home):  # noqa: F811
    status, body = api(secured, "DELETE", "/api/users/alice")
    assert status == 409 and body["error"]["code"] == "last_admin"
    assert "last admin" in body["error"]["message"]
    assert "give another account the admin role first" in body["error"]["message"]
    status, body = api(secured, "PUT", "/api/users/alice", {"role": "operator"})
    assert status == 409 and body["error"]["code"] == "last_admin"
    assert api(secured, "GET", "/api/users/alice")[1]["role"] == "admin"
    assert sum(1 for r in audit_records(home) if r["target"] == "alice"
               and r["outcome"] == "failed") == 2

    # With a second admin, alice may step down; then oscar is the last one.
    assert api(secured, "PUT", "/api/users/oscar", {"role": "admin"})[0] == 200
    status, body = api(secured, "PUT", "/api/users/alice", {"role": "readonly"})
    assert status == 200 and body["role"] == "readonly"
    status, body = api(secured, "DELETE", "/api/users/oscar", who="oscar")
    assert status == 409 and body["error"]["code"] == "last_admin"
    assert api(secured, "DELETE", "/api/users/alice", who="oscar")[0] == 204


def test_users_page_forms(secured, home):  # noqa: F811
    cookie, csrf = login(secured, "alice")
    headers = {"Cookie": cookie, **FORM}
    status, _, page = call(secured, "GET", "/users", headers={"Cookie": cookie})
    assert status == 200
    for name in ("alice", "oscar", "rita"):
        assert f'id="user-{name}"'.encode() in page
    # Each bad field gets its message next to it; the name typed is kept, the password not.
    form = {"name": "carol", "password": "short", "role": "operator", "csrf": csrf}
    status, _, page = call(secured, "POST", "/users/new", urlencode(form), headers)
    assert status == 400
    error = re.search(rb'<div class="field invalid"><label for="new-password">.*?'
                      rb'id="error-new-password">([^<]*)<', page)
    assert error and b"at least 8 characters" in error.group(1)
    assert b'id="new-name" type="text" value="carol"' in page
    assert b'value="short"' not in page
    # Without the CSRF token nothing happens.
    form["password"] = "carol-secret-1"
    status, _, page = call(secured, "POST", "/users/new",
                           urlencode({k: v for k, v in form.items() if k != "csrf"}), headers)
    assert status == 403 and b"CSRF" in page
    assert api(secured, "GET", "/api/users/carol")[0] == 404
    status, response_headers, _ = call(secured, "POST", "/users/new", urlencode(form), headers)
    assert status == 303 and response_headers["location"] == "/users"
    status, _, page = call(secured, "GET", "/users", headers={"Cookie": cookie})
    assert b"user carol added with role operator" in page
    assert re.search(rb'id="user-carol">.*?<td class="role">operator<', page)

    # The last-admin refusal is shown on the row it concerns.
    status, _, page = call(secured, "POST", "/users/alice/role",
                           urlencode({"role": "readonly", "csrf": csrf}), headers)
    assert status == 409
    row = re.search(rb'id="user-alice">.*?</tr>', page).group(0)
    assert b'id="error-user-alice"' in row and b"last admin" in row
    status, _, _ = call(secured, "POST", "/users/carol/delete", urlencode({"csrf": csrf}),
                        headers)
    assert status == 303
    assert api(secured, "GET", "/api/users/carol")[0] == 404

    # Names with "@" travel percent-encoded in the forms' addresses.
    assert api(secured, "POST", "/api/users", {"name": "ops@site", "role": "readonly",
                                               "password": "ops-secret-1"})[0] == 201
    status, _, page = call(secured, "GET", "/users", headers={"Cookie": cookie})
    assert b'action="/users/ops%40site/role"' in page
    status, _, _ = call(secured, "POST", "/users/ops%40site/role",
                        urlencode({"role": "operator", "csrf": csrf}), headers)
    assert status == 303
    assert api(secured, "GET", "/api/users/ops%40site")[1]["role"] == "operator"


def test_the_first_account_added_in_the_browser_must_be_an_admin(home):  # noqa: F811
    info = start_daemon(home, "127.0.0.1:0")
    # No account yet: loopback users are admins and see the Users page.
    status, headers, page = call(info, "GET", "/users")
    assert status == 200 and b'id="no-users"' in page and b'id="nav-users"' in page
    cookie = headers["set-cookie"].split(";")[0]
    csrf = re.search(rb'name="csrf" value="([^"]+)"', page).group(1).decode()
    form = {"name": "rita", "password": PASSWORDS["rita"], "role": "readonly", "csrf": csrf}
    status, _, page = call(info, "POST", "/users/new", urlencode(form),
                           {"Cookie": cookie, **FORM})
    assert status == 400
    assert re.search(rb'id="error-new-role">the first account must be an admin', page)
    status, _, _ = call(info, "GET", "/api/servers")
    assert status == 200  # still open: nothing was added
    form.update(name="alice", password=PASSWORDS["alice"], role="admin")
    status, headers, _ = call(info, "POST", "/users/new", urlencode(form),
                              {"Cookie": cookie, **FORM})
    assert status == 303
    # Authentication is on from now on.
    status, headers, _ = call(info, "GET", "/users", headers={"Cookie": cookie,
                                                              "Accept": "text/html"})
    assert status == 303 and headers["location"].startswith("/login")
    status, body = api(info, "GET", "/api/users")
    assert [(u["name"], u["role"]) for u in body["users"]] == [("alice", "admin")]
    assert any(r["user"] == "anonymous" and r["action"] == "add user" and r["outcome"] == "ok"
               for r in audit_records(home))


def test_openapi_documents_the_account_routes(secured):  # noqa: F811 - the imported fixture
    status, body = api(secured, "GET", "/api/openapi.json", who="rita")
    assert status == 200
    paths = body["paths"]
    assert set(paths["/api/users"]) >= {"get", "post"}
    assert set(paths["/api/users/{user}"]) >= {"get", "put", "delete"}
    assert "last_login" in body["components"]["schemas"]["User"]["properties"]
    for path in ("/api/users", "/api/users/{user}"):
        for method in paths[path]:
            if method == "parameters":
                continue
            # Every documented operation exists (rita is refused by role, not by routing).
            status, _ = api(secured, method.upper(), path.replace("{user}", "oscar"), {},
                            who="rita")
            assert status == 403, (method, path)
