"""The one table of server (region) and listener settings.

Every setting is declared once, in SERVER_SETTINGS or LISTENER_SETTINGS: its name, its kind
(how a value is checked, written as text and described as JSON schema), its default, its help,
an example, its CLI flag and its form label. Everything else is generated from these entries:
`validate_server` (used by the repository, region files and the API), the flags of
`esrt server create` and the KEY=VALUE pairs of `esrt server set` (esrt.cli.server_cmd), the
admin UI's create/edit form (esrt.mfds.web) and the OpenAPI schema (`definition_schema`).
Adding a setting is adding one entry here.
"""

import ipaddress
import re

NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,31}$")
ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
CONVERSATIONS = ("web-services", "esrt")
DURABILITIES = ("sync", "write-nosync")
SEP_SCHEDULING = ("batch", "normal")
AUTH_MODES = ("none", "token", "basic", "mtls")
EXPOSURES = ("off", "auth", "open")
CONVERSATION_ALIASES = {"web services": "web-services", "web services and j2ee": "web-services",
                        "http": "web-services", "esrt": "esrt", "binary": "esrt"}


class SettingError(ValueError):
    """A definition that cannot be used; `fields` maps setting name -> what is wrong."""

    def __init__(self, fields):
        self.fields = dict(fields)
        super().__init__("; ".join(f"{k}: {v}" for k, v in self.fields.items()))


def parse_address(text):
    """Parse 'ip:port' (or '*:*', '*:port', '[v6]:port') into (host, port); port 0 = ephemeral."""
    text = str(text).strip()
    if text.startswith("["):
        host, sep, port = text[1:].partition("]:")
    else:
        host, sep, port = text.rpartition(":")
    if not sep or not host:
        raise ValueError(f"address {text!r} must look like ip:port (e.g. 127.0.0.1:9003, *:*)")
    if host != "*":
        try:
            ipaddress.ip_address(host)
        except ValueError:
            if not re.match(r"^[A-Za-z0-9.-]+$", host):
                raise ValueError(f"address {text!r}: {host!r} is not an IP address or host "
                                 f"name") from None
    if port == "*":
        port_number = 0
    else:
        try:
            port_number = int(port)
        except ValueError:
            raise ValueError(f"address {text!r}: port {port!r} is not a number or '*'") from None
        if not 0 <= port_number <= 65535:
            raise ValueError(f"address {text!r}: port must be 0..65535")
    return host, port_number


def format_address(host, port):
    """The inverse of parse_address, keeping '*' for any address / ephemeral port."""
    shown_host = f"[{host}]" if ":" in host else host
    return f"{shown_host}:{'*' if port == 0 else port}"


# --- kinds: what a value is, as Python, as text and as JSON schema ----------------------------

class Kind:
    """How the values of one type are checked, written as text and described.

    Text is what a user types: one CLI argument, one KEY=VALUE pair, one form field. A
    repeatable kind (a list, a map) takes several texts: its CLI flag may be repeated, its form
    field holds one per line. `control` says which form control draws it.
    """

    control = "text"
    repeatable = False
    #: how one text is named in CLI help
    metavar = "TEXT"
    #: how one text looks, shown in help when the kind has a syntax of its own
    syntax = None

    def check(self, value):
        """Return the clean value, or raise ValueError saying what is wrong."""
        raise NotImplementedError

    def from_texts(self, texts):
        """The value that `texts` (a list of str) stand for; check() still runs on it."""
        if len(texts) != 1:
            raise ValueError(f"give one value, not {len(texts)}")
        return texts[0]

    def to_texts(self, value):
        """The texts that give `value` back through from_texts."""
        return [] if value is None else [str(value)]

    def schema(self):
        """The JSON schema (OpenAPI 3.0 dialect) of a clean value."""
        return {"type": "string"}


