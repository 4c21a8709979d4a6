"""The bot's settings, read once from the environment at the entry point and passed down from there.

A missing or bad value stops start-up with one line that names the variable and says what it needs.
"""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_SLACK_API_URL = "https://slack.com/api/"
_DURATION = re.compile(r"^\s*(\d+)\s*([smhd])\s*$")


def parse_duration(text: str) -> float:
    """``"15m"`` → 900.0. A number followed by s, m, h or d."""
    match = _DURATION.match(text)
    if not match:
        raise ValueError(f"{text!r} is not a duration; write a number followed by s, m, h or d, like 15m")
    return int(match.group(1)) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[match.group(2)]


class SettingsError(Exception):
    """One line, naming the setting, for the operator."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(case_sensitive=True, extra="ignore", frozen=True)

    slack_bot_token: SecretStr = Field(alias="SLACK_BOT_TOKEN")
    slack_signing_secret: SecretStr = Field(alias="SLACK_SIGNING_SECRET")
    slack_app_token: SecretStr | None = Field(default=None, alias="SLACK_APP_TOKEN")
    slack_api_url: str = Field(default=DEFAULT_SLACK_API_URL, alias="SLACK_API_URL")
    policy: Path = Field(alias="DEFENDER_POLICY")
    data_dir: Path = Field(alias="DEFENDER_DATA_DIR")
    http_host: str = Field(default="127.0.0.1", alias="DEFENDER_HTTP_HOST")
    http_port: int = Field(default=3000, ge=0, le=65535, alias="DEFENDER_HTTP_PORT")
    bridge_host: str = Field(default="127.0.0.1", alias="DEFENDER_BRIDGE_HOST")
    bridge_port: int = Field(default=8765, ge=0, le=65535, alias="DEFENDER_BRIDGE_PORT")
    bridge_tls_cert: Path | None = Field(default=None, alias="DEFENDER_BRIDGE_TLS_CERT")
    bridge_tls_key: Path | None = Field(default=None, alias="DEFENDER_BRIDGE_TLS_KEY")
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

    @field_validator("job_ttl", mode="before")
    @classmethod
    def _ttl(cls, value: object) -> object:
        return parse_duration(value) if isinstance(value, str) else value

    @field_validator("policy")
    @classmethod
    def _policy_exists(cls, value: Path) -> Path:
        if not value.is_file():
            raise ValueError(f"no policy file at {value}")
        return value

    @model_validator(mode="after")
    def _tls_pair(self) -> Settings:
        if (self.bridge_tls_cert is None) != (self.bridge_tls_key is None):
            raise ValueError(
                "DEFENDER_BRIDGE_TLS_CERT and DEFENDER_BRIDGE_TLS_KEY go together; set both or neither"
            )
        for path in (self.bridge_tls_cert, self.bridge_tls_key):
            if path is not None and not path.is_file():
                raise ValueError(f"no file at {path}")
        return self


def load_settings(environ: dict[str, str]) -> Settings:
    """Read settings from ``environ`` (the entry point passes ``os.environ``); raise SettingsError."""
    try:
        return Settings.model_validate(environ)
    except ValidationError as exc:
        error = exc.errors(include_url=False)[0]
        name = ".".join(str(part) for part in error["loc"]) or "settings"
        message = str(error["msg"]).removeprefix("Value error, ")
        if error["type"] == "missing":
            message = "is not set"
        raise SettingsError(f"{name} {message}") from exc
