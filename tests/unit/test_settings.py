"""Settings are read once; a missing or bad one stops start-up with one line that names it."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.settings import SettingsError, load_admin_settings, load_settings, parse_duration
from tests.tlscert import make_certificate


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    policy = tmp_path / "policy.toml"
    policy.write_text("")
    return {
        "SLACK_BOT_TOKEN": "xoxb-1-2-3",
        "SLACK_SIGNING_SECRET": "0123456789abcdef0123",
        "DEFENDER_POLICY": str(policy),
        "DEFENDER_DATA_DIR": str(tmp_path / "data"),
    }


def test_defaults(env: dict[str, str]) -> None:
    settings = load_settings(env)
    assert (settings.http_host, settings.http_port) == ("127.0.0.1", 3000)
    assert (settings.bridge_host, settings.bridge_port) == ("127.0.0.1", 8765)
    assert settings.slack_api_url == "https://slack.com/api/"
    assert settings.job_ttl == 3600.0
    assert "xoxb" not in repr(settings)  # secrets never print


@pytest.mark.parametrize(
    ("change", "message"),
    [
        pytest.param({"SLACK_BOT_TOKEN": None}, "SLACK_BOT_TOKEN is not set", id="missing-token"),
        pytest.param(
            {"SLACK_BOT_TOKEN": "xoxp-user"}, "SLACK_BOT_TOKEN must be a bot token", id="user-token"
        ),
        pytest.param(
            {"SLACK_SIGNING_SECRET": "short"}, "SLACK_SIGNING_SECRET is too short", id="short-secret"
        ),
        pytest.param(
            {"SLACK_APP_TOKEN": "xoxb-x"}, "SLACK_APP_TOKEN must be an app-level token", id="app-token"
        ),
        pytest.param({"SLACK_API_URL": "slack.com"}, "SLACK_API_URL must be an http(s) URL", id="api-url"),
        pytest.param(
            {"DEFENDER_POLICY": "/nonexistent.toml"}, "DEFENDER_POLICY no policy file", id="no-policy"
        ),
        pytest.param({"DEFENDER_HTTP_PORT": "99999"}, "DEFENDER_HTTP_PORT", id="port-range"),
        pytest.param({"DEFENDER_BRIDGE_PORT": "http"}, "DEFENDER_BRIDGE_PORT", id="port-type"),
        pytest.param(
            {"DEFENDER_JOB_TTL": "an hour"}, "DEFENDER_JOB_TTL 'an hour' is not a duration", id="ttl"
        ),
        pytest.param({"DEFENDER_JOB_TTL": "0s"}, "DEFENDER_JOB_TTL must be more than 0", id="ttl-zero"),
        pytest.param({"DEFENDER_JOB_TTL": "0h"}, "DEFENDER_JOB_TTL must be more than 0", id="ttl-zero-hours"),
        pytest.param(
            {"DEFENDER_BRIDGE_TLS_CERT": "/nope", "DEFENDER_BRIDGE_TLS_KEY": "/nope"},
            "DEFENDER_BRIDGE_TLS_CERT no file at /nope",
            id="no-cert-file",
        ),
        pytest.param(
            {"DEFENDER_BRIDGE_TLS_KEY": "/nope"}, "DEFENDER_BRIDGE_TLS_KEY no file at /nope", id="no-key"
        ),
        pytest.param({"DEFENDER_BRIDGE_TLS_CERT": ""}, "DEFENDER_BRIDGE_TLS_CERT is empty", id="empty-cert"),
        pytest.param(
            {"DEFENDER_DATA_DIR": ""}, "DEFENDER_DATA_DIR is empty; give the directory", id="empty-dir"
        ),
        pytest.param(
            {"DEFENDER_DATA_DIR": "/etc/hostname"},
            "DEFENDER_DATA_DIR /etc/hostname is not a directory",
            id="dir-is-a-file",
        ),
        pytest.param(
            {"DEFENDER_HTTP_HOST": "not..a..host"},
            "DEFENDER_HTTP_HOST 'not..a..host' is not an IP address or host name",
            id="bad-http-host",
        ),
        pytest.param(
            {"DEFENDER_BRIDGE_HOST": "-bad-.example"},
            "DEFENDER_BRIDGE_HOST '-bad-.example' is not an IP address or host name",
            id="bad-bridge-host",
        ),
        pytest.param({"DEFENDER_HTTP_HOST": ""}, "DEFENDER_HTTP_HOST is empty", id="empty-host"),
        pytest.param(
            {"DEFENDER_BRIDGE_HOST": "0.0.0.0"},
            "DEFENDER_BRIDGE_HOST 0.0.0.0 is not a loopback address, so agents would connect over plain "
            "ws:// that anyone on the network can read: set DEFENDER_BRIDGE_TLS_CERT and "
            "DEFENDER_BRIDGE_TLS_KEY, or DEFENDER_BRIDGE_INSECURE=1 to serve ws:// anyway",
            id="plain-ws-off-loopback",
        ),
        pytest.param(
            {"DEFENDER_BRIDGE_HOST": "bot.corp.example", "DEFENDER_BRIDGE_INSECURE": "0"},
            "DEFENDER_BRIDGE_HOST bot.corp.example is not a loopback address",
            id="plain-ws-on-a-name",
        ),
    ],
)
def test_bad_settings_name_themselves(
    env: dict[str, str], change: dict[str, str | None], message: str
) -> None:
    for key, value in change.items():
        if value is None:
            env.pop(key)
        else:
            env[key] = value
    with pytest.raises(SettingsError) as info:
        load_settings(env)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_api_url_gets_a_trailing_slash(env: dict[str, str]) -> None:
    env["SLACK_API_URL"] = "http://127.0.0.1:9/api"
    assert load_settings(env).slack_api_url == "http://127.0.0.1:9/api/"


@pytest.mark.parametrize(("text", "seconds"), [("15m", 900), ("1h", 3600), ("30s", 30), (" 2d ", 172800)])
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("host", ["127.0.0.1", "::1", "localhost", "127.0.0.2"])
def test_plain_ws_on_loopback_needs_no_flag(env: dict[str, str], host: str) -> None:
    env["DEFENDER_BRIDGE_HOST"] = host
    settings = load_settings(env)
    assert not settings.bridge_tls and not settings.plain_ws_off_loopback


def test_plain_ws_off_loopback_needs_the_explicit_flag(env: dict[str, str]) -> None:
    env |= {"DEFENDER_BRIDGE_HOST": "0.0.0.0", "DEFENDER_BRIDGE_INSECURE": "1"}
    settings = load_settings(env)
    assert settings.bridge_insecure and settings.plain_ws_off_loopback


def test_tls_off_loopback_needs_no_flag(env: dict[str, str], tmp_path: Path) -> None:
    cert, key = make_certificate(tmp_path)
    env |= {"DEFENDER_BRIDGE_HOST": "0.0.0.0", "DEFENDER_BRIDGE_TLS_CERT": str(cert)}
    env["DEFENDER_BRIDGE_TLS_KEY"] = str(key)
    settings = load_settings(env)
    assert settings.bridge_tls and not settings.plain_ws_off_loopback


@pytest.mark.parametrize(
    ("which", "message"),
    [
        pytest.param("cert", "DEFENDER_BRIDGE_TLS_CERT {cert} is not a PEM certificate", id="cert"),
        pytest.param(
            "key", "DEFENDER_BRIDGE_TLS_KEY {key} is not a PEM private key for the certificate", id="key"
        ),
        pytest.param("other-key", "DEFENDER_BRIDGE_TLS_KEY {key} is not a PEM private key", id="mismatch"),
        pytest.param("half", "DEFENDER_BRIDGE_TLS_KEY is not set: DEFENDER_BRIDGE_TLS_CERT and", id="half"),
    ],
)
def test_tls_files_are_checked_at_start_not_when_the_bridge_listens(
    env: dict[str, str], tmp_path: Path, which: str, message: str
) -> None:
    cert, key = make_certificate(tmp_path)
    if which == "cert":
        cert.write_text("not a certificate\n")
    elif which == "key":
        key.write_text("-----BEGIN PRIVATE KEY-----\nbm9wZQ==\n-----END PRIVATE KEY-----\n")
    elif which == "other-key":
        _, key = make_certificate(tmp_path, "other")
    env["DEFENDER_BRIDGE_TLS_CERT"] = str(cert)
    if which != "half":
        env["DEFENDER_BRIDGE_TLS_KEY"] = str(key)
    with pytest.raises(SettingsError) as info:
        load_settings(env)
    assert str(info.value).startswith(message.format(cert=cert, key=key)), str(info.value)
    assert "\n" not in str(info.value)


def test_admin_commands_need_only_the_data_dir_and_bridge(tmp_path: Path) -> None:
    """`enroll`, `revoke` and `audit verify` run without Slack settings, with the same checks."""
    settings = load_admin_settings({"DEFENDER_DATA_DIR": str(tmp_path)})
    assert settings.data_dir == tmp_path and not settings.bridge_tls
    with pytest.raises(SettingsError, match=r"^DEFENDER_BRIDGE_TLS_CERT no file at /nope$"):
        load_admin_settings(
            {
                "DEFENDER_DATA_DIR": str(tmp_path),
                "DEFENDER_BRIDGE_TLS_CERT": "/nope",
                "DEFENDER_BRIDGE_TLS_KEY": "/x",
            }
        )
