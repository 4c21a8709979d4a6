"""The bot process: everything wired together from settings, started and stopped as one."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import socket
import sqlite3
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from slack_bolt.authorization import AuthorizeResult
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from agent_bridge import keys
from agent_bridge.protocol import Limits
from agent_bridge.server import PATH as AGENT_PATH
from agent_bridge.server import BridgeServer
from bot import admin
from bot.approvals import Approvals
from bot.audit import AuditLog
from bot.directory import GroupDirectory
from bot.keyring import KeyRing
from bot.policy import Policy, PolicyError, load_policy
from bot.requests import RequestHandler
from bot.service import JobService
from bot.settings import Settings, SettingsError
from bot.slack_app import EVENTS_PATH, build_bolt_app, slack_routes
from bot.slack_out import SlackOutbox
from bot.socket_mode import SocketModeConnection, connect_socket_mode
from bot.store import Store
from handlers import REGISTRY

log = logging.getLogger(__name__)

EXPIRY_SWEEP = 5.0  # seconds between checks for queued jobs past their expiry


def database_path(data_dir: Path) -> Path:
    return data_dir / "defender.db"


def signing_key_path(data_dir: Path) -> Path:
    return data_dir / "bot-signing.key"


def open_store(data_dir: Path) -> Store:
    """The store under ``DEFENDER_DATA_DIR``, the directory made if need be; a directory that cannot hold
    it is a bad setting, said in one line (not an OSError traceback)."""
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        return Store(database_path(data_dir))
    except (OSError, sqlite3.Error) as exc:
        raise data_dir_error(data_dir, exc) from exc


def data_dir_error(data_dir: Path, exc: Exception) -> SettingsError:
    why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
    return SettingsError(f"DEFENDER_DATA_DIR {data_dir} cannot hold the bot's data: {why}")


def load_signing_key(data_dir: Path) -> Ed25519PrivateKey:
    try:
        return keys.load_or_create_private_key(signing_key_path(data_dir))
    except OSError as exc:
        raise data_dir_error(data_dir, exc) from exc


def cert_fingerprint(cert: Path | None) -> str | None:
    """SHA-256 of the bridge certificate (DER), which agents pin."""
    if cert is None:
        return None
    der = ssl.PEM_cert_to_DER_cert(cert.read_text(encoding="ascii"))
    return keys.b64encode(hashlib.sha256(der).digest())


@dataclass
class Endpoints:
    slack_url: str
    agent_url: str
    socket_mode: bool = False  # Slack delivers over Socket Mode (slack_url still answers signed requests)


class BotRuntime:
    def __init__(self, settings: Settings, *, limits: Limits | None = None) -> None:
        """``limits`` tunes the bridge (deadlines, frame sizes, heartbeats); tests shorten them."""
        self.settings = settings
        self.store = open_store(settings.data_dir)
        # The audit log's one writer while this bot runs (an admin command appends only when it can
        # take this lock; see bot.admin). Taken before anything can append.
        self._lock = admin.DataDirLock(settings.data_dir)
        try:
            locked = self._lock.acquire()
        except OSError as exc:
            self.store.close()
            raise data_dir_error(settings.data_dir, exc) from exc
        if not locked:
            self.store.close()
            raise SettingsError(
                f"DEFENDER_DATA_DIR {settings.data_dir} is in use by another running defender-bot "
                f"({self._lock.path} is locked)"
            )
        try:
            self._build(settings, limits)
        except BaseException:
            self.store.close()
            self._lock.release()
            raise

    def _build(self, settings: Settings, limits: Limits | None) -> None:
        self.signing_key = load_signing_key(settings.data_dir)
        self.policy: Policy = load_policy(settings.policy, known_commands=REGISTRY.policy_names)
        self.audit = AuditLog(
            audit_path(settings.data_dir), head=self.store.audit_head, save_head=self.store.save_audit_head
        )
        self.keyring = KeyRing(self.store, appended=self.audit.flush)
        self.client = AsyncWebClient(
            token=settings.slack_bot_token.get_secret_value(),
            base_url=settings.slack_api_url,
            retry_handlers=[],  # the outbox retries, in one place, with Retry-After honoured
        )
        self.outbox = SlackOutbox(self.store, self.client, burst=settings.channel_burst)
        self.directory = GroupDirectory(self.client)
        self.directory.watch(self._groups_to_watch())
        self.service = JobService(
            store=self.store, keyring=self.keyring, outbox=self.outbox, audit=self.audit
        )
        self.requests = RequestHandler(
            service=self.service,
            store=self.store,
            keyring=self.keyring,
            registry=REGISTRY,
            policy=lambda: self.policy,
            directory=self.directory,
            audit=self.audit,
            job_ttl=settings.job_ttl,
        )
        self.bridge = BridgeServer(
            keyring=self.keyring,
            signing_key=self.signing_key,
            handler=self.service,
            limits=limits or Limits(),
        )
        self.service.attach(self.bridge)
        self._runners: list[web.AppRunner] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._socket: SocketModeConnection | None = None

    async def start(self) -> Endpoints:
        auth = await self._auth_test()
        await self.directory.refresh()  # warm the user-group cache before the first command
        bolt = build_bolt_app(
            requests=self.requests,
            api_url=self.settings.slack_api_url,
            signing_secret=self.settings.slack_signing_secret.get_secret_value(),
            auth=auth,
        )
        if self.settings.slack_app_token is not None:
            # Like the bot token, checked before anything listens. HTTP is still served (health checks,
            # and signed requests stay verified), but Slack itself uses the socket.
            app_token = self.settings.slack_app_token.get_secret_value()
            self._socket = await connect_socket_mode(bolt, app_token)
        slack_app = web.Application()
        slack_app.add_routes(slack_routes(bolt, on_refused=self._forged_request))
        bridge_app = web.Application()
        bridge_app.add_routes(self.bridge.routes())
        tls = self._tls()
        if self.settings.plain_ws_off_loopback:
            log.warning(
                "DEFENDER_BRIDGE_INSECURE is set: agents connect to %s over plain ws://, which anyone on "
                "the network can read; set DEFENDER_BRIDGE_TLS_CERT and DEFENDER_BRIDGE_TLS_KEY instead",
                self.settings.bridge_host,
            )
        slack_port = await self._listen(
            slack_app, self.settings.http_host, self.settings.http_port, None, setting="DEFENDER_HTTP"
        )
        bridge_port = await self._listen(
            bridge_app, self.settings.bridge_host, self.settings.bridge_port, tls,
            setting="DEFENDER_BRIDGE", site=self.bridge.site,
        )  # fmt: skip
        admin_runner = await admin.serve(
            self.settings.data_dir, revoke=self.revoke, flush_audit=self.audit.flush
        )
        if admin_runner is not None:
            self._runners.append(admin_runner)
        self._tasks = [
            asyncio.create_task(self.outbox.run(), name="slack outbox"),
            asyncio.create_task(self._sweep_expired(), name="expiry sweep"),
            asyncio.create_task(self.directory.keep_fresh(), name="user groups"),
            # Revocation bites within Limits.key_recheck_interval even if admin.sock is unreachable.
            asyncio.create_task(self.bridge.watch_keys(), name="agent key re-check"),
        ]
        self.audit.write("started", slack=EVENTS_PATH, agents=AGENT_PATH)
        self.outbox.wake()  # anything left unposted by a previous run goes out now
        scheme = "wss" if tls else "ws"
        return Endpoints(
            slack_url=f"http://{self.settings.http_host}:{slack_port}{EVENTS_PATH}",
            agent_url=f"{scheme}://{self.settings.bridge_host}:{bridge_port}{AGENT_PATH}",
            socket_mode=self._socket is not None,
        )

    async def stop(self) -> None:
        if self._socket is not None:  # first, so no new command arrives while the rest shuts down
            await self._socket.close()
            self._socket = None
        await self.bridge.close()
        await self.outbox.close()
        for task in self._tasks:
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.service.close()
        for runner in self._runners:
            await runner.cleanup()
        self.audit.write("stopped")
        self.audit.close()
        self.store.close()
        self._lock.release()

    async def revoke(self, host: str) -> bool:
        """Cut a host off now (`defender-bot revoke` has marked it in the key ring, and staged its
        ``revoked`` audit entry, which the entry written here appends first)."""
        if self.keyring.public_key(host) is not None:  # not through the CLI: mark it (and audit that) here
            self.keyring.revoke(host)
        connected = await self.bridge.disconnect(host, "revoked")
        self.audit.write("disconnected", host=host, reason="revoked", was_connected=connected)
        log.warning("agent %s revoked%s", host, "; its connection was closed" if connected else "")
        return connected

    def _forged_request(self, *, path: str, reason: str, remote: str | None) -> None:
        self.audit.write("forged_request", path=path, reason=reason, remote=remote)

    def reload_policy(self) -> bool:
        """SIGHUP: take a new policy file if it is valid; a bad one keeps the old one, with a logged error."""
        try:
            policy = load_policy(self.settings.policy, known_commands=REGISTRY.policy_names)
        except PolicyError as exc:
            log.error("policy not reloaded, keeping the current one: %s", exc)
            self.audit.write("policy_reload_failed", error=str(exc)[:300])
            return False
        self.policy = policy
        self.directory.watch(self._groups_to_watch())
        log.info("policy reloaded from %s", self.settings.policy)
        self.audit.write("policy_reloaded", path=str(self.settings.policy))
        return True

    def _groups_to_watch(self) -> set[str]:
        """The policy's groups, and those named by requests still waiting for approval: a request keeps
        the approvers it was made with, so a reload that drops a group must not leave it unapprovable
        (its group unread, its cached members going stale). Recomputed at each reload, so a group stops
        being read once no policy and no pending request names it."""
        pending = {group for approval in Approvals(self.store).pending() for group in approval.groups}
        return _groups_named(self.policy) | pending

    async def _auth_test(self) -> AuthorizeResult:
        try:
            response = await self.client.auth_test()
        except SlackApiError as exc:
            raise SettingsError(f"SLACK_BOT_TOKEN was refused by Slack: {exc.response.get('error')}") from exc
        except OSError as exc:
            raise SettingsError(f"SLACK_API_URL {self.settings.slack_api_url} is unreachable: {exc}") from exc
        self.requests.workspace_url = response.get("url")
        return AuthorizeResult(
            enterprise_id=response.get("enterprise_id"),
            team_id=response.get("team_id"),
            bot_user_id=response.get("user_id"),
            bot_id=response.get("bot_id"),
            bot_token=self.settings.slack_bot_token.get_secret_value(),
        )

    def _tls(self) -> ssl.SSLContext | None:
        if self.settings.bridge_tls_cert is None or self.settings.bridge_tls_key is None:
            return None
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        try:  # checked with the settings; this catches a file changed since
            context.load_cert_chain(self.settings.bridge_tls_cert, self.settings.bridge_tls_key)
        except (ssl.SSLError, OSError) as exc:
            cert, key = self.settings.bridge_tls_cert, self.settings.bridge_tls_key
            message = f"DEFENDER_BRIDGE_TLS_CERT/KEY {cert}, {key}: cannot be loaded: {exc}"
            raise SettingsError(message) from exc
        return context

    async def _listen(
        self,
        app: web.Application,
        host: str,
        port: int,
        tls: ssl.SSLContext | None,
        *,
        setting: str,
        site: Callable[..., web.BaseSite] = web.TCPSite,
    ) -> int:
        """``setting`` names the pair to blame (``DEFENDER_HTTP`` → DEFENDER_HTTP_HOST/PORT); ``site``:
        the bridge passes its own, which bounds connections from their TCP accept."""
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        self._runners.append(runner)
        listening = site(runner, host, port, ssl_context=tls)
        try:
            await listening.start()
        except (OSError, UnicodeError) as exc:
            why = _os_reason(exc)
            names = f"{setting}_HOST/{setting}_PORT"
            raise SettingsError(f"{names}: cannot listen on {host}:{port}: {why}") from exc
        server = listening._server
        assert server is not None
        sockets = getattr(server, "sockets", None) or []
        return int(sockets[0].getsockname()[1]) if sockets else port

    async def _sweep_expired(self) -> None:
        while True:
            await self.service.expire_due()
            await self.requests.expire_approvals()
            await asyncio.sleep(EXPIRY_SWEEP)


def _os_reason(exc: Exception) -> str:
    """The reason alone ("Address already in use"), not asyncio's "[Errno 98] error while ..."."""
    if isinstance(exc, socket.gaierror) or not isinstance(exc, OSError):
        return str(exc.strerror if isinstance(exc, OSError) and exc.strerror else exc)
    return os.strerror(exc.errno) if exc.errno else str(exc)


def audit_path(data_dir: Path) -> Path:
    return data_dir / "audit.jsonl"


def _groups_named(policy: Policy) -> set[str]:
    groups = {g for grant in policy.grants for g in grant.usergroups}
    return groups | set(policy.approval.approvers.usergroups)
