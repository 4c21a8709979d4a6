"""The on-host agent: keeps one authenticated connection to the bot and runs the jobs it is sent.

It is a thin pump around :class:`agent_bridge.protocol.AgentConnection`: websocket text in, events out.
Everything that must survive a crash goes through :class:`agent_bridge.agent_state.AgentState` first: a
job id is remembered before the job runs, and a result is on disk before it is sent, deleted only when
the bot acknowledges it. Reconnection waits follow :func:`backoff`, injectable so tests need no delays.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import ipaddress
import json
import logging
import os
import platform
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp

from agent_bridge import __version__, commands, discovery, hresults, keys, processes, wire
from agent_bridge.agent_state import AgentState, Interrupted, Pinned
from agent_bridge.enrollment import EnrollmentToken
from agent_bridge.interpret import interpret
from agent_bridge.powershell_reports import StatusReport
from agent_bridge.protocol import AgentConnection, Closed, JobReceived, Ready, ResultAcked
from agent_bridge.reports import EngineVersions, ErrorInfo, Outcome, RollbackReport, ScanReport, UpdateReport
from agent_bridge.runner import DEFAULT_MAX_OUTPUT, Runner, RunResult, SubprocessRunner
from agent_bridge.signed_jobs import JobRejected, check_window, verify_job

log = logging.getLogger(__name__)

PROBE_TIMEOUT = 20.0  # seconds the first `Get-MpComputerStatus` may take before the agent connects anyway
CANCEL_GRACE = 15.0  # seconds a scan gets to stop after `MpCmdRun -Scan -Cancel` before its tree is killed


class AgentConfigError(ValueError):
    """A setting that stops the agent from starting; the message names it and says how to fix it."""


class EnrollmentRefused(AgentConfigError):
    """The bot refused the enrollment token (unknown, used or expired): retrying it can never work."""


@dataclass(frozen=True)
class AgentConfig:
    server: str
    host: str
    state_dir: Path
    mpcmdrun: str | None = None  # None: discover it as Defender installs it
    powershell: str = "powershell.exe"
    enroll_token: str | None = None
    insecure: bool = False  # allow ws:// to a non-loopback server
    allowed_actions: frozenset[str] = commands.ACTIONS
    max_output: int = DEFAULT_MAX_OUTPUT
    max_frame_bytes: int = 256 * 1024
    probe_status: bool = True  # ask Defender for its versions on first connect, for `hosts`
    heartbeat: float = 30.0  # websocket ping interval; a peer that misses a pong is dead
    handshake_timeout: float = 30.0  # seconds from connecting to the bot's welcome, upgrade included
    cancel_grace: float = CANCEL_GRACE

    def check(self) -> None:
        url = urlsplit(self.server)
        if url.scheme not in {"ws", "wss"} or not url.hostname:
            raise AgentConfigError(f"--server {self.server!r} must look like wss://bot.example:8765/agent")
        if url.scheme == "ws" and not self.insecure and not _is_loopback(url.hostname):
            raise AgentConfigError(
                f"--server {self.server} is plain ws:// to another machine; use wss:// "
                f"(or --insecure, for a lab only)"
            )
        unknown = self.allowed_actions - commands.ACTIONS
        if unknown:
            raise AgentConfigError(f"--allow names unknown commands: {', '.join(sorted(unknown))}")


def _is_loopback(hostname: str) -> bool:
    if hostname == "localhost":
        return True
    try:
        return ipaddress.ip_address(hostname).is_loopback
    except ValueError:
        return False


def backoff(
    *, initial: float = 1.0, cap: float = 60.0, factor: float = 2.0, rand: Callable[[], float] = random.random
) -> Iterator[float]:
    """Capped exponential delays with full jitter, so a fleet does not reconnect in lockstep."""
    ceiling = initial
    while True:
        yield ceiling * rand()
        ceiling = min(cap, ceiling * factor)


@dataclass
class _Running:
    envelope: wire.JobEnvelope
    task: asyncio.Task[None]
    cancelled: bool = False


@dataclass
class _Session:
    protocol: AgentConnection
    ws: aiohttp.ClientWebSocketResponse
    send_lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class Agent:
    def __init__(
        self,
        config: AgentConfig,
        *,
        runner: Runner | None = None,
        clock: Callable[[], float] = time.time,
        delays: Callable[[], Iterator[float]] = backoff,
        discover: Callable[[], Path | None] = discovery.find_mpcmdrun,
    ) -> None:
        config.check()
        self.config = config
        self.state = AgentState(config.state_dir)
        self._runner = runner or SubprocessRunner()
        self._clock = clock
        self._delays = delays
        self._discover = discover
        self._key = self.state.identity()
        self._token = EnrollmentToken.parse(config.enroll_token) if config.enroll_token else None
        self._session: _Session | None = None
        self._running: dict[str, _Running] = {}
        self._mpcmdrun: str | None = config.mpcmdrun
        self._check_transport(self.state.pinned())
        self.connected = asyncio.Event()
        self.attempt_ended = asyncio.Event()  # set each time a connection attempt or session ends
        self.last_close_reason: str | None = None
        self._orphaned_scans: list[str] = []  # job ids whose scan Defender may still be running
        self._recover_interrupted()

    # ---- connection loop ------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event | None = None) -> None:
        """Connect, serve, and reconnect with backoff until ``stop`` is set."""
        stop = stop or asyncio.Event()
        await self._cancel_orphaned_scans()
        if self._should_probe():
            await self._probe_versions()  # once, so the first hello already carries Defender's versions
        delays = self._delays()
        try:
            while not stop.is_set():
                try:
                    reason, was_ready = await self.connect_once(stop)
                except AgentConfigError:
                    raise  # e.g. a refused enrollment token: retrying cannot help
                except Exception as exc:  # a bug must not take the agent off the fleet: log it, reconnect
                    log.exception("the connection failed unexpectedly")
                    reason, was_ready = f"internal error: {type(exc).__name__}", False
                if stop.is_set():
                    break
                if was_ready:
                    delays = self._delays()  # a good session resets the backoff
                delay = next(delays)
                log.warning("disconnected from %s (%s); retrying in %.1fs", self.config.server, reason, delay)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), delay)
        finally:
            await self.shutdown()

    async def connect_once(self, stop: asyncio.Event | None = None) -> tuple[str, bool]:
        """One connection, start to end. Returns why it ended and whether it got as far as ready."""
        await self._cancel_orphaned_scans()  # before any new job can find "a scan is already running"
        try:
            reason, ready = await self._session_once(stop)
        except BaseException as exc:
            reason, ready = f"{type(exc).__name__}", False
            raise
        finally:
            self.last_close_reason = reason
            self.attempt_ended.set()
        return reason, ready

    async def _session_once(self, stop: asyncio.Event | None) -> tuple[str, bool]:
        pinned = self.state.pinned()
        if pinned is None and self._token is None:
            raise AgentConfigError(
                f"{self.config.host} is not enrolled yet; start it once with --enroll-token "
                f"(from `defender-bot enroll {self.config.host}`)"
            )
        token = self._unused_token(pinned)
        cert_pin = self._check_transport(pinned)
        protocol = AgentConnection(
            host=self.config.host,
            private_key=self._key,
            client_nonce=os.urandom(32),
            info=self.info(),
            pinned_server_key=None if token or pinned is None else pinned.server_key,
            enrollment=(token.secret, token.server_fingerprint) if token else None,
            max_frame_bytes=self.config.max_frame_bytes,
        )
        ready = False
        # One deadline from connecting to the welcome: a silent or hostile server (one that accepts and
        # never upgrades, or never sends its challenge) cannot hold the agent; lifted once ready.
        handshake = asyncio.timeout(self.config.handshake_timeout)
        try:
            async with (
                handshake,
                aiohttp.ClientSession() as http,
                http.ws_connect(
                    self.config.server,
                    heartbeat=self.config.heartbeat,
                    timeout=aiohttp.ClientWSTimeout(ws_close=2.0),  # a dead server must not hold up a stop
                    max_msg_size=self.config.max_frame_bytes,
                    ssl=self._ssl(cert_pin),
                ) as ws,
            ):
                session = _Session(protocol, ws)
                self._session = session
                await self._flush(session)
                closer = _close_when(stop, ws) if stop else None
                try:
                    async for message in ws:
                        if message.type is not aiohttp.WSMsgType.TEXT:
                            log.warning("closing: the server sent a non-text frame")
                            break
                        for event in protocol.receive(message.data):
                            if isinstance(event, Ready):
                                ready = True
                                handshake.reschedule(None)
                                await self._on_ready(session, event)
                            elif isinstance(event, JobReceived):
                                await self._on_job(session, event.job)
                            elif isinstance(event, ResultAcked):
                                self.state.acknowledged(event.job_id)
                            elif isinstance(event, Closed):
                                log.warning("closing connection: %s", event.reason)
                        await self._flush(session)
                        if protocol.close_reason:
                            break
                finally:
                    if closer:
                        closer.cancel()
                if protocol.enrollment_refused is not None:
                    raise EnrollmentRefused(_refusal_note(self.config.host, protocol.enrollment_refused))
                return protocol.close_reason or "connection closed", ready
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            if handshake.expired():
                reason = (
                    f"the server did not complete the handshake within {self.config.handshake_timeout:g}s"
                )
                log.warning("closing: %s", reason)
                return reason, ready
            return f"{type(exc).__name__}: {exc}", ready
        finally:
            self._session = None
            self.connected.clear()

    def _check_transport(self, pinned: Pinned | None) -> str | None:
        """The certificate fingerprint to pin, if any; with one, plain ws:// (which would ignore it) is an
        error even on loopback or with --insecure."""
        token = self._unused_token(pinned)
        pin = token.cert_fingerprint if token else pinned.cert_fingerprint if pinned else None
        url = urlsplit(self.config.server)
        if pin and url.scheme == "ws":
            where = "its enrollment token carries" if token else "it pinned at enrollment"
            raise AgentConfigError(
                f"--server {self.config.server} is plain ws://, but this agent must check the bridge's "
                f"TLS certificate ({where} one) and ws:// would ignore it; use "
                f"--server wss://{url.netloc}{url.path}"
            )
        return pin

    def _unused_token(self, pinned: Pinned | None) -> EnrollmentToken | None:
        """The --enroll-token, unless this state directory already enrolled with it (tokens are one-time)."""
        if self._token is None:
            return None
        if pinned is not None and pinned.token_used == _token_digest(self._token):
            return None
        return self._token

    @staticmethod
    def _ssl(cert_fingerprint: str | None) -> aiohttp.Fingerprint | bool:
        """Pin the bridge certificate we were enrolled with; without one, ws:// (loopback or --insecure)."""
        if cert_fingerprint:
            return aiohttp.Fingerprint(keys.b64decode(cert_fingerprint))
        return True

    async def _on_ready(self, session: _Session, event: Ready) -> None:
        if event.enrolled and self._token is not None:
            pinned = Pinned(
                server_key=event.server_key,
                cert_fingerprint=self._token.cert_fingerprint,
                token_used=_token_digest(self._token),
            )
            self.state.pin(pinned)
            log.info("enrolled %s with the bot; server key pinned", self.config.host)
        self.connected.set()
        for result in self.state.pending_results():
            session.protocol.send_result(result)
        for running in self._running.values():
            session.protocol.send_progress(running.envelope.job_id, "still running")

    async def _flush(self, session: _Session) -> None:
        async with session.send_lock:
            for frame in session.protocol.data_to_send():
                await session.ws.send_str(frame)

    async def _send(self, fill: Callable[[AgentConnection], None]) -> None:
        """Queue a frame on the live connection, if there is one; results wait in the outbox otherwise."""
        session = self._session
        if session is None or not self.connected.is_set():
            return
        fill(session.protocol)
        with contextlib.suppress(aiohttp.ClientError, ConnectionError, RuntimeError):
            await self._flush(session)

    # ---- jobs -----------------------------------------------------------------------------------

    async def _on_job(self, session: _Session, job: wire.Job) -> None:
        pinned = self.state.pinned()
        assert pinned is not None
        try:
            envelope = verify_job(
                job,
                bot_key=pinned.server_key,
                host=self.config.host,
                long_paths=discovery.long_paths_enabled(),
            )
            if self._known(envelope.job_id):
                self._answer_duplicate(session, envelope.job_id)
                return
            check_window(envelope, now=self._clock())
        except JobRejected as exc:
            log.warning("refused a job: %s", exc)
            session.protocol.send_refused(_job_id_hint(job), str(exc))
            return
        job_id = envelope.job_id
        action = envelope.command.action
        if action not in self.config.allowed_actions:
            log.warning("job %s refused: %s is not allowed on this host", job_id, action)
            self.state.remember(job_id, envelope.expires_at, now=self._clock())
            session.protocol.send_refused(job_id, f"this host does not allow `{action}` (local allowlist)")
            return
        self.state.accept(envelope, at=self._clock())  # before remember: a crash now still ends it clearly
        self.state.remember(job_id, envelope.expires_at, now=self._clock())
        task = asyncio.create_task(self._execute(envelope), name=f"job {job_id}")
        self._running[job_id] = _Running(envelope, task)

    def _known(self, job_id: str) -> bool:
        """Seen before: remembered (until its expiry), still running, or its result not yet taken."""
        return self.state.seen(job_id) or job_id in self._running or self.state.has_result(job_id)

    def _answer_duplicate(self, session: _Session, job_id: str) -> None:
        """The bot re-sent a job after a reconnect, or someone replayed one: never run it twice."""
        if self.state.has_result(job_id):
            for result in self.state.pending_results():
                if result.job_id == job_id:
                    session.protocol.send_result(result)
        elif job_id in self._running:
            session.protocol.send_progress(job_id, "still running")
        else:
            log.warning("job %s refused: already seen (replay)", job_id)
            session.protocol.send_refused(job_id, "this job id was already used (replay refused)")

    async def _execute(self, envelope: wire.JobEnvelope) -> None:
        job_id, command = envelope.job_id, envelope.command
        started = self._clock()
        self.state.mark_running(envelope, started_at=started)
        log.info("job %s on %s: running %s", job_id, self.config.host, command.action)
        await self._send(lambda p: p.send_progress(job_id, f"running {command.action}"))

        def record(pid: int) -> None:
            self.state.mark_running(envelope, started_at=started, process=processes.identify(pid))

        run, outcome = await self._perform(envelope, on_start=record)
        running = self._running.pop(job_id, None)
        status: wire.JobStatus
        cancelled_by_defender = outcome.error is not None and outcome.error.hresult == "0x800704C7"
        cancel_asked = running is not None and running.cancelled
        if cancel_asked and _scan_completed(run, outcome):
            # The cancel was marked before `-Scan -Cancel` ran (the scan may end the instant it does),
            # but this scan's own output shows it finished with a verdict: that verdict is the result.
            log.info("job %s: the scan had finished before the cancel reached it", job_id)
            status = "succeeded"
            note = " (the scan had finished before the cancel reached it)"
            outcome = outcome.model_copy(update={"summary": outcome.summary + note})
        elif cancel_asked or cancelled_by_defender:
            status = "cancelled"
        elif run.timed_out:
            status = "timed_out"
        else:
            status = "succeeded" if outcome.succeeded else "failed"
        result = wire.JobResult(
            job_id=job_id,
            status=status,
            outcome=outcome,
            exit_code=run.exit_code,
            output_tail=run.output[-wire.OUTPUT_TAIL_MAX :],
            output_truncated=run.truncated or len(run.output) > wire.OUTPUT_TAIL_MAX,
            started_at=started,
            finished_at=self._clock(),
        )
        self.state.store_result(result)
        log.info("job %s on %s: %s (%s)", job_id, self.config.host, status, outcome.summary)
        if self._learn_versions(outcome):
            await self._send(lambda p: p.send_heartbeat(self.info()))
        await self._send(lambda p: p.send_result(result))

    async def _perform(
        self, envelope: wire.JobEnvelope, *, on_start: Callable[[int], None]
    ) -> tuple[RunResult, Outcome]:
        """Run the job's tool; whatever happens, come back with an outcome that says what happened."""
        command = envelope.command
        try:
            if isinstance(command, commands.CancelCommand):
                return await self._cancel_scans(command, envelope, on_start=on_start)
            return await self._run_tool(command, timeout=envelope.timeout_seconds, on_start=on_start)
        except asyncio.CancelledError:
            running = self._running.get(envelope.job_id)
            if running is None or not running.cancelled:
                raise  # shutdown: the running marker stays, and the next start reports the job
            task = asyncio.current_task()
            if task is not None:
                task.uncancel()
            summary = "Scan cancelled; its process tree was stopped"
            return RunResult(exit_code=-1, output=""), Outcome(succeeded=False, summary=summary)
        except Exception as exc:  # a bug must still end the job clearly; the traceback stays in this log
            log.exception("job %s failed inside the agent", envelope.job_id)
            error = _agent_error(f"{type(exc).__name__} inside the agent; see the agent's log")
            summary = "The agent hit an internal error"
            return RunResult(exit_code=-1, output=""), Outcome(succeeded=False, summary=summary, error=error)

    async def _run_tool(
        self,
        command: commands.AgentCommand,
        *,
        timeout: float,
        on_start: Callable[[int], None] | None = None,
    ) -> tuple[RunResult, Outcome]:
        rediscovered = False
        while True:
            executable = self._executable(command)
            if executable is None:
                run = RunResult(exit_code=-1, output="")
                return run, Outcome(
                    succeeded=False, summary="MpCmdRun.exe was not found", error=hresults.not_found(None)
                )
            try:
                run = await self._runner.run(
                    [executable, *command.argv()],
                    timeout=timeout,
                    max_output=self.config.max_output,
                    on_start=on_start,
                )
                break
            except FileNotFoundError:
                if rediscovered or command.tool != "mpcmdrun" or self.config.mpcmdrun is not None:
                    run = RunResult(exit_code=-1, output="")
                    return run, Outcome(
                        succeeded=False,
                        summary=f"{executable} was not found",
                        error=hresults.not_found(executable),
                    )
                # A Defender platform update removes the old Platform\<version> folder: look again, once.
                log.warning(
                    "%s is gone (a Defender platform update?); looking for MpCmdRun.exe again", executable
                )
                self._mpcmdrun, rediscovered = None, True
        outcome = interpret(command, run)
        if isinstance(outcome.report, UpdateReport) and outcome.report.before is None:
            report = outcome.report.model_copy(update={"before": self.state.versions()})
            outcome = outcome.model_copy(update={"report": report})
        return run, outcome

    async def _cancel_scans(
        self, command: commands.CancelCommand, envelope: wire.JobEnvelope, *, on_start: Callable[[int], None]
    ) -> tuple[RunResult, Outcome]:
        """`MpCmdRun -Scan -Cancel`, then the process tree of any scan that does not stop in time."""
        scans = [r for r in self._running.values() if isinstance(r.envelope.command, commands.ScanCommand)]
        for scan in scans:
            scan.cancelled = True  # before the cancel runs: the scan may end the moment it does
        timeout = min(envelope.timeout_seconds, 60.0)
        run, outcome = await self._run_tool(command, timeout=timeout, on_start=on_start)
        if scans:
            _done, pending = await asyncio.wait([s.task for s in scans], timeout=self.config.cancel_grace)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending)
        return run, outcome

    def _executable(self, command: commands.AgentCommand) -> str | None:
        if command.tool == "powershell":
            return self.config.powershell
        if self._mpcmdrun is None:
            found = self._discover()
            self._mpcmdrun = str(found) if found else None
        return self._mpcmdrun

    def _recover_interrupted(self) -> None:
        """Jobs cut off by a crash end as failed, clearly, and their result is delivered like any other.
        A job whose real result reached the outbox before the crash keeps that result. What a cut-off
        job left running is stopped: its process tree now, a scan inside Defender before the first
        connection (:meth:`_cancel_orphaned_scans`)."""
        for job in self.state.interrupted():
            if self.state.has_result(job.job_id):
                log.info("job %s had finished before the agent stopped; keeping its result", job.job_id)
                self.state.clear_running(job.job_id)
                continue
            if not self.state.seen(job.job_id):  # died between accepting and remembering it
                self.state.remember(job.job_id, job.expires_at, now=self._clock())
            if job.started_at is None:
                summary = "The agent restarted before the job started; run it again"
                cause = "the agent process stopped after accepting the job, before starting it"
            else:
                summary = "The agent restarted while the job was running"
                cause = "the agent process stopped mid-job (crash, kill or reboot)"
                if self._stop_left_behind(job):
                    cause += "; the process it had started was still running and has been stopped"
                if job.action == "scan":
                    self._orphaned_scans.append(job.job_id)
            log.warning("job %s was interrupted by an agent restart; reporting it as failed", job.job_id)
            self.state.store_result(
                wire.JobResult(
                    job_id=job.job_id,
                    status="failed",
                    outcome=Outcome(succeeded=False, summary=summary, error=_agent_error(cause)),
                    started_at=job.started_at if job.started_at is not None else job.accepted_at,
                    finished_at=self._clock(),
                )
            )

    @staticmethod
    def _stop_left_behind(job: Interrupted) -> bool:
        """Kill the process tree a crashed run left behind, if that very process (not a later one that
        got its pid) still runs; True if it did."""
        if job.process is None or not processes.still_running(job.process):
            return False
        log.warning(
            "job %s: its process %d outlived the agent's restart; killing its process tree",
            job.job_id,
            job.process.pid,
        )
        return processes.kill_tree(job.process)

    async def _cancel_orphaned_scans(self) -> None:
        """A scan cut off by a crash may still run inside Defender's service even with its MpCmdRun gone;
        a new scan would then fail "already running". Ask Defender to cancel it, once, before any job."""
        if not self._orphaned_scans:
            return
        jobs, self._orphaned_scans = self._orphaned_scans, []
        log.warning("cancelling any scan left running by interrupted job(s) %s", ", ".join(jobs))
        try:
            _run, outcome = await self._run_tool(commands.CancelCommand(), timeout=60.0)
        except Exception:  # housekeeping: it must not keep the agent from connecting
            log.exception("MpCmdRun -Scan -Cancel after the restart failed")
            return
        log.info("MpCmdRun -Scan -Cancel after the restart: %s", outcome.summary)

    def _should_probe(self) -> bool:
        return (
            self.config.probe_status
            and self.state.versions() is None
            and "status" in self.config.allowed_actions
        )

    async def _probe_versions(self) -> None:
        """Learn Defender's versions once, so `hosts` can show them before anyone asks for `status`."""
        try:
            _run, outcome = await self._run_tool(commands.StatusCommand(), timeout=PROBE_TIMEOUT)
        except OSError as exc:
            log.info("could not read Defender's status: %s", exc)
            return
        if not self._learn_versions(outcome):
            log.info("Defender's versions are unknown for now: %s", outcome.summary)

    async def shutdown(self) -> None:
        tasks = [r.task for r in self._running.values()]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    def info(self) -> wire.AgentInfo:
        versions = self.state.versions()
        return wire.AgentInfo(
            agent_version=__version__,
            os=platform.platform()[:200],
            platform_version=versions.service if versions else None,
            engine_version=versions.engine if versions else None,
            signature_version=versions.antivirus if versions else None,
            long_paths=discovery.long_paths_enabled(),
            allowed_actions=tuple(sorted(self.config.allowed_actions)),
        )

    def _learn_versions(self, outcome: Outcome) -> bool:
        """Remember what Defender just said about its versions (for `hosts`, and update's before/after)."""
        report = outcome.report
        versions: EngineVersions | None = None
        if isinstance(report, UpdateReport):
            versions = report.after
        elif isinstance(report, RollbackReport):
            versions = report.versions
        elif isinstance(report, StatusReport):
            versions = EngineVersions(
                service=report.product_version,
                engine=report.engine_version,
                antivirus=report.antivirus.version,
                antispyware=report.antispyware.version,
            )
        if versions is None or versions == self.state.versions():
            return False
        self.state.set_versions(versions)
        return True