class Name(Kind):
    """A server name: what file names, URLs and console lines can all carry."""

    metavar = "NAME"

    def check(self, value):
        value = str(value)
        if not NAME_RE.match(value):
            raise ValueError(f"{value!r} is not a valid name: use a letter then up to 31 "
                             "letters, digits, '-' or '_' (e.g. ESSRV01)")
        return value

    def from_texts(self, texts):
        return super().from_texts(texts).strip()

    def schema(self):
        return {"type": "string", "pattern": NAME_RE.pattern}


class Text(Kind):
    """Free text up to `limit` characters."""

    def __init__(self, limit):
        self.limit = limit

    def check(self, value):
        value = "" if value is None else str(value)
        if len(value) > self.limit:
            raise ValueError(f"longer than {self.limit} characters")
        return value

    def schema(self):
        return {"type": "string", "maxLength": self.limit}


class Whole(Kind):
    """A whole number from `low` to `high`."""

    control = "number"
    metavar = "N"

    def __init__(self, low, high):
        self.low = low
        self.high = high

    def check(self, value):
        try:
            number = int(value)
        except (TypeError, ValueError):
            raise ValueError(f"{value!r} is not a whole number") from None
        if isinstance(value, bool) or not self.low <= number <= self.high:
            raise ValueError(f"{value!r} must be between {self.low} and {self.high}")
        return number

    def from_texts(self, texts):
        return super().from_texts(texts).strip()

    def schema(self):
        return {"type": "integer", "minimum": self.low, "maximum": self.high}


class Choice(Kind):
    """One of a few words; `aliases` maps other spellings (lower case) to them."""

    control = "choice"

    def __init__(self, choices, aliases=None):
        self.choices = tuple(choices)
        self.aliases = aliases or {}
        self.metavar = "{" + ",".join(self.choices) + "}"

    def check(self, value):
        text = str(value if value is not None else "").strip()
        clean = self.aliases.get(text.lower(), text)
        if clean not in self.choices:
            raise ValueError(f"{value!r} is not one of {', '.join(self.choices)}")
        return clean

    def schema(self):
        return {"type": "string", "enum": list(self.choices)}


class Flag(Choice):
    """True or false; typed as yes/no, on/off, 1/0 as well."""

    def __init__(self):
        super().__init__(("false", "true"))

    def check(self, value):
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in ("true", "yes", "on", "1"):
            return True
        if text in ("false", "no", "off", "0"):
            return False
        raise ValueError(f"{value!r} is not true or false")

    def to_texts(self, value):
        return ["true" if value else "false"]

    def schema(self):
        return {"type": "boolean"}


class OptionalPath(Kind):
    """A directory; empty means the default place under the region root."""

    metavar = "DIR"

    def check(self, value):
        if value in (None, ""):
            return None
        return str(value)

    def from_texts(self, texts):
        return super().from_texts(texts).strip() or None

    def schema(self):
        return {"type": "string", "nullable": True}


class Unset:
    """A kind that may also be left empty (None): its default then depends on other
    settings. Put before the kind it makes optional: `class OptionalWhole(Unset, Whole)`."""

    def check(self, value):
        if value in (None, ""):
            return None
        return super().check(value)

    def to_texts(self, value):
        return [] if value is None else super().to_texts(value)

    def from_texts(self, texts):
        return super().from_texts(texts).strip() or None

    def schema(self):
        return dict(super().schema(), nullable=True)


class OptionalWhole(Unset, Whole):
    """A whole number, or nothing."""


class OptionalChoice(Unset, Choice):
    """One of a few words, or nothing."""


class FileName(Kind):
    """A file given by its full path; empty means none."""

    metavar = "FILE"

    def check(self, value):
        if value in (None, ""):
            return None
        text = str(value).strip()
        # A relative name would be read from whatever directory the region happens to start
        # in; the same definition must mean the same file on every node and at every start.
        if not text.startswith("/"):
            raise ValueError(f"{text!r} must be a full path (starting with /)")
        if "," in text or "\n" in text:
            raise ValueError(f"{text!r}: a file name here cannot hold a comma or a line break")
        return text

    def from_texts(self, texts):
        return super().from_texts(texts).strip() or None

    def schema(self):
        return {"type": "string", "nullable": True}


