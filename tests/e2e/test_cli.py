"""The console scripts as a user runs them: the demo driven from standard input, and start-up errors."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from bot.store import Store
from tests.e2e.processes import BIN

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
