"""The bot's settings, read once from the environment at the entry point and passed down from there.

A missing or bad value stops start-up with one line that names the variable and says what it needs.
:class:`AdminSettings` is the part the admin commands (``enroll``, ``revoke``, ``audit verify``) need;
:class:`Settings`, for ``serve``, adds Slack and the policy. Both are checked the same way.
"""

from __future__ import annotations

import ipaddress
import re
import ssl
from pathlib import Path
from typing import Any, TypeVar

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_SLACK_API_URL = "https://slack.com/api/"
_DURATION = re.compile(r"^\s*(\d+)\s*([smhd])\s*$")
_HOST_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")


def parse_duration(text: str) -> float:
    """``"15m"`` → 900.0. A number followed by s, m, h or d."""
    match = _DURATION.match(text)
    if not match:
        raise ValueError(f"{text!r} is not a duration; write a number followed by s, m, h or d, like 15m")
    return int(match.group(1)) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[match.group(2)]


class SettingsError(Exception):
    """One line, naming the setting, for the operator."""


class _NamedError(ValueError):
    """A mistake found across settings (a model validator), naming the one to fix: pydantic would
    otherwise report it without a name."""

    def __init__(self, name: str, message: str) -> None:
        super().__init__(message)
        self.name = name


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _host(value: str) -> str:
    if not value:
        raise ValueError("is empty; give an address such as 127.0.0.1")
    try:
        ipaddress.ip_address(value)
    except ValueError:
        labels = value.removesuffix(".").split(".")
        if len(value) > 253 or not all(_HOST_LABEL.match(label) for label in labels):
            raise ValueError(f"{value!r} is not an IP address or host name") from None
    return value


def _not_empty(value: object, what: str) -> object:
    if isinstance(value, str) and not value.strip():
        raise ValueError(f"is empty; {what}")
    return value


class AdminSettings(BaseSettings):
    """Where the bot keeps its data, and where and how its agent bridge listens."""

    model_config = SettingsConfigDict(case_sensitive=True, extra="ignore", frozen=True)

    data_dir: Path = Field(alias="DEFENDER_DATA_DIR")
    bridge_host: str = Field(default="127.0.0.1", alias="DEFENDER_BRIDGE_HOST")
    bridge_port: int = Field(default=8765, ge=0, le=65535, alias="DEFENDER_BRIDGE_PORT")
    bridge_tls_cert: Path | None = Field(default=None, alias="DEFENDER_BRIDGE_TLS_CERT")
    bridge_tls_key: Path | None = Field(default=None, alias="DEFENDER_BRIDGE_TLS_KEY")
    bridge_insecure: bool = Field(default=False, alias="DEFENDER_BRIDGE_INSECURE")

    @field_validator("data_dir", mode="before")
    @classmethod
    def _data_dir_given(cls, value: object) -> object:
        return _not_empty(value, "give the directory for the job store, audit log and keys")

    @field_validator("data_dir")
    @classmethod
    def _data_dir_is_a_directory(cls, value: Path) -> Path:
        if value.exists() and not value.is_dir():
            raise ValueError(f"{value} is not a directory")
        return value

    @field_validator("bridge_host")
    @classmethod
    def _bridge_host(cls, value: str) -> str:
        return _host(value)

    @field_validator("bridge_tls_cert", "bridge_tls_key", mode="before")
    @classmethod
    def _tls_given(cls, value: object) -> object:
        return _not_empty(value, "give the path of a PEM file, or unset it for no TLS")

    @field_validator("bridge_tls_cert", "bridge_tls_key")
    @classmethod
    def _tls_file(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_file():
            raise ValueError(f"no file at {value}")
        return value

    @model_validator(mode="after")
    def _tls(self) -> AdminSettings:
        cert, key = self.bridge_tls_cert, self.bridge_tls_key
        if (cert is None) != (key is None):
            raise _NamedError(
                "DEFENDER_BRIDGE_TLS_CERT" if cert is None else "DEFENDER_BRIDGE_TLS_KEY",
                "is not set: DEFENDER_BRIDGE_TLS_CERT and DEFENDER_BRIDGE_TLS_KEY go together; set both or "
                "neither",
            )
        if cert is not None and key is not None:
            _check_pem(cert, key)
        elif not is_loopback(self.bridge_host) and not self.bridge_insecure:
            raise _NamedError(
                "DEFENDER_BRIDGE_HOST",
                f"{self.bridge_host} is not a loopback address, so agents would connect over plain ws:// "
                "that anyone on the network can read: set DEFENDER_BRIDGE_TLS_CERT and "
                "DEFENDER_BRIDGE_TLS_KEY, or DEFENDER_BRIDGE_INSECURE=1 to serve ws:// anyway",
            )
        return self

    @property
    def bridge_tls(self) -> bool:
        return self.bridge_tls_cert is not None

    @property
    def plain_ws_off_loopback(self) -> bool:
        """DEFENDER_BRIDGE_INSECURE in use: plain ws:// on an address others can reach."""
        return not self.bridge_tls and not is_loopback(self.bridge_host)


def _check_pem(cert: Path, key: Path) -> None:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.load_verify_locations(cafile=cert)  # parses the certificate alone
    except (ssl.SSLError, OSError, ValueError) as exc:
        why = _why(exc)
        raise _NamedError("DEFENDER_BRIDGE_TLS_CERT", f"{cert} is not a PEM certificate ({why})") from exc
    try:
        context.load_cert_chain(cert, key)
    except (ssl.SSLError, OSError, ValueError) as exc:
        raise _NamedError(
            "DEFENDER_BRIDGE_TLS_KEY",
            f"{key} is not a PEM private key for the certificate in DEFENDER_BRIDGE_TLS_CERT ({_why(exc)})",
        ) from exc


def _why(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLError):
        return str(exc.reason or exc).lower().replace("_", " ")
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc)


