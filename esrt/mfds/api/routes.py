"""The route table of mfds's JSON API: what a request is, what an answer is, and the routes.

Each Route is a method, a path template, the function that answers it and its OpenAPI
description; RouteTable matches requests against the routes and writes the OpenAPI `paths`
from the same entries, so nothing about a route is typed twice.
"""

import json
from urllib.parse import unquote

from esrt.mfds.repository import ServerExists, ServerNotFound
from esrt.mfds.users import NoSuchUser
from esrt.settings import SettingError


class Response:
    """What the API answers: an HTTP status and a JSON-able body (None = no body)."""

    def __init__(self, status, body=None):
        self.status = status
        self.body = body

    def encode(self):
        """The body as UTF-8 JSON bytes (b"" when there is none)."""
        if self.body is None:
            return b""
        return json.dumps(self.body).encode("utf-8") + b"\n"


class ApiError(Exception):
    """An error answer: HTTP status, short machine code, human message, optional fields."""

    def __init__(self, status, code, message, fields=None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.fields = fields

    def response(self):
        """This error as the Response every route answers errors with."""
        error = {"code": self.code, "message": self.message}
        if self.fields:
            error["fields"] = self.fields
        return Response(self.status, {"error": error})


def guarded(function, *args):
    """Call function(*args), turning the API's known errors into error Responses."""
    try:
        return function(*args)
    except ApiError as exc:
        return exc.response()
    except SettingError as exc:
        return ApiError(400, "invalid", f"invalid definition: {exc}", exc.fields).response()
    except (ServerNotFound, NoSuchUser) as exc:
        return ApiError(404, "not_found", str(exc)).response()
    except ServerExists as exc:
        return ApiError(409, "exists", str(exc)).response()


class Later:
    """A slow answer: call run() in a worker thread; it returns the Response (never raises)."""

    def __init__(self, function, *args):
        self._function = function
        self._args = args

    def run(self):
        """Run the slow part; errors become error Responses like the quick routes'."""
        return guarded(self._function, *self._args)


class Call:
    """One request as a route sees it: path parameters, query, raw body and who sent it."""

    def __init__(self, params, query, body, who):
        self.params = params
        self.query = query
        self.body = body
        self.who = who

    def json(self, what="request body"):
        """The body as a JSON object; 400 with what to send when it is not one."""
        try:
            value = json.loads(self.body.decode("utf-8") if self.body else "")
        except (UnicodeDecodeError, ValueError) as exc:
            raise ApiError(400, "bad_json", f"the {what} is not valid JSON ({exc}): send a "
                           "JSON object with Content-Type application/json") from None
        if not isinstance(value, dict):
            raise ApiError(400, "bad_json", f"the {what} must be a JSON object, "
                           f"got {type(value).__name__}")
        return value


ERROR_TEXTS = {400: "invalid request (fields names the bad settings)",
               401: "no valid session, Basic credentials or node token",
               403: "role too weak, or missing CSRF token on a cookie session",
               404: "no such server or account", 405: "method not allowed",
               409: "conflict (server exists or runs; account exists; last admin)",
               413: "package larger than the limit",
               503: "installed on this node, but the server's PostgreSQL store did not take "
                    "it for the server's other members"}


def schema_ref(name):
    """A reference to components/schemas/NAME of the OpenAPI document."""
    return {"$ref": f"#/components/schemas/{name}"}


def json_content(schema):
    return {"application/json": {"schema": schema}}


class Route:
    """One operation: METHOD /api/template, answered by handler(call) -> Response | Later.

    The rest describes it for the OpenAPI document: `role` (None: no authentication at all),
    `answers` {status: (description, schema or None)}, `errors` (statuses), `request` (schema
    of a JSON body, or a full requestBody object), `query` ((name, schema, description), ...).
    """

    def __init__(self, method, template, handler, summary, role, answers, errors=(),
                 request=None, query=()):
        self.method = method
        self.template = template
        self.segments = tuple(template.strip("/").split("/"))
        self.handler = handler
        self.summary = summary
        self.role = role
        self.answers = answers
        self.errors = errors
        self.request = request
        self.query = query

    @property
    def public(self):
        """True when the route answers without any credentials."""
        return self.role is None

    def match(self, parts):
        """{parameter: value} when `parts` (the path's segments) fit the template, else None."""
        return _fit(self.segments, parts)

    def operation(self):
        """This route as an OpenAPI operation object."""
        responses = {}
        for status, (description, schema) in self.answers.items():
            responses[str(status)] = {"description": description}
            if schema is not None:
                responses[str(status)]["content"] = json_content(schema)
        for status in self.errors:
            responses[str(status)] = {"description": ERROR_TEXTS[status],
                                      "content": json_content(schema_ref("Error"))}
        operation = {"summary": self.summary, "responses": responses}
        if self.public:
            operation["description"] = "Needs no authentication."
            operation["security"] = []
        else:
            operation["description"] = f"Needs the {self.role} role."
        if self.request is not None:
            body = self.request
            if "content" not in body:
                body = {"required": True, "content": json_content(body)}
            operation["requestBody"] = body
        if self.query:
            operation["parameters"] = [
                {"name": name, "in": "query", "schema": schema, "description": description}
                for name, schema, description in self.query]
        return operation


def _fit(segments, parts):
    """{placeholder: value} when `parts` fit template `segments` one to one, else None."""
    if len(parts) != len(segments):
        return None
    params = {}
    for segment, part in zip(segments, parts):
        if segment.startswith("{"):
            params[segment[1:-1]] = part
        elif segment != part:
            return None
    return params


class RouteTable:
    """Routes in the order they are tried; `parameters` describes each {placeholder}."""

    def __init__(self, routes, parameters):
        self.routes = tuple(routes)
        self.parameters = parameters

    @staticmethod
    def split(path):
        """The path's segments below /api/, unquoted; 404 for a path outside the API."""
        parts = [unquote(part) for part in path.strip("/").split("/") if part]
        if parts[:1] != ["api"]:
            raise ApiError(404, "not_found", f"no such path {path}: the API lives under /api/")
        return parts

    def find(self, method, path):
        """(route, params) answering METHOD path; ApiError 404 or 405 saying what exists."""
        parts = self.split(path)
        allowed = []
        for route in self.routes:
            params = route.match(parts)
            if params is None:
                continue
            if route.method == method:
                return route, params
            allowed.append(route.method)
        if allowed:
            raise ApiError(405, "method_not_allowed",
                           f"{method} is not allowed on {path}: use {' or '.join(allowed)}")
        raise ApiError(404, "not_found", f"no such path {path}: {self._nearby(parts)}")

    def is_public(self, path):
        """True when every route at `path` answers without credentials."""
        try:
            parts = self.split(path)
        except ApiError:
            return False
        routes = [route for route in self.routes if route.match(parts) is not None]
        return bool(routes) and all(route.public for route in routes)

    def _nearby(self, parts):
        """What exists next to a path that does not: its siblings, or the top of the API."""
        parent, siblings = None, []
        for route in self.routes:
            segments = route.segments
            if (len(parts) > 2 and len(segments) == len(parts)
                    and _fit(segments[:-1], parts[:-1]) is not None):
                parent = parent or "/".join(segments[:-1])
                if segments[-1] not in siblings:
                    siblings.append(segments[-1])
        if siblings:
            return f"/{parent}/ has {', '.join(siblings)}"
        tops = []
        for route in self.routes:
            top = "/" + "/".join(route.segments[:2])
            if top not in tops:
                tops.append(top)
        return "see " + ", ".join(tops)

    def openapi_paths(self):
        """The `paths` object of the OpenAPI document, from the routes."""
        paths = {}
        for route in self.routes:
            entry = paths.setdefault("/" + "/".join(route.segments), {})
            names = [segment[1:-1] for segment in route.segments if segment.startswith("{")]
            if names and "parameters" not in entry:
                entry["parameters"] = [
                    {"name": name, "in": "path", "required": True,
                     "description": self.parameters[name], "schema": {"type": "string"}}
                    for name in names]
            entry[route.method.lower()] = route.operation()
        return paths