class Store(Kind):
    """Where a server's files are kept: nothing for the Berkeley DB environment in its data
    directory, or a PostgreSQL database named by a libpq connection string."""

    metavar = "CONNINFO"
    syntax = "host=HOST dbname=DB [user=U port=P ...] or postgresql://HOST[:PORT]/DB"
    PAIR = re.compile(r"\s*([A-Za-z_]+)\s*=\s*('(?:[^'\\]|\\.)*'|\S+)\s*")

    def check(self, value):
        if value in (None, ""):
            return None
        text = str(value).strip()
        if text.startswith(("postgresql://", "postgres://")):
            keys = re.findall(r"[?&]([A-Za-z_]+)=", text)
            if re.match(r"postgres(?:ql)?://[^/@]*:[^/@]*@", text):
                keys.append("password")
        else:
            keys, at = [], 0
            while at < len(text):
                pair = self.PAIR.match(text, at)
                if pair is None or pair.end() == at:
                    raise ValueError(
                        f"{text!r} is not a PostgreSQL connection string: write key=value "
                        "pairs separated by spaces (host=db1 dbname=esrt) or a URL "
                        "(postgresql://db1/esrt)")
                keys.append(pair.group(1))
                at = pair.end()
        if "password" in keys:
            raise ValueError("keep the password out of the server definition, which the admin "
                             "UI shows: put it in the PostgreSQL password file of the account "
                             "the region runs as (~/.pgpass, or passfile=FILE in the string)")
        return text


class Address(Kind):
    """ip:port to listen on, '*' for any address or an ephemeral port."""

    syntax = "ip:port, e.g. 127.0.0.1:9003 or *:*"
    metavar = "IP:PORT"

    def check(self, value):
        return format_address(*parse_address(value))


class Listeners(Kind):
    """The listeners of a region: a list of objects checked by LISTENER_SETTINGS."""

    control = "lines"
    repeatable = True
    syntax = ('Name=ip:port[,conversation][,setting=value...], e.g. "Web Services=127.0.0.1:9003"'
              ' or "Secure=*:9443,web-services,tls_cert=/etc/esrt/srv.crt,'
              'tls_key=/etc/esrt/srv.key"')
    metavar = "NAME=IP:PORT[,CONVERSATION][,SETTING=VALUE...]"

    def check(self, value):
        if not isinstance(value, (list, tuple)):
            raise ValueError("listeners must be a list")
        clean = []
        for item in value:
            try:
                clean.append(validate_listener(item))
            except SettingError as exc:
                raise ValueError(str(exc)) from None
        names = [item["name"] for item in clean]
        if len(set(names)) != len(names):
            raise ValueError("two listeners have the same name")
        return clean

    def from_texts(self, texts):
        listeners = []
        for text in texts:
            if not text.strip():
                continue
            try:
                listeners.append(parse_listener_option(text))
            except SettingError as exc:
                raise ValueError(f"{text!r}: " + "; ".join(exc.fields.values())) from None
        return listeners

    def to_texts(self, value):
        return [listener_text(item) for item in value or []]

    def schema(self):
        return {"type": "array", "items": listener_schema()}


class Environment(Kind):
    """Environment variables: a map of NAME to text."""

    control = "lines"
    repeatable = True
    syntax = "NAME=value, e.g. DD_APPFILE01=APPFILE01"
    metavar = "NAME=VALUE"

    def check(self, value):
        if not isinstance(value, dict):
            raise ValueError("env must be an object of NAME: value")
        for key, item in value.items():
            if not ENV_NAME_RE.match(str(key)):
                raise ValueError(f"{key!r} is not a valid environment variable name")
            if not isinstance(item, str):
                raise ValueError(f"value of {key} must be a string")
        return dict(value)

    def from_texts(self, texts):
        env = {}
        for text in texts:
            if not text.strip():
                continue
            try:
                name, value = parse_env_option(text)
            except SettingError as exc:
                raise ValueError("; ".join(exc.fields.values())) from None
            env[name] = value
        return env

    def to_texts(self, value):
        return [f"{name}={text}" for name, text in (value or {}).items()]

    def schema(self):
        return {"type": "object", "additionalProperties": {"type": "string"}}


