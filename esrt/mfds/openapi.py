"""The OpenAPI 3.0 description of mfds's JSON API, served at GET /api/openapi.json.

Attribute names follow Enterprise Server where it has them (mfServerStatus, mfListenerStatus,
CN, mfRequestedEndpoint), so scripts written against ES's admin API read naturally.
"""

import esrt
from esrt.settings import definition_schema

_NAME = {"name": "name", "in": "path", "required": True,
         "description": "server (region) name, e.g. ESSRV01", "schema": {"type": "string"}}
_USER = {"name": "user", "in": "path", "required": True,
         "description": "account name, e.g. alice", "schema": {"type": "string"}}


def _ref(name):
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema, description):
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(*codes):
    texts = {400: "invalid request (fields names the bad settings)",
             401: "no valid session, Basic credentials or node token",
             403: "role too weak, or missing CSRF token on a cookie session",
             404: "no such server or account", 405: "method not allowed",
             409: "conflict (server exists or runs; account exists; last admin)",
             413: "package larger than the limit"}
    return {str(code): {"description": texts[code], "content": {"application/json": {
        "schema": _ref("Error")}}} for code in codes}


def _operation(summary, role, responses, **extra):
    operation = {"summary": summary, "description": f"Needs the {role} role.",
                 "responses": responses}
    operation.update(extra)
    return operation


def _schemas():
    listener_status = {"type": "object", "properties": {
        "CN": {"type": "string", "description": "listener name, e.g. Web Services"},
        "mfListenerStatus": {"type": "string", "enum": [
            "Stopped", "Starting", "Started", "Waiting for address", "Failed"]},
        "mfRequestedEndpoint": {"type": "string", "description": "tcp:HOST:PORT as configured"},
        "address": {"type": "string", "description": "HOST:PORT actually bound"},
        "conversation": {"type": "string"}, "message": {"type": "string", "nullable": True}}}
    stats = {"type": "object", "properties": {
        "requests": {"type": "integer"}, "errors": {"type": "integer"},
        "active": {"type": "integer", "description": "requests in flight (active clients)"},
        "max_tasks": {"type": "integer"}, "avg_latency_ms": {"type": "number"},
        "started": {"type": "string"}}}
    service_stats = {"type": "object", "properties": {
        "calls": {"type": "integer"}, "errors": {"type": "integer"},
        "avg_ms": {"type": "number"}, "p99_ms": {"type": "number"}}}
    status_document = {"type": "object", "properties": {
        "mfServerStatus": _ref("ServerStatus"), "pid": {"type": "integer"},
        "started": {"type": "string"}, "message": {"type": "string"},
        "listeners": {"type": "array", "items": listener_status},
        "seps": {"type": "array", "items": {"type": "object", "properties": {
            "id": {"type": "integer"}, "pid": {"type": "integer"},
            "state": {"type": "string"}, "restarts": {"type": "integer"},
            "requests": {"type": "integer"}}}},
        "stats": stats, "services": {"type": "array", "items": {"type": "string"}},
        "services_stats": {"type": "object", "additionalProperties": service_stats,
                           "description": "per service PACKAGE.PROGRAM"}}}
    server = {"type": "object", "properties": {
        "name": {"type": "string"}, "definition": _ref("Definition"),
        "mfServerStatus": _ref("ServerStatus"),
        "status": {"allOf": [_ref("StatusDocument")], "nullable": True,
                   "description": "last status document the region reported"},
        "received": {"type": "string", "nullable": True}, "created": {"type": "string"},
        "updated": {"type": "string"}, "paths": {"type": "object"}}}
    error = {"type": "object", "properties": {"error": {"type": "object", "properties": {
        "code": {"type": "string"}, "message": {"type": "string"},
        "fields": {"type": "object", "additionalProperties": {"type": "string"},
                   "description": "setting name -> what is wrong with it"}}}}}
    package = {"type": "object", "properties": {
        "package": {"type": "string"}, "manifest": {"type": "object"},
        "installed": {"type": "string"}, "size": {"type": "integer"}}}
    role = {"type": "string", "enum": ["readonly", "operator", "admin"]}
    user = {"type": "object", "properties": {
        "name": {"type": "string"}, "role": role,
        "created": {"type": "string", "description": "ISO 8601, UTC"},
        "last_login": {"type": "string", "nullable": True,
                       "description": "last login through the login page (null: never)"}}}
    new_user = {"type": "object", "required": ["name", "password", "role"], "properties": {
        "name": {"type": "string", "pattern": "^[A-Za-z][A-Za-z0-9_.@-]{0,63}$"},
        "password": {"type": "string", "minLength": 8, "format": "password"}, "role": role}}
    user_change = {"type": "object", "description": "role and/or a new password", "properties": {
        "role": role, "password": {"type": "string", "minLength": 8, "format": "password"}}}
    return {"User": user, "NewUser": new_user, "UserChange": user_change,
            "ServerStatus": {"type": "string", "enum": [
                "Stopped", "Starting", "Started", "Stopping", "Failed"]},
            "Definition": definition_schema(),
            "DefinitionChanges": definition_schema(partial=True), "Server": server,
            "StatusDocument": status_document,
            "Package": package, "Error": error}


