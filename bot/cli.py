"""``defender-bot``: serve, enroll, revoke, audit verify, demo.

The only place that reads the environment and configures logging; everything below gets its settings
passed in.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from agent_bridge import keys, values
from agent_bridge.server import PATH as AGENT_PATH
from bot import admin
from bot.audit import NoHeadError, read_only_head, verify
from bot.keyring import KeyRing
from bot.policy import PolicyError
from bot.runtime import (
    BotRuntime,
    audit_path,
    cert_fingerprint,
    database_path,
    load_signing_key,
    open_store,
)
from bot.settings import AdminSettings, SettingsError, load_admin_settings, load_settings, parse_duration

log = logging.getLogger("defender-bot")


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        code: int = args.run(args)
    except (SettingsError, PolicyError, ValueError) as exc:
        print(f"defender-bot: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return code


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="defender-bot", description="Defender ChatOps bot")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(required=True, metavar="command")

    serve = sub.add_parser("serve", help="run the Slack app and the agent bridge")
    serve.set_defaults(run=_serve)

    enroll = sub.add_parser("enroll", help="print a one-time enrollment token for a new agent")
    enroll.add_argument("host")
    enroll.add_argument("--expires", default="1h", help="how long the token stays valid (default 1h)")
    enroll.set_defaults(run=_enroll)

    revoke = sub.add_parser("revoke", help="cut an agent off at once, and refuse it from then on")
    revoke.add_argument("host")
    revoke.set_defaults(run=_revoke)

    audit = sub.add_parser("audit", help="check the audit log")
    audit_sub = audit.add_subparsers(required=True, metavar="action")
    verify = audit_sub.add_parser("verify", help="check the hash chain; exit 1 naming the first bad line")
    verify.set_defaults(run=_audit_verify)

    demo = sub.add_parser("demo", help="everything on this machine, with a local stand-in for Slack")
    demo.add_argument("--user", default=None, help="the Slack user id you type as (default U0ALICE)")
    demo.add_argument("--keep", type=Path, default=None, help="keep demo data in this directory")
    demo.set_defaults(run=_demo)
    return parser


SECRETS = ("SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "SLACK_APP_TOKEN")


def _serve(_: argparse.Namespace) -> int:
    settings = load_settings(dict(os.environ))
    # Read once, then gone from the environment: slack-bolt would otherwise read SLACK_BOT_TOKEN itself
    # (and warn that it is unused beside our client), and no child process inherits a secret.
    for name in SECRETS:
        os.environ.pop(name, None)

    async def run() -> None:
        runtime = BotRuntime(settings)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(sig, stop.set)
        with contextlib.suppress(NotImplementedError, AttributeError):  # no SIGHUP on Windows
            loop.add_signal_handler(signal.SIGHUP, runtime.reload_policy)
        endpoints = await runtime.start()
        slack = (
            "Slack via Socket Mode" if endpoints.socket_mode else f"Slack requests at {endpoints.slack_url}"
        )
        print(f"defender-bot: ready; {slack}, agents at {endpoints.agent_url}", flush=True)
        try:
            await stop.wait()
        finally:
            await runtime.stop()

    asyncio.run(run())
    return 0


def _enroll(args: argparse.Namespace) -> int:
    host = values.check_host(args.host)
    ttl = _expiry(args.expires)
    settings = load_admin_settings(dict(os.environ))
    store = open_store(settings.data_dir)
    try:
        server_key = keys.encode_public_key(load_signing_key(settings.data_dir).public_key())
        token = KeyRing(store).issue_token(  # its audit entry is staged with it, then appended below
            host,
            server_key=server_key,
            cert_fingerprint=cert_fingerprint(settings.bridge_tls_cert),
            ttl=ttl,
        )
        appended = admin.append_if_no_bot(settings.data_dir, store, audit_path(settings.data_dir))
        if appended is None:  # a bot is running: it is the audit log's writer
            appended = asyncio.run(admin.request_audit_flush(settings.data_dir))
    finally:
        store.close()
    if not appended:
        print(_STAGED, file=sys.stderr)
    print(token.encode())
    print(
        f"One-time token for {host}, valid for {args.expires}. On {host} run:\n"
        f"  defender-agent --server {agent_url_hint(settings)} --id {host} --state-dir <dir> "
        f"--enroll-token <the token above>",
        file=sys.stderr,
    )
    return 0


def _expiry(text: str) -> float:
    try:
        ttl = parse_duration(text)
    except ValueError as exc:
        raise ValueError(f"--expires {exc}") from exc
    if ttl <= 0:
        raise ValueError(f"--expires must be more than 0, such as 1h, not {text!r}")
    return ttl


def agent_url_hint(settings: AdminSettings) -> str:
    """The ``--server`` an agent needs, from the bridge settings (a placeholder where they cannot say)."""
    host = settings.bridge_host
    if host in ("0.0.0.0", "::"):  # noqa: S104 - naming the wildcard, not binding it
        host = "<this bot's address>"
    elif ":" in host:
        host = f"[{host}]"
    port = settings.bridge_port or "<the port serve prints>"
    return f"{'wss' if settings.bridge_tls else 'ws'}://{host}:{port}{AGENT_PATH}"


def _revoke(args: argparse.Namespace) -> int:
    host = values.check_host(args.host)
    data_dir = load_admin_settings(dict(os.environ)).data_dir
    store = open_store(data_dir)
    try:
        known = KeyRing(store).revoke(host)  # its audit entry is staged with it, then appended below
        appended = admin.append_if_no_bot(data_dir, store, audit_path(data_dir))
    finally:
        store.close()
    if appended is None:  # a bot is running: cut the agent off now; the bot appends the audit entry
        connected = asyncio.run(admin.notify_revoked(data_dir, host))
        appended = connected is not None
        state = {
            True: "its connection was closed",
            False: "it was not connected",
            None: "no running bot answered on its control socket; a running bot cuts it off within 5 s",
        }[connected]
    else:
        state = "no bot is running, so it is not connected"
    if not known:
        print(f"{host} was not enrolled (or already revoked); its unused tokens are void", file=sys.stderr)
    if not appended:
        print(_STAGED, file=sys.stderr)
    print(f"{host} revoked; {state}. It can come back only with a new `defender-bot enroll`.")
    return 0


_STAGED = (
    "defender-bot: the audit entry is recorded in the database; the running bot appends it to the audit "
    "log with its next entry"
)


def _audit_verify(_: argparse.Namespace) -> int:
    """Reads only: the database is opened read-only and nothing is created, so a mistyped data
    directory fails here instead of getting a new, empty database whose missing head would let lines cut
    off the end of the log pass. The head is read again after the walk, so a running bot is fine."""
    data_dir = load_admin_settings(dict(os.environ)).data_dir
    try:
        head = read_only_head(database_path(data_dir))
    except NoHeadError as exc:
        print(f"defender-bot: cannot verify the audit log: {exc}", file=sys.stderr)
        return 1
    verdict = verify(audit_path(data_dir), head=head)
    print(verdict.message, file=sys.stdout if verdict.ok else sys.stderr)
    return 0 if verdict.ok else 1


def _demo(args: argparse.Namespace) -> int:
    from bot.demo import run_demo

    return run_demo(user=args.user, keep=args.keep)
