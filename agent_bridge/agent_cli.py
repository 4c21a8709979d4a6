"""``defender-agent``: the on-host agent's entry point (the only place that configures logging or reads
the environment).

The one-time enrollment token comes from ``DEFENDER_ENROLL_TOKEN``, ``--enroll-token-file`` or
``--enroll-token``: the first two keep it out of the process list, where any local user can read a
command line. The variable is removed from the agent's environment once read, so no tool the agent
starts inherits it; the file is left in place (a restart with the same command line must find it) and
is worthless once used. The token itself is never logged or printed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
from collections.abc import MutableMapping, Sequence
from pathlib import Path

from agent_bridge import commands, processes, values
from agent_bridge.agent import Agent, AgentConfig, AgentConfigError

log = logging.getLogger(__name__)

ENROLL_TOKEN_ENV = "DEFENDER_ENROLL_TOKEN"  # noqa: S105 - the variable's name, not a token


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="defender-agent", description="Defender ChatOps on-host agent")
    parser.add_argument("--server", required=True, help="the bot's bridge, e.g. wss://bot.example:8765/agent")
    parser.add_argument("--id", required=True, dest="host", help="this host's name as the bot knows it")
    parser.add_argument("--state-dir", required=True, type=Path, help="where the key, pins and outbox live")
    parser.add_argument(
        "--enroll-token",
        default=None,
        help=f"one-time token from `defender-bot enroll` (first start); visible in the process list, so "
        f"prefer {ENROLL_TOKEN_ENV} or --enroll-token-file",
    )
    parser.add_argument(
        "--enroll-token-file",
        default=None,
        type=Path,
        help="a file holding the enrollment token (read, never deleted; delete it once enrolled)",
    )
    parser.add_argument("--mpcmdrun", default=None, help="path to MpCmdRun.exe (default: discover it)")
    parser.add_argument("--powershell", default="powershell.exe", help="path to powershell.exe")
    parser.add_argument(
        "--allow",
        default=None,
        help="comma-separated commands this host accepts (default: all), e.g. scan,cancel,status,threats",
    )
    parser.add_argument("--insecure", action="store_true", help="allow plain ws:// to a non-loopback server")
    parser.add_argument(
        "--enroll-only", action="store_true", help="enroll with --enroll-token, then exit (for installers)"
    )
    parser.add_argument("-v", "--verbose", action="store_true")
    return parser


def enroll_token(args: argparse.Namespace, environ: MutableMapping[str, str]) -> str | None:
    """The enrollment token from whichever one place it was given; ``DEFENDER_ENROLL_TOKEN`` is taken out
    of ``environ`` so that no child process inherits it. Errors never quote the token."""
    from_env = environ.pop(ENROLL_TOKEN_ENV, None)
    given = {
        "--enroll-token": args.enroll_token,
        "--enroll-token-file": args.enroll_token_file,
        ENROLL_TOKEN_ENV: from_env or None,
    }
    named = [name for name, value in given.items() if value is not None]
    if len(named) > 1:
        raise AgentConfigError(
            f"the enrollment token was given {len(named)} ways ({', '.join(named)}); give it one way"
        )
    if args.enroll_token_file is not None:
        path: Path = args.enroll_token_file
        try:
            text = path.read_text(encoding="utf-8-sig")  # Notepad and PowerShell 5 write a BOM
        except OSError as exc:
            raise AgentConfigError(f"--enroll-token-file {path}: {exc.strerror or exc}") from None
        if not text.strip():
            raise AgentConfigError(f"--enroll-token-file {path} is empty")
        return text.strip()
    if args.enroll_token is not None:
        log.warning(
            "--enroll-token is visible to every local user in the process list; use %s or "
            "--enroll-token-file instead",
            ENROLL_TOKEN_ENV,
        )
        return str(args.enroll_token)
    return from_env.strip() if from_env else None


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        token = enroll_token(args, os.environ)
        host = values.check_host(args.host)
        allowed = (
            frozenset(a.strip() for a in args.allow.split(",") if a.strip())
            if args.allow
            else commands.ACTIONS
        )
        config = AgentConfig(
            server=args.server,
            host=host,
            state_dir=args.state_dir,
            mpcmdrun=args.mpcmdrun,
            powershell=args.powershell,
            enroll_token=token,
            insecure=args.insecure,
            allowed_actions=allowed,
        )
        agent = Agent(config)
    except (AgentConfigError, ValueError, PermissionError) as exc:
        print(f"defender-agent: {exc}", file=sys.stderr)
        return 2
    processes.contain_children()  # Windows: what the agent starts dies with it, even on kill -9
    return asyncio.run(_run(agent, enroll_only=args.enroll_only))


async def _run(agent: Agent, *, enroll_only: bool = False) -> int:
    stop = asyncio.Event()
    if enroll_only:
        connected = asyncio.ensure_future(agent.connected.wait())
        connected.add_done_callback(lambda _: stop.set())
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):  # Windows: Ctrl+C still raises KeyboardInterrupt
            loop.add_signal_handler(sig, stop.set)
    try:
        if enroll_only:
            reason, ready = await agent.connect_once(stop)
            if not ready:
                print(f"defender-agent: enrollment failed: {reason}", file=sys.stderr)
                return 1
            print("defender-agent: enrolled; start it again without --enroll-token", file=sys.stderr)
            return 0
        await agent.run(stop)
    except AgentConfigError as exc:
        print(f"defender-agent: {exc}", file=sys.stderr)
        return 2
    return 0