def _paths():
    server = {"application/json": {"schema": _ref("Server")}}
    message = {"type": "object", "properties": {"name": {"type": "string"},
                                                "message": {"type": "string"}}}
    return {
        "/api/health": {"get": {"summary": "Is mfds up (no authentication needed)",
                                "security": [],
                                "responses": {"200": _json({"type": "object"}, "mfds is up")}}},
        "/api/openapi.json": {"get": _operation("This document", "readonly", {
            "200": _json({"type": "object"}, "OpenAPI 3.0 document")})},
        "/api/users": {
            "get": _operation("List the accounts (never their passwords)", "admin", {
                "200": _json({"type": "object", "properties": {"users": {
                    "type": "array", "items": _ref("User")}}}, "every account, by name"),
                **_errors(401, 403)}),
            "post": _operation("Add an account", "admin", {
                "201": _json(_ref("User"), "added"), **_errors(400, 401, 403, 409)},
                requestBody={"required": True, "content": {"application/json": {
                    "schema": _ref("NewUser")}}})},
        "/api/users/{user}": {
            "parameters": [_USER],
            "get": _operation("One account", "admin", {
                "200": _json(_ref("User"), "the account"), **_errors(401, 403, 404)}),
            "put": _operation("Change an account's role and/or reset its password (the last "
                              "admin cannot be demoted)", "admin", {
                                  "200": _json(_ref("User"), "changed"),
                                  **_errors(400, 401, 403, 404, 409)},
                              requestBody={"required": True, "content": {"application/json": {
                                  "schema": _ref("UserChange")}}}),
            "delete": _operation("Delete an account (never the last admin)", "admin", {
                "204": {"description": "deleted"}, **_errors(401, 403, 404, 409)})},
        "/api/servers": {
            "get": _operation("List servers with their status", "readonly", {
                "200": _json({"type": "object", "properties": {"servers": {
                    "type": "array", "items": _ref("Server")}}}, "every server, by name"),
                **_errors(401)}),
            "post": _operation("Create a server", "admin", {
                "201": {"description": "created", "content": server},
                **_errors(400, 401, 403, 409)},
                requestBody={"required": True, "content": {"application/json": {
                    "schema": _ref("Definition")}}})},
        "/api/servers/{name}": {
            "parameters": [_NAME],
            "get": _operation("One server", "readonly", {
                "200": {"description": "the server", "content": server}, **_errors(401, 404)}),
            "put": _operation("Change some settings of a server", "admin", {
                "200": {"description": "changed", "content": server},
                **_errors(400, 401, 403, 404)},
                requestBody={"required": True, "content": {"application/json": {
                    "schema": _ref("DefinitionChanges")}}}),
            "delete": _operation("Delete a stopped server", "admin", {
                "204": {"description": "deleted"}, **_errors(401, 403, 404, 409)})},
        "/api/servers/{name}/status": {
            "parameters": [_NAME],
            "get": _operation("Last reported status", "readonly", {
                "200": _json({"type": "object", "properties": {
                    "mfServerStatus": _ref("ServerStatus"),
                    "status": _ref("StatusDocument")}}, "status"), **_errors(401, 404)}),
            "put": _operation("Report a region's status (regions, with the node token)",
                              "admin", {"204": {"description": "stored"},
                                        **_errors(400, 401, 403, 404)},
                              requestBody={"required": True, "content": {"application/json": {
                                  "schema": _ref("StatusDocument")}}})},
        "/api/servers/{name}/packages": {
            "parameters": [_NAME],
            "get": _operation("Installed packages", "readonly", {
                "200": _json({"type": "object", "properties": {"packages": {
                    "type": "array", "items": _ref("Package")}}}, "packages"),
                **_errors(401, 404)}),
            "post": _operation("Deploy a .car (checked before anything is installed)",
                               "operator", {"201": _json({"type": "object"}, "installed"),
                                            **_errors(400, 401, 403, 404, 413)},
                               parameters=[{"name": "filename", "in": "query",
                                            "schema": {"type": "string"}}],
                               requestBody={"required": True, "content": {
                                   "application/octet-stream": {"schema": {
                                       "type": "string", "format": "binary"}}}})},
        "/api/servers/{name}/services": {
            "parameters": [_NAME],
            "get": _operation("Services of the installed packages", "readonly", {
                "200": _json({"type": "object"}, "{services: [{name, package, program, "
                             "parameters}]}"), **_errors(401, 404)})},
        "/api/servers/{name}/console": {
            "parameters": [_NAME],
            "get": _operation("Tail (and search) console.log or console.bak", "readonly", {
                "200": _json({"type": "object"}, "{file, exists, lines, matched, search}"),
                **_errors(400, 401, 404)},
                parameters=[{"name": "file", "in": "query", "schema": {
                    "type": "string", "enum": ["log", "bak"], "default": "log"}},
                    {"name": "lines", "in": "query", "schema": {
                        "type": "integer", "default": 200, "maximum": 5000}},
                    {"name": "search", "in": "query", "schema": {"type": "string"}}])},
        "/api/servers/{name}/start": {
            "parameters": [_NAME],
            "post": _operation("Start the region (returns once it is spawned)", "operator", {
                "202": _json(message, "starting"), **_errors(401, 403, 404, 409)})},
        "/api/servers/{name}/stop": {
            "parameters": [_NAME],
            "post": _operation("Stop the region (force=true kills its processes)", "operator", {
                "200": _json(message, "stopped"), **_errors(401, 403, 404, 409)},
                parameters=[{"name": "force", "in": "query", "schema": {"type": "boolean"}}])},
    }


def openapi_document():
    """The OpenAPI 3.0 document of the API (a fresh dict)."""
    return {
        "openapi": "3.0.3",
        "info": {"title": "esrt mfds API", "version": esrt.__version__,
                 "description": "Directory server of an esrt node. Once an account exists "
                 "every call but /api/health needs HTTP Basic credentials, a session cookie "
                 "(then state changes need the X-CSRF-Token header) or the node token "
                 "(header X-Esrt-Node-Token, from $ESRT_HOME/mfds.token)."},
        "security": [{"basicAuth": []}, {"sessionCookie": []}, {"nodeToken": []}],
        "components": {
            "securitySchemes": {
                "basicAuth": {"type": "http", "scheme": "basic"},
                "sessionCookie": {"type": "apiKey", "in": "cookie", "name": "esrt_session"},
                "nodeToken": {"type": "apiKey", "in": "header", "name": "X-Esrt-Node-Token"}},
            "schemas": _schemas()},
        "paths": _paths(),
    }
