"""The OpenAPI 3.0 description of mfds's JSON API, served at GET /api/openapi.json.

Attribute names follow Enterprise Server where it has them (mfServerStatus, mfListenerStatus,
CN, mfRequestedEndpoint), so scripts written against ES's admin API read naturally.
"""

import esrt
from esrt.mfds.api.routes import schema_ref as _ref
from esrt.settings import definition_schema


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
            "Package": package, "Error": error,
            "Session": {"type": "object", "properties": {
                "name": {"type": "string", "description": "account name (anonymous while "
                         "no account exists)"}, "role": role,
                "via": {"type": "string", "enum": ["session", "basic", "token", "open"],
                        "description": "how the caller proved who they are"}}}}


def openapi_document(table):
    """The OpenAPI 3.0 document of the API whose RouteTable is `table` (a fresh dict)."""
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
        "paths": table.openapi_paths(),
    }