class Settings(AdminSettings):
    """Everything ``defender-bot serve`` needs."""

    slack_bot_token: SecretStr = Field(alias="SLACK_BOT_TOKEN")
    slack_signing_secret: SecretStr = Field(alias="SLACK_SIGNING_SECRET")
    slack_app_token: SecretStr | None = Field(default=None, alias="SLACK_APP_TOKEN")
    slack_api_url: str = Field(default=DEFAULT_SLACK_API_URL, alias="SLACK_API_URL")
    policy: Path = Field(alias="DEFENDER_POLICY")
    http_host: str = Field(default="127.0.0.1", alias="DEFENDER_HTTP_HOST")
    http_port: int = Field(default=3000, ge=0, le=65535, alias="DEFENDER_HTTP_PORT")
    job_ttl: float = Field(default=3600.0, alias="DEFENDER_JOB_TTL")
    channel_burst: int = Field(default=3, ge=1, le=50, alias="DEFENDER_SLACK_BURST")

    @field_validator("slack_bot_token")
    @classmethod
    def _bot_token(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value().startswith("xoxb-"):
            raise ValueError("must be a bot token starting with xoxb-")
        return value

    @field_validator("slack_app_token")
    @classmethod
    def _app_token(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().startswith("xapp-"):
            raise ValueError("must be an app-level token starting with xapp- (or unset for HTTP mode)")
        return value

    @field_validator("slack_signing_secret")
    @classmethod
    def _secret(cls, value: SecretStr) -> SecretStr:
        if len(value.get_secret_value()) < 16:
            raise ValueError("is too short to be a Slack signing secret")
        return value

    @field_validator("slack_api_url")
    @classmethod
    def _api_url(cls, value: str) -> str:
        if not re.match(r"^https?://[^/\s]+(/.*)?$", value):
            raise ValueError("must be an http(s) URL such as https://slack.com/api/")
        return value if value.endswith("/") else value + "/"

    @field_validator("http_host")
    @classmethod
    def _http_host(cls, value: str) -> str:
        return _host(value)

    @field_validator("job_ttl", mode="before")
    @classmethod
    def _ttl(cls, value: object) -> object:
        return parse_duration(value) if isinstance(value, str) else value

    @field_validator("job_ttl")
    @classmethod
    def _ttl_positive(cls, value: float) -> float:
        if not value > 0:
            raise ValueError("must be more than 0, such as 1h (a job that expires at once never runs)")
        return value

    @field_validator("policy")
    @classmethod
    def _policy_exists(cls, value: Path) -> Path:
        if not value.is_file():
            raise ValueError(f"no policy file at {value}")
        return value


_S = TypeVar("_S", bound=AdminSettings)


def load_settings(environ: dict[str, str]) -> Settings:
    """Read settings from ``environ`` (the entry point passes ``os.environ``); raise SettingsError."""
    return _load(Settings, environ)


def load_admin_settings(environ: dict[str, str]) -> AdminSettings:
    """The settings ``enroll``, ``revoke`` and ``audit verify`` need (no Slack token, no policy)."""
    return _load(AdminSettings, environ)


def _load(model: type[_S], environ: dict[str, str]) -> _S:
    try:
        return model.model_validate(environ)
    except ValidationError as exc:
        error: Any = exc.errors(include_url=False)[0]
        name = ".".join(str(part) for part in error["loc"]) or "settings"
        original = (error.get("ctx") or {}).get("error")
        if isinstance(original, _NamedError):
            name = original.name
        message = str(error["msg"]).removeprefix("Value error, ")
        if error["type"] == "missing":
            message = "is not set"
        raise SettingsError(f"{name} {message}") from exc
