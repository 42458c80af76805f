"""Who is asking: sessions, HTTP Basic, the node token, and CSRF tokens.

Sessions live in mfds's memory (a restart logs everyone out, which is acceptable for an admin
console and keeps no secret on disk). Every browser gets a session on its first page, logged in
or not, because the CSRF token belongs to the session: each form carries it as a hidden field
`csrf`, each cookie-authenticated API change as the header X-CSRF-Token. The cookie is HttpOnly
and SameSite=Strict. A login replaces the session (new id), so a planted id is worthless.

Credentials are looked for in this order: node token header, Authorization: Basic, session
cookie. Basic and token requests carry no cookie, so they are not open to CSRF and need no token.
"""

import base64
import binascii
import hmac
import secrets
import time

from esrt.node.mfds_client import TOKEN_HEADER
from esrt.mfds.users import NODE, OPEN, Principal, token_matches

COOKIE = "esrt_session"
CSRF_HEADER = "X-CSRF-Token"
SESSION_IDLE = 8 * 3600
MAX_SESSIONS = 10000
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


class Session:
    """One browser: its CSRF token, the account it logged in as (None = not logged in), the
    auto-refresh interval it chose and messages to show on its next page."""

    def __init__(self, sid, user=None):
        self.sid = sid
        self.user = user
        self.csrf = secrets.token_urlsafe(24)
        self.refresh = 0
        self.flashes = []
        self.seen = time.monotonic()

    def flash(self, text, kind="ok"):
        """Queue a message for the next page."""
        self.flashes.append((kind, text))

    def take_flashes(self):
        """Return and forget the queued messages."""
        flashes, self.flashes = self.flashes, []
        return flashes

    def csrf_ok(self, given):
        """True when `given` is this session's CSRF token."""
        return bool(given) and hmac.compare_digest(self.csrf, str(given))


class SessionStore:
    """Sessions by id, forgotten after SESSION_IDLE seconds without a request."""

    def __init__(self, clock=time.monotonic):
        self._sessions = {}
        self._clock = clock

    def get(self, sid):
        """The live session `sid`, or None."""
        session = self._sessions.get(sid) if sid else None
        if session is None:
            return None
        now = self._clock()
        if now - session.seen > SESSION_IDLE:
            del self._sessions[sid]
            return None
        session.seen = now
        return session

    def new(self, user=None):
        """Create a session (dropping the oldest when there are too many)."""
        if len(self._sessions) >= MAX_SESSIONS:
            oldest = min(self._sessions.values(), key=lambda s: s.seen)
            del self._sessions[oldest.sid]
        session = Session(secrets.token_urlsafe(32), user)
        session.seen = self._clock()
        self._sessions[session.sid] = session
        return session

    def drop(self, session):
        """Forget a session (logout, or replaced at login)."""
        self._sessions.pop(session.sid, None)

    def drop_user(self, name):
        """Forget every session logged in as `name` (its password was reset)."""
        for sid in [sid for sid, s in self._sessions.items() if s.user == name]:
            del self._sessions[sid]


def _header(request, name):
    value = request.getHeader(name)
    return value if value is None else str(value)


def over_tls(request):
    """Whether `request` came over https://."""
    from esrt.node.tls import is_tls
    return is_tls(getattr(request.channel, "transport", None))


def set_cookie(request, session):
    """Send the session cookie; over https:// the browser is told never to send it in clear
    text."""
    request.addCookie(COOKIE.encode(), session.sid.encode(), path=b"/", httpOnly=True,
                      sameSite="strict", secure=over_tls(request))


class Gate:
    """Decides who a request comes from, over the account store and the node token."""

    def __init__(self, users, token, sessions=None):
        self.users = users
        self.token = token
        self.sessions = sessions or SessionStore()

    def auth_enabled(self):
        """True once any account exists."""
        return self.users.count() > 0

    def session_of(self, request):
        """The request's live session, or None."""
        sid = request.getCookie(COOKIE.encode())
        return self.sessions.get(sid.decode("ascii", "replace") if sid else None)

    def identify(self, request):
        """Return (principal or None, session or None, problem or None).

        `problem` is set when credentials were presented but are wrong; principal is None when
        none were presented (or the session is not logged in).
        """
        given = _header(request, TOKEN_HEADER)
        if given is not None:
            if token_matches(self.token, given):
                return NODE, None, None
            return None, None, "the node token is wrong: read it from $ESRT_HOME/mfds.token"
        authorization = _header(request, "Authorization")
        if authorization is not None:
            return self._basic(authorization)
        session = self.session_of(request)
        if session is not None and session.user:
            role = self.users.role(session.user)
            if role is None:  # the account was deleted since the login
                self.sessions.drop(session)
                return None, None, None
            return Principal(session.user, role, "session"), session, None
        return None, session, None

    def _basic(self, authorization):
        scheme, _, encoded = authorization.partition(" ")
        if scheme.lower() != "basic":
            return None, None, (f"authorization scheme {scheme!r} is not supported: use HTTP "
                                "Basic (user:password)")
        try:
            name, sep, password = base64.b64decode(encoded.strip(), validate=True) \
                .decode("utf-8").partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return None, None, "the Basic credentials are not valid base64 of user:password"
        role = self.users.authenticate(name, password) if sep else None
        if role is None:
            return None, None, "wrong user name or password"
        return Principal(name, role, "basic"), None, None

    def api_principal(self, request, method):
        """For an API call: (principal, None) or (None, (status, code, message))."""
        principal, session, problem = self.identify(request)
        if problem:
            return None, (401, "unauthorized", problem)
        if principal is None:
            if self.auth_enabled():
                return None, (401, "unauthorized", "authentication required: log in at /login, "
                              "or send HTTP Basic credentials (the CLI reads ESRT_MFDS_USER "
                              "and ESRT_MFDS_PASSWORD)")
            principal = OPEN
        if method not in SAFE_METHODS:
            problem = self.csrf_problem(request, principal, session)
            if problem:
                return None, (403, "csrf", problem)
        return principal, None

    def csrf_problem(self, request, principal, session, form_token=None):
        """Why a state change must be refused as possible CSRF, or None when it is fine."""
        if principal.via in ("basic", "token"):
            return None
        origin = _header(request, "Origin")
        host = _header(request, "Host")
        if origin and origin != "null" and host and origin.split("://", 1)[-1] != host:
            scheme = "https" if over_tls(request) else "http"
            return (f"cross-site request from {origin} refused: use the mfds pages at "
                    f"{scheme}://{host}/")
        if principal.via == "open" and session is None:
            # Authentication is off and no cookie came: nothing a forged form could ride on
            # but the Origin check above.
            return None
        token = form_token if form_token is not None else _header(request, CSRF_HEADER)
        if session is None or not session.csrf_ok(token):
            return ("missing or wrong CSRF token: reload the page and try again (API clients "
                    f"using the session cookie send it in the {CSRF_HEADER} header)")
        return None
