"""Where ``defender-agent`` takes its enrollment token from, and that it never repeats it."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent_bridge.agent import AgentConfigError
from agent_bridge.agent_cli import ENROLL_TOKEN_ENV, _parser, enroll_token

TOKEN = "dfe1." + "s" * 43 + "." + "f" * 22
BASE = ["--server", "wss://bot.example:8765/agent", "--id", "host42", "--state-dir", "C:\\state"]


def token_from(*flags: str, environ: dict[str, str] | None = None) -> str | None:
    return enroll_token(_parser().parse_args([*BASE, *flags]), {} if environ is None else environ)


def test_from_the_environment_and_taken_out_of_it() -> None:
    environ = {ENROLL_TOKEN_ENV: TOKEN + "\n", "PATH": "/bin"}
    assert token_from(environ=environ) == TOKEN
    assert environ == {"PATH": "/bin"}  # no tool the agent starts inherits it


def test_from_a_file_which_is_left_in_place(tmp_path: Path) -> None:
    path = tmp_path / "token"
    path.write_text("\ufeff" + TOKEN + "\r\n", encoding="utf-8")  # PowerShell 5's Set-Content -Encoding UTF8
    assert token_from("--enroll-token-file", str(path)) == TOKEN
    assert path.exists()


def test_from_the_command_line_with_a_warning_that_does_not_repeat_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    assert token_from("--enroll-token", TOKEN) == TOKEN
    (record,) = caplog.records
    assert "process list" in record.getMessage()
    assert TOKEN not in record.getMessage()


def test_none_at_all_once_enrolled() -> None:
    assert token_from() is None
    assert token_from(environ={ENROLL_TOKEN_ENV: ""}) is None


@pytest.mark.parametrize(
    ("flags", "environ", "error"),
    [
        pytest.param(
            ["--enroll-token", TOKEN],
            {ENROLL_TOKEN_ENV: TOKEN},
            f"the enrollment token was given 2 ways (--enroll-token, {ENROLL_TOKEN_ENV}); give it one way",
            id="flag-and-environment",
        ),
        pytest.param(
            ["--enroll-token-file", "{missing}"],
            {},
            "--enroll-token-file {missing}: No such file or directory",
            id="missing-file",
        ),
        pytest.param(
            ["--enroll-token-file", "{empty}"], {}, "--enroll-token-file {empty} is empty", id="empty-file"
        ),
    ],
)
def test_mistakes_are_named_without_the_token(
    tmp_path: Path, flags: list[str], environ: dict[str, str], error: str
) -> None:
    (tmp_path / "empty").write_text(" \n")
    paths = {"missing": tmp_path / "missing", "empty": tmp_path / "empty"}
    with pytest.raises(AgentConfigError) as caught:
        token_from(*(f.format(**paths) for f in flags), environ=environ)
    assert str(caught.value) == error.format(**paths)
    assert TOKEN not in str(caught.value)
