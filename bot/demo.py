"""``defender-bot demo``: the whole product on this machine, with no Slack account.

A local stand-in plays Slack, the real bot serves it, and two simulated Windows hosts run agents on the
MpCmdRun and PowerShell simulators. You type slash commands as a Slack user (interactively, or piped on
standard input) and see the channel, its threads, and what Slack shows only to you.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path

from bot.local import LocalDeployment, SimulatedHost

CHANNEL = "C0SECOPS"
USERS = {"U0ALICE": "alice", "U0BOB": "bob", "U0EVE": "eve"}
EICAR = b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"

DEMO_POLICY = """\
# The demo's access policy (SPEC section 5 format).
[roles.viewer]
commands = ["help", "hosts", "jobs", "status", "threats", "quarantine", "exclusion", "maps", "dynsig.list"]

[roles.responder]
inherits = ["viewer"]
commands = ["scan.*", "cancel", "update", "trace", "getfiles"]

[roles.admin]
inherits = ["responder"]
commands = ["*"]

[[grants]]            # alice responds in #secops, on every host
role = "responder"
users = ["U0ALICE"]
hosts = ["*"]
channels = ["C0SECOPS"]

[[grants]]            # bob is the fleet admin
role = "admin"
users = ["U0BOB"]
hosts = ["*"]
channels = ["*"]

[approval]            # risky commands wait for bob in the thread
commands = ["scan.full", "rollback", "restore", "dynsig.add", "dynsig.remove"]
approvers = { users = ["U0BOB"] }
required = 1
expires_after = "15m"
reason_required = true
"""

HOSTS = [
    SimulatedHost(
        name="host42",
        files={
            "C:\\Users\\Public\\Downloads\\eicar.com": EICAR,
            "C:\\Users\\Public\\Documents\\report.txt": b"quarterly numbers\r\n",
            "C:\\xampp\\htdocs\\index.php": b"<?php echo 'hi'; ?>\r\n",
        },
        state={
            "mpcmdrun": {
                "exclusions": ["C:\\xampp\\htdocs"],
                "scan_seconds": 1,
                "update": "updated",
                "quarantine": [
                    {
                        "threat": "Backdoor:Win32/Dirtelti!ml",
                        "files": [
                            {
                                "path": "C:\\Users\\David\\Downloads\\2020-09-25-cute.md",
                                "quarantined_at": "2026-11-30T09:59:40Z",
                            }
                        ],
                    }
                ],
            },
            "powershell": {
                "detections": [
                    {
                        "ThreatName": "Backdoor:Win32/Dirtelti!ml",
                        "Resources": ["file:_C:\\Users\\David\\Downloads\\2020-09-25-cute.md"],
                    }
                ]
            },
        },
    ),
    SimulatedHost(name="host43", state={"service": "disabled"}),
]

BANNER = """\
Defender ChatOps demo: a local Slack stand-in, the bot, and two simulated hosts.
  host42  Defender running; C:\\Users\\Public\\Downloads\\eicar.com holds the EICAR test file
  host43  Defender's service is disabled (every command explains 0x800106BA)
You are {user} in #secops. Users: alice (responder), bob (admin), eve (no access).
Try:
  /defender help
  /defender scan host42
  /defender scan host42 custom C:\\Users\\Public\\Downloads --no-remediation
  /defender quarantine host42          /defender status host42        /defender threats host42
  /defender update host42              /defender maps host42          /defender hosts
  /defender mpcmdrun host42 -CheckExclusion -Path C:\\xampp\\htdocs
  /defender scan host43                (Defender's service is off there)
  /defender scan host42 full --reason weird popups   then  :as bob  and  :approve
  :as eve        (type as another user)     :quit   (or Ctrl-D)
"""


def run_demo(*, user: str | None = None, keep: Path | None = None) -> int:
    logging.getLogger().setLevel(logging.WARNING)
    if keep is not None:
        keep.mkdir(parents=True, exist_ok=True)
        return asyncio.run(_demo(keep, user))
    with tempfile.TemporaryDirectory(prefix="defender-demo-") as tmp:
        return asyncio.run(_demo(Path(tmp), user))


async def _demo(workdir: Path, user: str | None) -> int:
    current = _user_id(user or "alice")
    if current is None:
        print(
            f"defender-bot demo: unknown user {user!r}; choose one of {', '.join(USERS.values())}",
            file=sys.stderr,
        )
        return 2
    world = LocalDeployment(
        workdir=workdir, policy=DEMO_POLICY, users=USERS, channels={CHANNEL: "secops"}, hosts=HOSTS
    )
    interactive = sys.stdin.isatty()
    print(BANNER.format(user=USERS[current]), flush=True)
    cursor = 0
    try:
        await world.start()
        while True:
            line = await _read_line(f"{USERS[current]}@#secops> " if interactive else "")
            if line is None:
                break
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            if not interactive:
                print(f"{USERS[current]}@#secops> {line}", flush=True)
            if line in {":quit", ":q", "exit", "quit"}:
                break
            if line.startswith(":as "):
                chosen = _user_id(line[4:].strip())
                if chosen is None:
                    print(f"  no such user; choose one of {', '.join(USERS.values())}")
                else:
                    current = chosen
                continue
            if line in {":approve", ":deny"}:
                await _click_latest(world, current, "approval." + line[1:])
            elif line.startswith(":"):
                print("  commands: /defender <...>, :as <alice|bob|eve>, :approve, :deny, :quit")
                continue
            else:
                await world.command(current, line.removeprefix("/defender").strip(), CHANNEL)
            await world.settle()
            shown, cursor = world.standin.render_new_since(cursor)
            print(_indent(shown), flush=True)
    finally:
        await world.stop()
    return 0


async def _click_latest(world: LocalDeployment, user: str, action_id: str) -> None:
    """Click Approve or Deny on the newest approval card that still has its buttons."""
    for message in reversed(world.standin.history(CHANNEL)):
        for reply in reversed(world.standin.thread(CHANNEL, message.ts)):
            if any(b.get("type") == "actions" for b in reply.blocks):
                await world.standin.click_button(
                    user=user, channel=CHANNEL, message_ts=reply.ts, action_id=action_id
                )
                return
    print("  there is no approval card waiting")


def _user_id(name: str) -> str | None:
    for user_id, user_name in USERS.items():
        if name in (user_id, user_name):
            return user_id
    return None


def _indent(text: str) -> str:
    return "\n".join("  " + line for line in text.splitlines()) + "\n"


async def _read_line(prompt: str) -> str | None:
    read: Callable[[], str] = (lambda: input(prompt)) if prompt else sys.stdin.readline
    loop = asyncio.get_running_loop()
    try:
        line: Awaitable[str] = loop.run_in_executor(None, read)
        text = await line
    except EOFError:
        return None
    if not prompt and text == "":
        return None
    return text
