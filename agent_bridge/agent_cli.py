"""``defender-agent``: the on-host agent's entry point (the only place that configures logging)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from agent_bridge import commands, values
from agent_bridge.agent import Agent, AgentConfig, AgentConfigError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="defender-agent", description="Defender ChatOps on-host agent")
    parser.add_argument("--server", required=True, help="the bot's bridge, e.g. wss://bot.example:8765/agent")
    parser.add_argument("--id", required=True, dest="host", help="this host's name as the bot knows it")
    parser.add_argument("--state-dir", required=True, type=Path, help="where the key, pins and outbox live")
    parser.add_argument(
        "--enroll-token", default=None, help="one-time token from `defender-bot enroll` (first start)"
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


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
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
            enroll_token=args.enroll_token,
            insecure=args.insecure,
            allowed_actions=allowed,
        )
        agent = Agent(config)
    except (AgentConfigError, ValueError, PermissionError) as exc:
        print(f"defender-agent: {exc}", file=sys.stderr)
        return 2
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