class Setting:
    """One setting: everything the CLI, the API, the form and the OpenAPI document need.

    `example` is a valid value other than the default (shown in the OpenAPI document; the
    test that walks every setting sets it everywhere). `flag` is the CLI option of
    `esrt server create` (None: the setting is a positional argument).
    """

    def __init__(self, name, kind, default, help, label, example, flag=""):
        self.name = name
        self.kind = kind
        self.default = default
        self.help = help
        self.label = label
        self.example = example
        self.flag = "--" + name.replace("_", "-") if flag == "" else flag

    def validate(self, value):
        """The clean value, or ValueError saying what is wrong."""
        return self.kind.check(value)

    def from_texts(self, texts):
        """The clean value that typed `texts` stand for; SettingError names this setting."""
        try:
            return self.kind.check(self.kind.from_texts(list(texts)))
        except ValueError as exc:
            raise SettingError({self.name: str(exc)}) from None

    def to_texts(self, value):
        """The texts a user would type for `value` (one per line in a form)."""
        return self.kind.to_texts(value)

    def describe(self):
        """Help text with the syntax of one value, where the kind has one."""
        if self.kind.syntax:
            return f"{self.help}; {self.kind.syntax}"
        return self.help

    def schema(self):
        """This setting's property in the JSON schema: type, help, default and example."""
        schema = dict(self.kind.schema(), description=self.help)
        if self.default is not None:
            schema["default"] = self.default
        schema["example"] = self.example
        return schema


LISTENER_SETTINGS = (
    Setting("name", Text(64), None, "listener name, e.g. 'Web Services'", "Name",
            "Web Services"),
    Setting("address", Address(), "127.0.0.1:*", "ip:port to listen on; '*' = any", "Address",
            "127.0.0.1:9003"),
    # An empty conversation means the default, as it always has in region files.
    Setting("conversation", Choice(CONVERSATIONS, dict(CONVERSATION_ALIASES, **{
        "": "web-services"})), "web-services",
            "conversation type: web-services (HTTP/JSON) or esrt (binary)", "Conversation",
            "esrt"),
    Setting("tls_cert", FileName(), None,
            "PEM file of the listener's certificate (and its chain): the listener speaks TLS "
            "1.2 or newer when set; reloaded when the file changes", "TLS certificate",
            "/etc/esrt/tls/server.crt"),
    Setting("tls_key", FileName(), None, "PEM file of the private key of tls_cert",
            "TLS private key", "/etc/esrt/tls/server.key"),
    Setting("tls_client_ca", FileName(), None,
            "PEM file of the CA certificates that sign client certificates: when set, every "
            "client must present one (mutual TLS)", "TLS client CA",
            "/etc/esrt/tls/clients-ca.crt"),
    Setting("auth", OptionalChoice(AUTH_MODES), None,
            "who may call: none (anyone who reaches the listener; the default, allowed only on "
            "a loopback address unless set explicitly), token (Authorization: Bearer, `esrt "
            "mfds token create`), basic (the node's accounts), mtls (a client certificate "
            "whose CN is an account; needs tls_client_ca)", "Authentication", "token"),
    Setting("metrics", OptionalChoice(EXPOSURES), None,
            "GET /metrics: off, auth (for callers the listener authenticates) or open; default "
            "open on a loopback address, else auth with authentication and off without",
            "Metrics", "off"),
    Setting("openapi", OptionalChoice(EXPOSURES), None,
            "GET /openapi.json: off, auth or open; the same default as metrics", "OpenAPI",
            "off"),
    Setting("max_connections", Whole(1, 1000000), 10000,
            "connections open at once; one more is answered 503 and closed",
            "Max connections", 500),
    Setting("head_timeout", Whole(1, 3600), 10,
            "seconds a request (HTTP: its head and body) or a frame (esrt), and a TLS "
            "handshake, may take from its first byte; then 408 and the connection is closed",
            "Head timeout", 30),
    Setting("idle_timeout", Whole(1, 86400), 120,
            "seconds a connection may stay open with no request under way", "Idle timeout",
            600),
    Setting("max_pipelined", OptionalWhole(1, 100000), None,
            "requests one connection may have unanswered before the region stops reading "
            "from it until some are answered; default 32 for HTTP, 256 for esrt (whose "
            "clients pipeline)", "Max pipelined", 64),
    Setting("max_queue", Whole(1, 1000000), 1000,
            "calls of this listener queued or running at once; more are answered 503 with "
            "Retry-After", "Max queue", 100),
)
# The settings a listener's text form carries after its conversation, as name=value.
LISTENER_EXTRAS = tuple(s for s in LISTENER_SETTINGS
                        if s.name not in ("name", "address", "conversation"))


