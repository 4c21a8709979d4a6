"""The product end to end, with real processes over loopback: bot, agents, simulator, Slack stand-in."""

from __future__ import annotations

import re
import shutil
import time
from pathlib import Path

import pytest

from bot.slack_standin_model import Message
from tests.conftest import ALICE, CHANNEL, EVE, SECRET, TOKEN, shown
from tests.e2e.conftest import Deployment, sim_log
from tests.e2e.processes import BIN, Process

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]


async def run(deployment: Deployment, user: str, text: str, replies: int) -> tuple[Message, list[Message]]:
    standin = deployment.standin
    before = len(standin.history(CHANNEL))
    response = await standin.send_slash_command(user=user, channel=CHANNEL, text=text)
    assert response.ok, response
    messages = await standin.wait_for_messages(CHANNEL, before + 1)
    root = messages[before]
    thread = await standin.wait_for_reply_count(CHANNEL, root.ts, replies)
    await standin.wait_for(
        lambda: is_final(standin.find_message(CHANNEL, root.ts)), description="final status"
    )
    return standin.find_message(CHANNEL, root.ts), thread  # type: ignore[return-value]


def is_final(root: Message | None) -> bool:
    status = shown(root).split("Status:*", 1)[-1] if root else ""
    return any(
        word in status for word in ("succeeded", "failed", "timed out", "cancelled", "denied", "expired")
    )


async def test_eicar_detection_is_threaded(deployment: Deployment) -> None:
    root, (sent, running, result) = await run(
        deployment, ALICE, 'scan host42 custom "C:\\Users\\Public\\eicar.com" --no-remediation', 3
    )
    assert "Sent to *host42*" in sent.text
    assert "Running on *host42*" in running.text
    assert "1 threat found" in result.text
    assert "Virus:DOS/EICAR_Test_File" in shown(result)
    assert "C:\\Users\\Public\\eicar.com" in shown(result)
    assert "succeeded" in root.blocks[0]["text"]["text"]
    assert "1 threat found" in root.blocks[0]["text"]["text"]


async def test_clean_quick_scan(deployment: Deployment) -> None:
    root, (_, _, result) = await run(deployment, ALICE, "scan host42", 3)
    assert "No threats found" in result.text
    assert "succeeded — No threats found" in root.blocks[0]["text"]["text"]
    assert "-Scan -ScanType 1" in sim_log(deployment, "host42")


async def test_hresult_error_is_explained(deployment: Deployment) -> None:
    root, (_, _, result) = await run(deployment, ALICE, "scan host43", 3)
    blocks = shown(result)
    assert "0x800106BA" in blocks
    assert "service is disabled or not running" in blocks
    assert "What to do:" in blocks
    assert "failed" in root.blocks[0]["text"]["text"]


async def test_forged_signature_is_refused(deployment: Deployment) -> None:
    body = "command=%2Fdefender&text=scan+host42&user_id=U0ALICE&channel_id=C0SECOPS"
    before = len(deployment.standin.history(CHANNEL))
    forged = await deployment.standin.post_signed(body, secret="forged-secret")
    stale = await deployment.standin.post_signed(body, timestamp=int(time.time()) - 600)
    assert (forged.status, stale.status) == (401, 401)
    assert len(deployment.standin.history(CHANNEL)) == before


async def test_user_without_grant_is_refused_and_nothing_runs(deployment: Deployment) -> None:
    log_before = sim_log(deployment, "host42")
    before = len(deployment.standin.history(CHANNEL))
    response = await deployment.standin.send_slash_command(
        user=EVE, channel=CHANNEL, text='scan host42 custom "C:\\Users\\Public\\clean.txt"'
    )
    assert response.json is not None
    assert "Not allowed" in response.json["text"]
    assert len(deployment.standin.history(CHANNEL)) == before
    # A granted command afterwards runs to its end, so anything the refused one had started would have
    # reached the host by now: only the granted scan did.
    await run(deployment, ALICE, "scan host42", 3)
    log_after = sim_log(deployment, "host42")
    assert log_after.count("-Scan -ScanType 1") == log_before.count("-Scan -ScanType 1") + 1
    assert log_after.count("clean.txt") == log_before.count("clean.txt") == 0


async def test_a_429_on_the_first_post_gives_exactly_one_message(deployment: Deployment) -> None:
    standin = deployment.standin
    standin.fail_next("chat.postMessage", status=429, retry_after=1)
    calls_before = len(standin.calls_to("chat.postMessage"))
    before = len(standin.history(CHANNEL))
    _root, (_, _, result) = await run(
        deployment, ALICE, 'scan host42 custom "C:\\Users\\Public\\clean.txt"', 3
    )
    assert "No threats found" in result.text
    assert len(standin.history(CHANNEL)) == before + 1
    statuses = [c.status for c in standin.calls_to("chat.postMessage")[calls_before:]]
    assert statuses[:2] == [429, 200]
    assert len([m for m in standin.history(CHANNEL) if "clean.txt" in m.text]) == 1


async def test_audit_verify_passes_then_names_an_edited_line(deployment: Deployment, tmp_path: Path) -> None:
    env = {**deployment.env}
    verify = await Process.start("audit", [str(BIN / "defender-bot"), "audit", "verify"], env=env)
    assert await verify.exited() == 0, verify.output()
    assert "chain intact" in verify.output()

    copy = tmp_path / "data"
    shutil.copytree(deployment.data_dir, copy, ignore=shutil.ignore_patterns("*.sock"))
    log = copy / "audit.jsonl"
    lines = log.read_text().splitlines(keepends=True)
    lines[2] = (
        lines[2].replace('"U0ALICE"', '"U0MALLORY"', 1)
        if '"U0ALICE"' in lines[2]
        else lines[2].replace('"', "'", 1)
    )
    log.write_text("".join(lines))
    tampered = await Process.start(
        "audit", [str(BIN / "defender-bot"), "audit", "verify"], env={**env, "DEFENDER_DATA_DIR": str(copy)}
    )
    assert await tampered.exited() == 1
    assert "line 3:" in tampered.output()


async def test_nothing_secret_is_logged_or_posted(deployment: Deployment) -> None:
    secrets_ = [TOKEN, SECRET]
    tokens = re.findall(r"dfe1\.\S+", "\n".join(deployment.bot.lines))
    assert tokens == []  # enrollment tokens never reach the bot's own log
    logs = "\n".join(deployment.bot.lines + [line for a in deployment.agents.values() for line in a.lines])
    audit = (deployment.data_dir / "audit.jsonl").read_text()
    slack = "\n".join(
        m.text + str(m.blocks) + "".join(r.text + str(r.blocks) for r in m.replies)
        for m in deployment.standin.history(CHANNEL)
    )
    for secret in secrets_:
        assert secret not in logs
        assert secret not in audit
        assert secret not in slack
    assert "Traceback" not in slack
