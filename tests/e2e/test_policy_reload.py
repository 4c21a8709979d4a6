"""SIGHUP reloads the access policy without a restart; a broken new policy keeps the old one."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from tests.conftest import CHANNEL, EVE, POLICY
from tests.e2e.conftest import deploy

pytestmark = [pytest.mark.e2e]

EVE_GRANT = """
[[grants]]
role = "responder"
users = ["U0EVE"]
hosts = ["*"]
channels = ["*"]
"""


async def test_sighup_reloads_and_a_bad_policy_is_refused(tmp_path: Path) -> None:
    async with deploy(tmp_path, hosts=[]) as deployment:
        standin, bot = deployment.standin, deployment.bot
        for host in ("host42", "host43"):  # tokens out: the bot knows them, no agent needed here
            await deployment.enroll(host)
        refused = await standin.send_slash_command(user=EVE, channel=CHANNEL, text="scan host42")
        assert refused.json is not None
        assert "Not allowed" in refused.json["text"]

        (tmp_path / "policy.toml").write_text(POLICY + EVE_GRANT)
        bot.proc.send_signal(signal.SIGHUP)
        await bot.wait_for_line("policy reloaded")
        allowed = await standin.send_slash_command(user=EVE, channel=CHANNEL, text="scan host42")
        assert allowed.json is not None
        assert "Accepted as job" in allowed.json["text"]

        (tmp_path / "policy.toml").write_text(
            POLICY + '[[grants]]\nrole = "no-such-role"\nusers = ["U0EVE"]\nhosts = ["*"]\nchannels = ["*"]\n'
        )
        bot.proc.send_signal(signal.SIGHUP)
        await bot.wait_for_line("policy not reloaded, keeping the current one: .*no-such-role")
        still = await standin.send_slash_command(user=EVE, channel=CHANNEL, text="scan host43")
        assert still.json is not None
        assert "Accepted as job" in still.json["text"]  # the last good policy is still in force

        (tmp_path / "policy.toml").write_text(
            POLICY + EVE_GRANT + '[approval]\ncommands = ["scan.full"]\napprovers = { users = ["U0BOB"] }\n'
            "expires_after = -5\n"
        )
        bot.proc.send_signal(signal.SIGHUP)
        await bot.wait_for_line(r"policy not reloaded.*approval\.expires_after: must be more than 0")
        assert bot.proc.returncode is None