def listener_schema():
    """JSON schema of one listener."""
    return {"type": "object", "required": ["name"], "additionalProperties": False,
            "properties": {s.name: s.schema() for s in LISTENER_SETTINGS}}


def validate_listener(data):
    """Return a clean listener dict or raise SettingError."""
    if not isinstance(data, dict):
        raise SettingError({"listeners": f"each listener must be an object, got {data!r}"})
    clean, errors = {}, {}
    for setting in LISTENER_SETTINGS:
        value = data.get(setting.name, setting.default)
        try:
            clean[setting.name] = setting.validate(value)
        except ValueError as exc:
            errors[f"listener.{setting.name}"] = str(exc)
    if not clean.get("name") and "listener.name" not in errors:
        errors["listener.name"] = "a listener needs a name"
    unknown = set(data) - {s.name for s in LISTENER_SETTINGS}
    if unknown:
        errors["listener"] = f"unknown listener setting(s): {', '.join(sorted(unknown))}"
    if not errors:
        errors.update(listener_problems(clean))
    if errors:
        raise SettingError(errors)
    return clean


def is_loopback_address(address):
    """Whether a listener address ('ip:port') can only be reached from this machine."""
    host = parse_address(address)[0]
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # '*', or a host name that may resolve to anything


def listener_auth(listener):
    """The listener's authentication, with the default filled in ("none")."""
    return listener.get("auth") or "none"


def listener_exposure(listener, what):
    """How a listener serves GET /metrics or /openapi.json (`what`): off, auth or open."""
    chosen = listener.get(what)
    if chosen:
        return chosen
    if is_loopback_address(listener["address"]):
        return "open"
    return "off" if listener_auth(listener) == "none" else "auth"


def listener_problems(listener):
    """What is wrong with a listener's TLS and authentication settings, as {field: problem}."""
    problems = {}
    name, address = listener["name"], listener["address"]
    loopback = is_loopback_address(address)
    if listener.get("auth") is None and not loopback:
        problems["listener.auth"] = (
            f"listener \"{name}\" on {address} can be reached from other machines and has no "
            "authentication: set auth=token, basic or mtls (see `esrt mfds token create`), or "
            "auth=none to let anyone who reaches it call every service")
    if listener.get("auth") in ("token", "basic") and not loopback \
            and not listener.get("tls_cert"):
        problems["listener.tls_cert"] = (
            f"listener \"{name}\" on {address} takes {listener['auth']} credentials from other "
            "machines without TLS, so they would cross the network in clear text: give "
            "tls_cert and tls_key")
    if listener.get("auth") == "mtls" and not listener.get("tls_client_ca"):
        problems["listener.tls_client_ca"] = (
            f"listener \"{name}\" has auth=mtls but no tls_client_ca: give the CA file that "
            "signs the client certificates")
    if listener.get("tls_cert") and not listener.get("tls_key"):
        problems["listener.tls_key"] = (f"listener \"{listener['name']}\" has tls_cert but no "
                                        "tls_key: give the certificate's private key file too")
    if listener.get("tls_key") and not listener.get("tls_cert"):
        problems["listener.tls_cert"] = (f"listener \"{listener['name']}\" has tls_key but no "
                                         "tls_cert: give the certificate file too")
    if listener.get("tls_client_ca") and not listener.get("tls_cert"):
        problems["listener.tls_cert"] = (
            f"listener \"{listener['name']}\" has tls_client_ca but no tls_cert: mutual TLS "
            "needs the listener's own certificate and key as well")
    return problems