def _scan_completed(run: RunResult, outcome: Outcome) -> bool:
    """A scan that ran to its end: its output names a verdict (clean, threats, skipped) and no error.
    A scan Defender cancelled fails with 0x800704C7, and one whose tree was killed has no output."""
    return (
        not run.timed_out
        and outcome.succeeded
        and outcome.error is None
        and isinstance(outcome.report, ScanReport)
        and outcome.report.outcome in ("clean", "threats", "skipped")
    )


def _refusal_note(host: str, why: str) -> str:
    why = " ".join(why.split())[:200]  # the bot's words, on one line
    return (
        f"the bot refused the enrollment token for {host} ({why}); a token never becomes valid again: "
        f"make a new one with `defender-bot enroll {host}` and start the agent with it"
    )


def _token_digest(token: EnrollmentToken) -> str:
    return hashlib.sha256(token.secret.encode()).hexdigest()


def _agent_error(cause: str) -> ErrorInfo:
    return ErrorInfo(
        title="The job did not finish on the host",
        cause=cause,
        remedy="Run the command again; if it keeps failing, check the agent's log on the host.",
    )


def _job_id_hint(job: wire.Job) -> str:
    """The job id of a job we refused, for the bot's records, without trusting anything else in it."""
    with contextlib.suppress(ValueError):
        value = json.loads(job.envelope).get("job_id")
        if isinstance(value, str):
            return value[:64]
    return "unknown"


def _close_when(stop: asyncio.Event, ws: aiohttp.ClientWebSocketResponse) -> asyncio.Task[None]:
    async def watch() -> None:
        await stop.wait()
        await ws.close()

    return asyncio.create_task(watch())
