"""`defender-bot revoke` against a running bot, with real processes: the agent is cut off at once."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bot.local import SimulatedHost
from tests.conftest import BOB, CHANNEL
from tests.e2e.conftest import deploy
from tests.e2e.processes import BIN, Process

pytestmark = [pytest.mark.e2e]


async def test_revoke_cuts_the_agent_off_and_keeps_it_out(tmp_path: Path) -> None:
    async with deploy(tmp_path, hosts=[SimulatedHost(name="host42")]) as deployment:
        revoke = await Process.start(
            "revoke", [str(BIN / "defender-bot"), "revoke", "host42"], env=deployment.env
        )
        assert await revoke.exited() == 0, revoke.output()
        assert "host42 revoked; its connection was closed" in revoke.output()
        await deployment.bot.wait_for_line(r"agent host42 revoked; its connection was closed")
        await deployment.agents["host42"].wait_for_line(r"server closed the connection: revoked")
        # The agent keeps trying and is refused every time.
        await deployment.bot.wait_for_line(r"\(host42\) closed: unknown or revoked agent key")
        response = await deployment.standin.send_slash_command(user=BOB, channel=CHANNEL, text="hosts")
        assert response.json is not None
        assert "revoked" in str(response.json["blocks"])
        lines = [json.loads(line) for line in (deployment.data_dir / "audit.jsonl").read_text().splitlines()]
        about = [(e["event"], e) for e in lines if e.get("host") == "host42"]
        assert [event for event, _ in about] == ["enroll_token_issued", "enrolled", "revoked", "disconnected"]
        issued, enrolled, revoked, disconnected = (e for _, e in about)
        assert enrolled["token_id"] == issued["token_id"] and not enrolled["replaced_key"]
        assert enrolled["key_fingerprint"]
        assert revoked["was_enrolled"] and disconnected["was_connected"]
        verify = await Process.start(
            "verify", [str(BIN / "defender-bot"), "audit", "verify"], env=deployment.env
        )
        assert await verify.exited() == 0, verify.output()  # written by the CLI and the bot: one chain


async def test_revoke_without_the_admin_socket_still_cuts_the_agent_off(tmp_path: Path) -> None:
    """Windows, or a socket the CLI cannot reach: the CLI only marks the database, and the running bot
    notices by itself within its key re-check interval (5 s)."""
    async with deploy(tmp_path, hosts=[SimulatedHost(name="host42")]) as deployment:
        (deployment.data_dir / "admin.sock").unlink()
        revoke = await Process.start(
            "revoke", [str(BIN / "defender-bot"), "revoke", "host42"], env=deployment.env
        )
        assert await revoke.exited() == 0, revoke.output()
        assert "host42 revoked; no running bot answered on its control socket" in revoke.output()
        await deployment.bot.wait_for_line(r"agent host42 is revoked .*; closing its connection")
        await deployment.agents["host42"].wait_for_line(r"server closed the connection: revoked")
        await deployment.bot.wait_for_line(r"\(host42\) closed: unknown or revoked agent key")
        response = await deployment.standin.send_slash_command(user=BOB, channel=CHANNEL, text="hosts")
        assert response.json is not None
        assert "revoked" in str(response.json["blocks"])