def listener_text(listener):
    """The CLI and form text of a listener; the settings left at their default are not shown."""
    text = f"{listener['name']}={listener['address']},{listener['conversation']}"
    for setting in LISTENER_EXTRAS:
        value = listener.get(setting.name, setting.default)
        if value != setting.default:
            text += "," + ",".join(f"{setting.name}={item}"
                                   for item in setting.to_texts(value))
    return text


def parse_listener_option(text):
    """Parse the CLI form 'Name=ip:port[,conversation][,setting=value...]' into a listener."""
    name, sep, rest = str(text).partition("=")
    if not sep or not name.strip():
        raise SettingError(
            {"listeners": f"{text!r} must look like \"Web Services=127.0.0.1:9003\""})
    address, *fields = rest.split(",")
    listener = {"name": name.strip(), "address": address.strip(),
                "conversation": "web-services"}
    if fields and "=" not in fields[0]:
        listener["conversation"] = fields.pop(0).strip() or "web-services"
    known = {setting.name: setting for setting in LISTENER_EXTRAS}
    for field in fields:
        key, sep, value = field.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or key not in known:
            raise SettingError({"listeners": (
                f"{field.strip()!r} in {text!r} is not one of the listener settings "
                f"{', '.join(known)} written as setting=value")})
        try:
            listener[key] = known[key].kind.from_texts([value])
        except ValueError as exc:
            raise SettingError({f"listener.{key}": str(exc)}) from None
    return validate_listener(listener)


def parse_env_option(text):
    """Parse the CLI form NAME=VALUE."""
    name, sep, value = str(text).partition("=")
    if not sep or not ENV_NAME_RE.match(name):
        raise SettingError(
            {"env": f"{text!r} must look like NAME=value (e.g. DD_APPFILE01=APPFILE01)"})
    return name, value


