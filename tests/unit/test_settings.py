"""Settings are read once; a missing or bad one stops start-up with one line that names it."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.settings import SettingsError, load_settings, parse_duration


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
        pytest.param({"DEFENDER_BRIDGE_TLS_CERT": "/x.pem"}, "go together", id="half-tls"),
        pytest.param(
            {"DEFENDER_JOB_TTL": "an hour"}, "DEFENDER_JOB_TTL 'an hour' is not a duration", id="ttl"
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
