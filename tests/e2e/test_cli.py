"""The console scripts as a user runs them: the demo driven from standard input, and start-up errors."""

from __future__ import annotations

import json
import socket
import subprocess
from pathlib import Path

import pytest

from bot.admin import DataDirLock
from bot.slack_standin import SlackStandIn
from bot.store import Store
from tests.e2e.processes import BIN, Process
from tests.tlscert import make_certificate

pytestmark = pytest.mark.e2e

DEMO_SCRIPT = """\
/defender help
/defender scan host42 custom C:\\Users\\Public\\Downloads\\eicar.com --no-remediation
/defender scan host43
:as eve
/defender scan host42
"""


def test_the_demo_runs_a_script_from_standard_input(tmp_path: Path) -> None:
    done = subprocess.run(
        [str(BIN / "defender-bot"), "demo", "--keep", str(tmp_path / "demo")],
        input=DEMO_SCRIPT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    out = done.stdout
    assert done.returncode == 0, done.stderr
    assert "alice@#secops> /defender help" in out
    assert "Defender commands you can run here" in out
    assert "Virus:DOS/EICAR_Test_File" in out  # the detection, threaded under its root message
    assert "│" in out
    assert "0x800106BA" in out  # host43's disabled service, explained
    assert "eve@#secops> /defender scan host42" in out
    assert "Not allowed" in out
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(
    ("drop", "line"),
    [
        pytest.param("SLACK_SIGNING_SECRET", "defender-bot: SLACK_SIGNING_SECRET is not set", id="secret"),
        pytest.param("DEFENDER_DATA_DIR", "defender-bot: DEFENDER_DATA_DIR is not set", id="data-dir"),
    ],
)
def test_serve_stops_with_one_line_naming_the_missing_setting(tmp_path: Path, drop: str, line: str) -> None:
    policy = tmp_path / "policy.toml"
    policy.write_text("")
    env = {
        "PATH": "/usr/bin:/bin",
        "SLACK_BOT_TOKEN": "xoxb-1",
        "SLACK_SIGNING_SECRET": "0123456789abcdef",
        "DEFENDER_POLICY": str(policy),
        "DEFENDER_DATA_DIR": str(tmp_path / "data"),
    }
    env.pop(drop)
    done = subprocess.run(
        [str(BIN / "defender-bot"), "serve"], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 2
    assert done.stderr.strip() == line


def test_a_bad_policy_stops_serve_with_the_key_and_reason(tmp_path: Path) -> None:
    policy = tmp_path / "policy.toml"
    policy.write_text('[roles.r]\ncommands = ["scna.quick"]\n')
    env = {
        "PATH": "/usr/bin:/bin",
        "SLACK_BOT_TOKEN": "xoxb-1",
        "SLACK_SIGNING_SECRET": "0123456789abcdef",
        "DEFENDER_POLICY": str(policy),
        "DEFENDER_DATA_DIR": str(tmp_path / "data"),
    }
    done = subprocess.run(
        [str(BIN / "defender-bot"), "serve"], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 2
    assert "roles.r.commands: 'scna.quick' matches no command; did you mean 'scan.quick'?" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def run_cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "defender-bot"), *args],
        env={"PATH": "/usr/bin:/bin", **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_audit_verify_on_a_mistyped_data_dir_fails_and_creates_nothing(tmp_path: Path) -> None:
    typo = tmp_path / "dta"
    done = run_cli("audit", "verify", env={"DEFENDER_DATA_DIR": str(typo)})
    assert done.returncode == 1
    assert done.stderr.strip() == (
        f"defender-bot: cannot verify the audit log: no database at {typo / 'defender.db'}; "
        "is DEFENDER_DATA_DIR right?"
    )
    assert "chain intact" not in done.stdout
    assert not typo.exists()


def test_audit_verify_without_a_stored_head_fails(tmp_path: Path) -> None:
    """A log whose database was swapped for an empty one: with no head, lines cut off the end would pass."""
    data = tmp_path / "data"
    Store(data / "defender.db").close()
    (data / "audit.jsonl").write_text("")
    done = run_cli("audit", "verify", env={"DEFENDER_DATA_DIR": str(data)})
    assert done.returncode == 1
    assert "holds no audit head: the bot has written no audit entry there" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def serve_env(tmp_path: Path, **changes: str) -> dict[str, str]:
    policy = tmp_path / "policy.toml"
    policy.write_text("")
    return {
        "SLACK_BOT_TOKEN": "xoxb-1",
        "SLACK_SIGNING_SECRET": "0123456789abcdef",
        "DEFENDER_POLICY": str(policy),
        "DEFENDER_DATA_DIR": str(tmp_path / "data"),
        **changes,
    }


def not_pem(tmp_path: Path) -> str:
    path = tmp_path / "bridge.crt"
    path.write_text("this is not PEM\n")
    return str(path)


@pytest.mark.parametrize(
    ("changes", "line"),
    [
        pytest.param(
            {"DEFENDER_BRIDGE_TLS_CERT": "/nope", "DEFENDER_BRIDGE_TLS_KEY": "/nope"},
            "DEFENDER_BRIDGE_TLS_CERT no file at /nope",
            id="no-cert",
        ),
        pytest.param(
            {"DEFENDER_BRIDGE_TLS_CERT": "{not_pem}", "DEFENDER_BRIDGE_TLS_KEY": "{not_pem}"},
            "DEFENDER_BRIDGE_TLS_CERT {not_pem} is not a PEM certificate",
            id="cert-not-pem",
        ),
        pytest.param(
            {"DEFENDER_DATA_DIR": "/etc/hostname"},
            "DEFENDER_DATA_DIR /etc/hostname is not a directory",
            id="file",
        ),
        pytest.param(
            {"DEFENDER_DATA_DIR": "/proc/nope"},
            "DEFENDER_DATA_DIR /proc/nope cannot hold the bot's data: No such file or directory",
            id="cannot-create",
        ),
        pytest.param({"DEFENDER_DATA_DIR": ""}, "DEFENDER_DATA_DIR is empty", id="empty-dir"),
        pytest.param(
            {"DEFENDER_HTTP_HOST": "not..a..host"},
            "DEFENDER_HTTP_HOST 'not..a..host' is not an IP address or host name",
            id="bad-host",
        ),
        pytest.param({"DEFENDER_JOB_TTL": "0s"}, "DEFENDER_JOB_TTL must be more than 0", id="ttl-zero"),
        pytest.param(
            {"DEFENDER_BRIDGE_HOST": "0.0.0.0"},
            "DEFENDER_BRIDGE_HOST 0.0.0.0 is not a loopback address, so agents would connect over plain ws://",
            id="plain-ws-off-loopback",
        ),
    ],
)
def test_serve_names_a_bad_setting_in_one_line(tmp_path: Path, changes: dict[str, str], line: str) -> None:
    changes = {k: v.format(not_pem=not_pem(tmp_path)) for k, v in changes.items()}
    done = run_cli("serve", env=serve_env(tmp_path, **changes))
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("defender-bot: " + line.format(not_pem=tmp_path / "bridge.crt")), (
        done.stderr
    )
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr  # no traceback


async def test_serve_names_the_setting_when_its_port_is_taken(tmp_path: Path) -> None:
    async with SlackStandIn(signing_secret="0123456789abcdef", bot_token="xoxb-1") as standin:
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            port = taken.getsockname()[1]
            env = serve_env(
                tmp_path,
                SLACK_API_URL=standin.api_url,
                DEFENDER_HTTP_PORT=str(port),
                DEFENDER_BRIDGE_PORT="0",
            )
            bot = await Process.start("bot", [str(BIN / "defender-bot"), "serve"], env=env)
            try:
                assert await bot.exited() == 2
            finally:
                await bot.stop()
    assert bot.output() == (  # the one line, and nothing else (no warning from slack-bolt either)
        f"defender-bot: DEFENDER_HTTP_HOST/DEFENDER_HTTP_PORT: cannot listen on 127.0.0.1:{port}: "
        "Address already in use"
    )


@pytest.mark.parametrize(
    ("args", "changes", "line"),
    [
        pytest.param(
            ["host42"],
            {"DEFENDER_BRIDGE_TLS_CERT": "/nope", "DEFENDER_BRIDGE_TLS_KEY": "/nope"},
            "defender-bot: DEFENDER_BRIDGE_TLS_CERT no file at /nope",
            id="no-cert",
        ),
        pytest.param(
            ["host42", "--expires", "0m"], {}, "defender-bot: --expires must be more than 0, such as 1h, not '0m'",
            id="expires-zero",
        ),
        pytest.param(
            ["host42", "--expires", "soon"], {}, "defender-bot: --expires 'soon' is not a duration", id="expires-bad"
        ),
        pytest.param(
            ["host42"], {"DEFENDER_DATA_DIR": "/proc/nope"},
            "defender-bot: DEFENDER_DATA_DIR /proc/nope cannot hold the bot's data: No such file or directory",
            id="data-dir",
        ),
    ],
)  # fmt: skip
def test_enroll_names_a_bad_setting_in_one_line(
    tmp_path: Path, args: list[str], changes: dict[str, str], line: str
) -> None:
    done = run_cli("enroll", *args, env={"DEFENDER_DATA_DIR": str(tmp_path / "data"), **changes})
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith(line), done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr


@pytest.mark.parametrize(
    ("changes", "server"),
    [
        pytest.param({"DEFENDER_BRIDGE_PORT": "9443", "TLS": "1"}, "wss://127.0.0.1:9443/agent", id="tls"),
        pytest.param({}, "ws://127.0.0.1:8765/agent", id="defaults"),
        pytest.param(
            {
                "DEFENDER_BRIDGE_HOST": "0.0.0.0",
                "DEFENDER_BRIDGE_PORT": "7000",
                "DEFENDER_BRIDGE_INSECURE": "1",
            },
            "ws://<this bot's address>:7000/agent",
            id="insecure-wildcard",
        ),
    ],
)
def test_enroll_prints_the_server_url_the_settings_give(
    tmp_path: Path, changes: dict[str, str], server: str
) -> None:
    env = {"DEFENDER_DATA_DIR": str(tmp_path / "data"), **changes}
    if env.pop("TLS", None):
        cert, key = make_certificate(tmp_path)
        env |= {"DEFENDER_BRIDGE_TLS_CERT": str(cert), "DEFENDER_BRIDGE_TLS_KEY": str(key)}
    done = run_cli("enroll", "host42", env=env)
    assert done.returncode == 0, done.stderr
    assert f"defender-agent --server {server} --id host42" in done.stderr
    assert "this-bot:8765" not in done.stderr


async def test_plain_ws_off_loopback_runs_only_with_the_explicit_flag_and_says_so(tmp_path: Path) -> None:
    async with SlackStandIn(signing_secret="0123456789abcdef", bot_token="xoxb-1") as standin:
        env = serve_env(
            tmp_path,
            SLACK_API_URL=standin.api_url,
            DEFENDER_HTTP_PORT="0",
            DEFENDER_BRIDGE_PORT="0",
            DEFENDER_BRIDGE_HOST="0.0.0.0",
            DEFENDER_BRIDGE_INSECURE="1",
        )
        bot = await Process.start("bot", [str(BIN / "defender-bot"), "serve"], env=env)
        try:
            await bot.wait_for_line(r"ready; .* agents at ws://0\.0\.0\.0:\d+/agent")
            warning = await bot.wait_for_line(r"WARNING .*DEFENDER_BRIDGE_INSECURE is set")
            assert "plain ws://" in warning.string
        finally:
            assert await bot.stop() == 0


def audit_events(data: Path) -> list[dict[str, object]]:
    path = data / "audit.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_enroll_and_revoke_are_audited_with_no_bot_running(tmp_path: Path) -> None:
    env = {"DEFENDER_DATA_DIR": str(tmp_path / "data")}
    enrolled = run_cli("enroll", "host42", "--expires", "10m", env=env)
    assert enrolled.returncode == 0, enrolled.stderr
    token = enrolled.stdout.strip()
    revoked = run_cli("revoke", "host42", env=env)
    assert revoked.returncode == 0, revoked.stderr
    assert "host42 revoked; no bot is running" in revoked.stdout
    events = audit_events(tmp_path / "data")
    assert [(e["seq"], e["event"], e["host"]) for e in events] == [
        (1, "enroll_token_issued", "host42"),
        (2, "revoked", "host42"),
    ]
    assert events[1]["was_enrolled"] is False and events[1]["tokens_voided"] == 1
    assert float(events[0]["expires_at"]) - float(events[0]["at"]) == pytest.approx(600, abs=1)  # type: ignore[arg-type]
    log = (tmp_path / "data" / "audit.jsonl").read_text()
    assert token not in log and token.split(".")[1] not in log  # never the token, nor its secret
    verified = run_cli("audit", "verify", env=env)
    assert verified.returncode == 0, verified.stderr
    assert "2 entries, chain intact" in verified.stdout


def test_while_a_bot_holds_the_data_dir_the_cli_never_writes_the_audit_log_itself(tmp_path: Path) -> None:
    """A running bot is the log's one writer. Here it holds its lock but its control socket is gone: the
    CLI leaves the entry staged in the database, and the next writer appends it, in order."""
    env = {"DEFENDER_DATA_DIR": str(tmp_path / "data")}
    assert run_cli("enroll", "host41", env=env).returncode == 0
    before = (tmp_path / "data" / "audit.jsonl").read_text()
    bot = DataDirLock(tmp_path / "data")
    assert bot.try_acquire()
    try:
        done = run_cli("enroll", "host42", env=env)
    finally:
        bot.release()
    assert done.returncode == 0, done.stderr
    assert "the audit entry is recorded in the database; the running bot appends it" in done.stderr
    assert (tmp_path / "data" / "audit.jsonl").read_text() == before  # untouched while the lock was held
    assert run_cli("revoke", "host43", env=env).returncode == 0  # no bot now: this appends both
    assert [(e["event"], e["host"]) for e in audit_events(tmp_path / "data")] == [
        ("enroll_token_issued", "host41"),
        ("enroll_token_issued", "host42"),
        ("revoked", "host43"),
    ]
    assert run_cli("audit", "verify", env=env).returncode == 0