SERVER_SETTINGS = (
    Setting("name", Name(), None, "server (region) name, e.g. ESSRV01", "Name", "ESSRV01",
            flag=None),
    Setting("description", Text(200), "", "free text shown in the admin UI", "Description",
            "Payments, test"),
    Setting("seps", Whole(1, 64), 2, "number of service execution processes", "SEPs", 4),
    Setting("listeners", Listeners(), [], "listeners: name, address, conversation",
            "Listeners", [{"name": "Web Services", "address": "127.0.0.1:9003",
                           "conversation": "web-services"}], flag="--listener"),
    Setting("env", Environment(), {}, "environment for SEPs and batch; relative file names "
            "in values resolve against the data directory", "Environment",
            {"DD_APPFILE01": "APPFILE01"}),
    Setting("root", OptionalPath(), None,
            "region root directory (default $ESRT_HOME/servers/NAME)", "Root directory",
            "/srv/esrt/ESSRV01"),
    Setting("data_dir", OptionalPath(), None, "data directory (default ROOT/data)",
            "Data directory", "/srv/esrt/data/ESSRV01"),
    Setting("deploy_dir", OptionalPath(), None, "deploy directory (default ROOT/deploy)",
            "Deploy directory", "/srv/esrt/deploy/ESSRV01"),
    Setting("casroot", OptionalPath(), None,
            "log directory holding console.log (default ROOT/logs)",
            "Log directory (CASROOT)", "/var/log/esrt/ESSRV01"),
    Setting("max_body", Whole(1024, 64 * 1024 * 1024), 1024 * 1024,
            "largest request body accepted, in bytes (larger: 413)",
            "Largest request body (bytes)", 65536),
    Setting("request_timeout", Whole(1, 3600), 60,
            "seconds a request may run before its SEP is replaced and the caller gets 503",
            "Request timeout (s)", 30),
    Setting("sep_scheduling", Choice(SEP_SCHEDULING), "batch",
            "how the kernel schedules SEPs: batch (a SEP woken for a call does not preempt "
            "the region on a core they share, so the region hands over whole batches: about "
            "10% more short calls per second where SEPs and region share cores) or normal "
            "(a woken SEP may preempt whatever runs on its core, the region or another "
            "program)", "SEP scheduling", "normal"),
    Setting("durability", Choice(DURABILITIES), "sync",
            "commit durability of the data environment: sync (survives a power loss) or "
            "write-nosync (survives a process crash, not an OS crash; faster)",
            "Commit durability", "write-nosync"),
    Setting("idempotency_ttl", Whole(60, 30 * 86400), 86400,
            "seconds a reply stays stored for retries carrying the same Idempotency-Key",
            "Idempotency key lifetime (s)", 3600),
    Setting("checkpoint_interval", Whole(1, 3600), 30,
            "seconds between checkpoints of the data environment (there is one after each "
            "1 MB log file too): each bounds the work of recovery after a crash and removes "
            "the log files recovery no longer needs",
            "Checkpoint interval (s)", 60),
    Setting("history_interval", Whole(1, 60), 5,
            "seconds per point of the graphs of Monitor & Control (calls, errors, latency, "
            "queue, busy SEPs); the region keeps the last hour's points",
            "Graph point interval (s)", 10),
    Setting("keep_logs", Flag(), False,
            "keep the log files that recovery no longer needs (to archive them yourself); "
            "they are removed at each checkpoint otherwise", "Keep log files", True),
    Setting("store", Store(), None,
            "where the server's INDEXED and RELATIVE files are kept: empty for the embedded "
            "Berkeley DB environment in the data directory, or a PostgreSQL database (a libpq "
            "connection string) that regions on several nodes can serve at once",
            "File store (PostgreSQL)", "host=db1 dbname=esrt user=esrt"),
    Setting("standby", Flag(), False,
            "start as a standby: listeners wait for their address, but the data environment "
            "is opened and SEPs started only by `esrt server activate` (for a region "
            "pre-started on a cluster's standby node)", "Start as standby", True),
)

SERVER_SETTING_NAMES = tuple(s.name for s in SERVER_SETTINGS)


def server_setting(name):
    """The entry of SERVER_SETTINGS called `name` ('-' taken as '_'); SettingError if none."""
    key = str(name).strip().replace("-", "_")
    for setting in SERVER_SETTINGS:
        if setting.name == key:
            return setting
    raise SettingError({str(name): f"no such setting; known: {', '.join(SERVER_SETTING_NAMES)}"})


def definition_schema(partial=False):
    """JSON schema of a server definition; partial=True for changes (nothing required)."""
    schema = {"type": "object", "additionalProperties": False,
              "properties": {s.name: s.schema() for s in SERVER_SETTINGS}}
    if not partial:
        schema["required"] = ["name"]
    return schema


def validate_server(data, partial=False):
    """Return a clean server definition with defaults filled in, or raise SettingError.

    With partial=True only the given keys are checked (for updates).
    """
    if not isinstance(data, dict):
        raise SettingError({"server": "a server definition must be a JSON object"})
    clean, errors = {}, {}
    unknown = set(data) - set(SERVER_SETTING_NAMES)
    if unknown:
        errors["server"] = (f"unknown setting(s): {', '.join(sorted(unknown))}; "
                            f"known: {', '.join(SERVER_SETTING_NAMES)}")
    for setting in SERVER_SETTINGS:
        if setting.name not in data:
            if partial:
                continue
            if setting.default is None and setting.name == "name":
                errors["name"] = "a server needs a name"
                continue
            value = setting.default
            clean[setting.name] = list(value) if isinstance(value, list) else (
                dict(value) if isinstance(value, dict) else value)
            continue
        try:
            clean[setting.name] = setting.validate(data[setting.name])
        except ValueError as exc:
            errors[setting.name] = str(exc)
    if errors:
        raise SettingError(errors)
    return clean
