"""The one table of server (region) and listener settings.

Every setting is declared once here: its name, how to validate it, its default and its help.
The CLI, the repository (mfds), region files and the admin UI all validate through
`validate_server`, so a definition that one of them accepts, all of them accept.
"""

import ipaddress
import re

NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,31}$")
ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
CONVERSATIONS = ("web-services", "esrt")
DURABILITIES = ("sync", "write-nosync")
CONVERSATION_ALIASES = {"web services": "web-services", "web services and j2ee": "web-services",
                        "http": "web-services", "esrt": "esrt", "binary": "esrt"}


class SettingError(ValueError):
    """A definition that cannot be used; `fields` maps setting name -> what is wrong."""

    def __init__(self, fields):
        self.fields = dict(fields)
        super().__init__("; ".join(f"{k}: {v}" for k, v in self.fields.items()))


class Setting:
    """One setting: a name, a validator that returns the clean value or raises ValueError."""

    def __init__(self, name, validate, default, help):
        self.name = name
        self.validate = validate
        self.default = default
        self.help = help


def _name(value):
    value = str(value)
    if not NAME_RE.match(value):
        raise ValueError(f"{value!r} is not a valid name: use a letter then up to 31 letters, "
                         "digits, '-' or '_' (e.g. ESSRV01)")
    return value


def _int_range(low, high):
    def check(value):
        try:
            number = int(value)
        except (TypeError, ValueError):
            raise ValueError(f"{value!r} is not a whole number") from None
        if isinstance(value, bool) or not low <= number <= high:
            raise ValueError(f"{value!r} must be between {low} and {high}")
        return number
    return check


def _text(limit):
    def check(value):
        value = "" if value is None else str(value)
        if len(value) > limit:
            raise ValueError(f"longer than {limit} characters")
        return value
    return check


def _optional_path(value):
    if value in (None, ""):
        return None
    return str(value)


def _boolean(value):
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "yes", "on", "1"):
        return True
    if text in ("false", "no", "off", "0"):
        return False
    raise ValueError(f"{value!r} is not true or false")


def _choice(choices):
    def check(value):
        if value not in choices:
            raise ValueError(f"{value!r} is not one of {', '.join(choices)}")
        return value
    return check


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


def _address(value):
    return format_address(*parse_address(value))


def _conversation(value):
    value = str(value or "web-services")
    clean = CONVERSATION_ALIASES.get(value.lower(), value.lower())
    if clean not in CONVERSATIONS:
        raise ValueError(f"conversation type {value!r} is unknown: use one of "
                         f"{', '.join(CONVERSATIONS)}")
    return clean


LISTENER_SETTINGS = (
    Setting("name", _text(64), None, "listener name, e.g. 'Web Services'"),
    Setting("address", _address, "127.0.0.1:*", "ip:port to listen on; '*' = any"),
    Setting("conversation", _conversation, "web-services",
            "conversation type: web-services or esrt"),
)


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
    if errors:
        raise SettingError(errors)
    return clean


def parse_listener_option(text):
    """Parse the CLI form 'Name=ip:port[,conversation]' into a listener dict."""
    name, sep, rest = str(text).partition("=")
    if not sep or not name.strip():
        raise SettingError(
            {"listeners": f"{text!r} must look like \"Web Services=127.0.0.1:9003\""})
    address, _, conversation = rest.partition(",")
    return validate_listener({"name": name.strip(), "address": address.strip(),
                              "conversation": conversation.strip() or "web-services"})


def _listeners(value):
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


def _environment(value):
    if not isinstance(value, dict):
        raise ValueError("env must be an object of NAME: value")
    for key, item in value.items():
        if not ENV_NAME_RE.match(str(key)):
            raise ValueError(f"{key!r} is not a valid environment variable name")
        if not isinstance(item, str):
            raise ValueError(f"value of {key} must be a string")
    return dict(value)


SERVER_SETTINGS = (
    Setting("name", _name, None, "server (region) name, e.g. ESSRV01"),
    Setting("description", _text(200), "", "free text shown in the admin UI"),
    Setting("seps", _int_range(1, 64), 2, "number of service execution processes"),
    Setting("listeners", _listeners, [], "listeners: name, address, conversation"),
    Setting("env", _environment, {}, "environment for SEPs and batch; relative file names in "
            "values resolve against the data directory"),
    Setting("root", _optional_path, None,
            "region root directory (default $ESRT_HOME/servers/NAME)"),
    Setting("data_dir", _optional_path, None, "data directory (default ROOT/data)"),
    Setting("deploy_dir", _optional_path, None, "deploy directory (default ROOT/deploy)"),
    Setting("casroot", _optional_path, None,
            "log directory holding console.log (default ROOT/logs)"),
    Setting("max_body", _int_range(1024, 64 * 1024 * 1024), 1024 * 1024,
            "largest request body accepted, in bytes (larger: 413)"),
    Setting("request_timeout", _int_range(1, 3600), 60,
            "seconds a request may run before its SEP is replaced and the caller gets 503"),
    Setting("durability", _choice(DURABILITIES), "sync",
            "commit durability of the data environment: sync (survives a power loss) or "
            "write-nosync (survives a process crash, not an OS crash; faster)"),
    Setting("idempotency_ttl", _int_range(60, 30 * 86400), 86400,
            "seconds a reply stays stored for retries carrying the same Idempotency-Key"),
    Setting("standby", _boolean, False,
            "start as a standby: listeners wait for their address, but the data environment "
            "is opened and SEPs started only by `esrt server activate` (for a region "
            "pre-started on a cluster's standby node)"),
)

SERVER_SETTING_NAMES = tuple(s.name for s in SERVER_SETTINGS)


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


def parse_env_option(text):
    """Parse the CLI form NAME=VALUE."""
    name, sep, value = str(text).partition("=")
    if not sep or not ENV_NAME_RE.match(name):
        raise SettingError(
            {"env": f"{text!r} must look like NAME=value (e.g. DD_APPFILE01=APPFILE01)"})
    return name, value
