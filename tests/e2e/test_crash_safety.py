"""Killing the bot (kill -9) loses nothing: with real processes over loopback.

One request waits for approval and another job is running when the bot dies. After a restart the
approval buttons still work, and both results land exactly once, in their original threads.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path

import pytest

from agent_bridge import processes
from bot.local import SimulatedHost
from bot.slack_standin_model import Message
from tests.conftest import ALICE, BOB, CHANNEL, shown
from tests.e2e.conftest import Deployment, deploy
from tests.e2e.processes import BIN, Process
from tests.procwatch import PidReporter, exited

pytestmark = [pytest.mark.e2e]

POLICY = """
[roles.responder]
commands = ["help", "scan.*"]

[[grants]]
role = "responder"
users = ["U0ALICE"]
hosts = ["*"]
channels = ["*"]

[approval]
commands = ["scan.full"]
approvers = { users = ["U0BOB"] }
expires_after = "15m"
"""

HOSTS = [
    SimulatedHost(name="host42"),
    SimulatedHost(
        name="host43",
        files={"C:\\Data\\report.txt": b"quarterly numbers\r\n"},
        state={"mpcmdrun": {"scan_seconds": {"custom": 4}}},
    ),
]


async def thread_of(deployment: Deployment, text: str) -> tuple[Message, list[Message]]:
    root = next(m for m in deployment.standin.history(CHANNEL) if text in m.text)
    return root, deployment.standin.thread(CHANNEL, root.ts)


async def test_kill_the_bot_mid_job_and_nothing_is_lost(tmp_path: Path) -> None:
    async with deploy(tmp_path, policy=POLICY, hosts=HOSTS) as deployment:
        standin = deployment.standin
        # 1. A full scan that waits for approval.
        await standin.send_slash_command(user=ALICE, channel=CHANNEL, text="scan host42 full")
        (approval_root,) = await standin.wait_for_messages(CHANNEL, 1)
        (card,) = await standin.wait_for_reply_count(CHANNEL, approval_root.ts, 1)
        assert "Approval needed" in shown(card)
        # 2. A custom scan that is running (it takes 4 s on host43).
        await standin.send_slash_command(user=ALICE, channel=CHANNEL, text="scan host43 custom C:\\Data")
        messages = await standin.wait_for_messages(CHANNEL, 2)
        running_root = messages[1]
        await standin.wait_for(
            lambda: any("Running on *host43*" in m.text for m in standin.thread(CHANNEL, running_root.ts)),
            description="host43 running",
        )

        # 3. kill -9 the bot, and start it again on the same data and ports. Right after the kill, the
        #    audit log still verifies: a crash is never mistaken for tampering.
        await deployment.kill_bot()
        await audit_verifies(deployment)
        await deployment.start_bot()
        await deployment.bot.wait_for_line(r"agent host42 online", timeout=30)
        await deployment.bot.wait_for_line(r"agent host43 online", timeout=30)

        # 4. The approval card from before the crash still works.
        response = await standin.click_button(
            user=BOB, channel=CHANNEL, message_ts=card.ts, action_id="approval.approve"
        )
        assert response.status == 200

        # 5. Both results arrive, each in its own original thread.
        def finished(root: Message) -> bool:
            return any(
                word in m.text for m in standin.thread(CHANNEL, root.ts) for word in ("succeeded:", "failed:")
            )

        await standin.wait_for(lambda: finished(approval_root) and finished(running_root), timeout=30,
                               description="both results")  # fmt: skip
        for root in (approval_root, running_root):
            replies = standin.thread(CHANNEL, root.ts)
            texts = [m.text for m in replies]
            results = [t for t in texts if t.startswith(("succeeded:", "failed:"))]
            assert len(results) == 1, texts
            assert all(count == 1 for count in Counter(texts).values()), texts  # nothing posted twice
            assert "succeeded" in results[0], texts
        assert len(standin.history(CHANNEL)) == 2  # no new root messages: results went to the old threads
        _, approval_thread = await thread_of(deployment, "scan host42 full")
        assert any("<@U0BOB> approved" in m.text for m in approval_thread)
        await standin.wait_for(lambda: "succeeded" in shown(standin.find_message(CHANNEL, running_root.ts)),
                               description="root updated")  # fmt: skip

        # 6. The audit log has each job's request and result exactly once, across the crash.
        await audit_verifies(deployment)
        log = [json.loads(line) for line in (deployment.data_dir / "audit.jsonl").read_text().splitlines()]
        for job in {e["job"] for e in log if e["event"] == "request" and e.get("outcome") == "accepted"}:
            kinds = Counter(e["event"] for e in log if e.get("job") == job)
            assert kinds["request"] == 1 and kinds["result"] == 1, (job, kinds)
        assert [e["seq"] for e in log] == list(range(1, len(log) + 1))
        assert any(e["event"] == "decision" and e.get("verdict") == "approved" for e in log)


async def test_kill_the_agent_mid_scan_and_the_job_ends_clearly(tmp_path: Path) -> None:
    """kill -9 of the agent mid-scan: after its restart the job ends as failed, saying why, and the scan
    it had started (the simulator, in its own session) does not run on: the next scan is not refused
    as "already running"."""
    slow = SimulatedHost(
        name="host44", files={"C:\\Data\\a.txt": b"x"}, state={"mpcmdrun": {"scan_seconds": {"custom": 60}}}
    )
    async with PidReporter(tmp_path / "pids.sock") as pids:
        mpcmdrun = reporting_mpcmdrun(tmp_path / "MpCmdRun", pids)
        async with deploy(tmp_path, policy=POLICY, hosts=[slow], mpcmdrun=mpcmdrun) as deployment:
            standin = deployment.standin
            await standin.send_slash_command(user=ALICE, channel=CHANNEL, text="scan host44 custom C:\\Data")
            (root,) = await standin.wait_for_messages(CHANNEL, 1)
            scan = await pids.next_pid()  # the simulator is scanning
            scanning = processes.identify(scan)
            try:
                await deployment.agents["host44"].stop(kill=True)  # kill -9 the agent mid-scan
                assert processes.start_time(scan) is not None  # the scan outlived the agent, as it would

                await deployment.restart_agent("host44")
                await standin.wait_for(
                    lambda: any(m.text.startswith("failed:") for m in standin.thread(CHANNEL, root.ts)),
                    timeout=30,
                    description="the job to end",
                )
                assert await exited(scan)  # no orphan survives the restart
                results = [
                    m
                    for m in standin.thread(CHANNEL, root.ts)
                    if m.text.startswith(("failed:", "succeeded:"))
                ]
                assert len(results) == 1
                assert "The agent restarted while the job was running" in results[0].text
                assert "agent process stopped mid-job" in shown(results[0])
                assert "has been stopped" in shown(results[0])

                # The next scan runs: nothing left behind holds Defender's one scan slot.
                state_path = tmp_path / "hosts" / "host44" / "state.json"
                state = json.loads(state_path.read_text())
                state["mpcmdrun"]["scan_seconds"]["custom"] = 0
                state_path.write_text(json.dumps(state))
                await standin.send_slash_command(
                    user=ALICE, channel=CHANNEL, text="scan host44 custom C:\\Data"
                )
                _, again = await standin.wait_for_messages(CHANNEL, 2)
                await standin.wait_for(
                    lambda: any(
                        m.text.startswith(("failed:", "succeeded:"))
                        for m in standin.thread(CHANNEL, again.ts)
                    ),
                    timeout=30,
                    description="the next scan to end",
                )
                (second,) = [
                    m
                    for m in standin.thread(CHANNEL, again.ts)
                    if m.text.startswith(("failed:", "succeeded:"))
                ]
                assert second.text.startswith("succeeded:"), shown(second)
            finally:  # whatever happened, this test leaves no simulator behind
                if processes.still_running(scanning):
                    processes.kill_tree(scanning)


def reporting_mpcmdrun(path: Path, pids: PidReporter) -> Path:
    """The simulator behind a launcher that reports its pid, then becomes the simulator (same pid)."""
    sim = str(BIN / "defender-mpcmdrun-sim")
    path.write_text(
        f"#!{sys.executable}\n"
        + pids.snippet()
        + f"import os, sys\nos.execv({sim!r}, [{sim!r}, *sys.argv[1:]])\n"
    )
    path.chmod(0o755)
    return path


async def audit_verifies(deployment: Deployment) -> None:
    verify = await Process.start("audit", [str(BIN / "defender-bot"), "audit", "verify"], env=deployment.env)
    assert await verify.exited() == 0, verify.output()
    assert "chain intact" in verify.output()
