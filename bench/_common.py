"""What the benchmarks share: latency summaries, aligned tables, machine facts, child processes, fakes.

Nothing here asserts anything about speed: the benchmarks print figures and a person reads them.
Child processes are started with :meth:`Child.start`, listen on port 0 only (so a benchmark never
collides with a running bot) and are always stopped by the caller through an ``AsyncExitStack``, also when
the run fails or is interrupted (:func:`run` turns SIGTERM into the same cancellation as Ctrl-C).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import platform
import re
import resource
import signal
import sys
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import IO, Any, TypeVar

import aiohttp

from agent_bridge import keys
from agent_bridge.agent import Agent, AgentConfig, backoff
from agent_bridge.agent_state import AgentState
from agent_bridge.runner import DEFAULT_MAX_OUTPUT, RunResult
from bot.keyring import KeyRing
from bot.runtime import database_path, signing_key_path
from bot.slack_standin import SlackStandIn
from bot.store import Store

_T = TypeVar("_T")

BENCH_DIR = Path(__file__).resolve().parent
SERVERS = BENCH_DIR / "_servers.py"  # the bare comparison servers (websocket echo, ack-only bolt app)
BOT_EXE = Path(sys.executable).parent / "defender-bot"

SIGNING_SECRET = "bench-signing-secret-0123456789"
BOT_TOKEN = "xoxb-bench"
USER = "U0BENCH"
CHANNEL = "C0BENCH"
FAKE_MPCMDRUN = "C:\\Program Files\\Windows Defender\\MpCmdRun.exe"  # never executed: the runner is fake

# The benchmark user may run everything, anywhere, without approvals: we time the mechanics, not people.
POLICY = """
[roles.admin]
commands = ["*"]

[[grants]]
role = "admin"
users = ["U0BENCH"]
hosts = ["*"]
channels = ["*"]

[approval]
commands = ["rollback"]
approvers = { users = ["U0NOBODY"] }
"""

CLEAN_SCAN = "Scan starting...\nScan finished.\nScanning {path} found no threats.\n"
SCAN_PATH = "C:\\Bench"


def scan_text(host: str) -> str:
    """The chat command every timed job runs: a custom scan, answered at once by the fake MpCmdRun."""
    return f"scan {host} custom {SCAN_PATH}"


# ---- numbers ------------------------------------------------------------------------------------


def percentile(ordered: Sequence[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default); ``ordered`` must be sorted."""
    if not ordered:
        return math.nan
    position = (len(ordered) - 1) * q
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


@dataclass(frozen=True)
class Latency:
    """A latency distribution, in seconds."""

    n: int
    p50: float
    p99: float
    max: float
    mean: float

    @classmethod
    def of(cls, samples: Sequence[float]) -> Latency:
        ordered = sorted(samples)
        mean = sum(ordered) / len(ordered) if ordered else math.nan
        top = ordered[-1] if ordered else math.nan
        return cls(len(ordered), percentile(ordered, 0.5), percentile(ordered, 0.99), top, mean)

    def cells(self) -> list[str]:
        """p50, p99, max in milliseconds, for a table row."""
        return [ms(self.p50), ms(self.p99), ms(self.max)]


def ms(seconds: float) -> str:
    if math.isnan(seconds):
        return "-"
    value = seconds * 1000
    return f"{value:.2f}" if value < 100 else f"{value:.0f}"


def ratio(a: float, b: float) -> str:
    return f"{a / b:.1f}x" if b > 0 and not math.isnan(a) else "-"


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], *, left: int = 1) -> str:
    """A plain aligned table: the first ``left`` columns left-aligned, the figures right-aligned."""
    widths = [max(len(str(row[i])) for row in [headers, *rows]) for i in range(len(headers))]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            str(c).ljust(w) if i < left else str(c).rjust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(headers), rule, *(line(r) for r in rows)])


def heading(title: str) -> None:
    print(f"\n== {title} ==", flush=True)


def note(text: str) -> None:
    print(f"   {text}", flush=True)


# ---- running a benchmark ------------------------------------------------------------------------


def run(main: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """``asyncio.run(main())``, where SIGTERM, like Ctrl-C, cancels the run so that everything it started
    is stopped and its temporary directory removed on the way out."""

    async def guarded() -> None:
        task = asyncio.current_task()
        assert task is not None
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
        await main()

    try:
        asyncio.run(guarded())
    except (KeyboardInterrupt, asyncio.CancelledError):
        print("\ninterrupted; everything the benchmark started has been stopped", file=sys.stderr)
        raise SystemExit(130) from None


# ---- the machine --------------------------------------------------------------------------------


def machine_info() -> list[tuple[str, str]]:
    model = "?"
    with contextlib.suppress(OSError):
        for raw in Path("/proc/cpuinfo").read_text().splitlines():
            if raw.startswith("model name"):
                model = raw.split(":", 1)[1].strip()
                break
    packages = []
    for name in ("aiohttp", "slack-bolt", "pydantic", "cryptography"):
        try:
            packages.append(f"{name} {version(name)}")
        except PackageNotFoundError:
            continue
    memory = "?"
    with contextlib.suppress(OSError, ValueError, IndexError):
        for raw in Path("/proc/meminfo").read_text().splitlines():
            if raw.startswith("MemTotal:"):
                memory = f"{int(raw.split()[1]) / 1024 / 1024:.1f} GiB"
    return [
        ("cpus", f"{os.cpu_count()} ({model})"),
        ("memory", memory),
        ("python", f"{platform.python_implementation()} {platform.python_version()}"),
        ("platform", platform.platform()),
        ("packages", ", ".join(packages)),
    ]


def print_machine() -> None:
    heading("machine")
    for key, value in machine_info():
        print(f"   {key:<9} {value}")


def raise_open_files_limit() -> tuple[int, int]:
    """Soft RLIMIT_NOFILE up to the hard limit (children inherit it); returns (soft, hard) now."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)


def rss_kib(pid: int) -> int | None:
    """Resident set size of a process (Linux /proc); None where that is not available."""
    try:
        for raw in Path(f"/proc/{pid}/status").read_text().splitlines():
            if raw.startswith("VmRSS:"):
                return int(raw.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time a process has used so far (Linux /proc)."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
        fields = text[text.rindex(")") + 2 :].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


# ---- child processes ----------------------------------------------------------------------------


class Child:
    """A process this benchmark started; stdout is read for its ready line, stderr goes to a log file."""

    def __init__(self, name: str, proc: asyncio.subprocess.Process, log: IO[bytes], log_path: Path) -> None:
        self.name = name
        self.proc = proc
        self.log_path = log_path
        self._log = log
        self._drain: asyncio.Task[None] | None = None

    @classmethod
    async def start(
        cls,
        name: str,
        argv: Sequence[str],
        *,
        ready: re.Pattern[str],
        log_path: Path,
        env: dict[str, str] | None = None,
        timeout: float = 60.0,
    ) -> tuple[Child, re.Match[str]]:
        """Start ``argv`` and wait for a stdout line matching ``ready``; the process is stopped on failure."""
        log = log_path.open("wb")
        proc = await asyncio.create_subprocess_exec(
            *argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=log, env=env
        )
        child = cls(name, proc, log, log_path)
        try:
            match = await asyncio.wait_for(child._ready_line(ready), timeout)
        except BaseException:
            await child.stop()
            raise
        child._drain = asyncio.create_task(child._read_rest())
        return child, match

    async def _ready_line(self, ready: re.Pattern[str]) -> re.Match[str]:
        assert self.proc.stdout is not None
        while raw := await self.proc.stdout.readline():
            match = ready.search(raw.decode(errors="replace"))
            if match:
                return match
        tail = self.log_path.read_text(errors="replace")[-2000:]
        raise RuntimeError(f"{self.name} exited before it was ready (exit {await self.proc.wait()}):\n{tail}")

    async def _read_rest(self) -> None:
        assert self.proc.stdout is not None
        while await self.proc.stdout.read(65536):
            pass

    @property
    def pid(self) -> int:
        return self.proc.pid

    def rss_kib(self) -> int | None:
        return rss_kib(self.pid)

    def cpu_seconds(self) -> float | None:
        return cpu_seconds(self.pid)

    async def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM, then SIGKILL if it does not exit in time; always reaped."""
        if self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.proc.wait(), timeout)
            except BaseException as exc:  # too slow, or we are being cancelled: never leave it running
                with contextlib.suppress(ProcessLookupError):
                    self.proc.kill()
                await self.proc.wait()
                if not isinstance(exc, TimeoutError):
                    raise
        if self._drain is not None:
            self._drain.cancel()
            await asyncio.gather(self._drain, return_exceptions=True)  # our own cancellation still propagates
        self._log.close()


READY = re.compile(r"^listening (\S+)")


async def start_bare(kind: str, workdir: Path, *extra: str) -> tuple[Child, str]:
    """One of the bare comparison servers in ``_servers.py``, in its own process; returns its URL."""
    child, match = await Child.start(
        f"bare {kind}",
        [sys.executable, str(SERVERS), kind, *extra],
        ready=READY,
        log_path=workdir / f"bare-{kind}.log",
    )
    return child, match.group(1)


BOT_READY = re.compile(r"ready; Slack requests at (http://\S+?), agents at (wss?://\S+)")


def workspace(path: Path) -> Path:
    """A directory for one part of a run (created before anything is timed)."""
    path.mkdir(parents=True, exist_ok=True)
    return path


def bot_environment(workdir: Path, standin: SlackStandIn, **extra: str) -> dict[str, str]:
    policy = workspace(workdir) / "policy.toml"
    policy.write_text(POLICY, encoding="utf-8")
    return {
        **os.environ,
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_API_URL": standin.api_url,
        "DEFENDER_POLICY": str(policy),
        "DEFENDER_DATA_DIR": str(workdir / "bot"),
        "DEFENDER_HTTP_HOST": "127.0.0.1",
        "DEFENDER_HTTP_PORT": "0",
        "DEFENDER_BRIDGE_HOST": "127.0.0.1",
        "DEFENDER_BRIDGE_PORT": "0",
        **extra,
    }


async def start_bot(workdir: Path, standin: SlackStandIn, **extra: str) -> tuple[Child, str, str]:
    """``defender-bot serve`` as its own process, talking to ``standin``; returns (slack URL, agent URL)."""
    child, match = await Child.start(
        "defender-bot serve",
        [str(BOT_EXE), "serve"],
        ready=BOT_READY,
        log_path=workdir / "bot.log",
        env=bot_environment(workdir, standin, **extra),
    )
    return child, match.group(1), match.group(2)


def announce_hosts(data_dir: Path, hosts: Sequence[str]) -> None:
    """Make ``hosts`` known to a running bot the way `defender-bot enroll` does: a one-time token each,
    issued on the bot's own database (a second connection, WAL). The bot refuses commands for hosts it
    has never heard of; these are known, with no agent behind them (offline)."""
    store = Store(database_path(data_dir))
    try:
        keyring = KeyRing(store)
        server_key = keys.encode_public_key(
            keys.load_or_create_private_key(signing_key_path(data_dir)).public_key()
        )
        for host in hosts:
            keyring.issue_token(host, server_key=server_key, cert_fingerprint=None)
    finally:
        store.close()


async def new_standin() -> SlackStandIn:
    standin = SlackStandIn(signing_secret=SIGNING_SECRET, bot_token=BOT_TOKEN)
    await standin.start()
    standin.add_user(USER, "bench")
    standin.add_channel(CHANNEL, "bench")
    return standin


# ---- the raw websocket yardstick ----------------------------------------------------------------

ECHO_PAYLOAD = '{"type":"job","pad":"' + "x" * 1000 + '"}'  # about the size of a signed job frame


async def echo_roundtrips(url: str, count: int, *, warmup: int = 100) -> list[float]:
    """Send a text frame, wait for its echo, ``count`` times in a row: the floor any bridge sits on."""
    samples: list[float] = []
    async with aiohttp.ClientSession() as http, http.ws_connect(url) as ws:
        for i in range(warmup + count):
            started = time.perf_counter()
            await ws.send_str(ECHO_PAYLOAD)
            message = await ws.receive()
            if message.type is not aiohttp.WSMsgType.TEXT:
                raise RuntimeError(f"the echo server answered {message.type.name}")
            if i >= warmup:
                samples.append(time.perf_counter() - started)
    return samples


# ---- agents with a fake MpCmdRun, and a probe on each job's way -----------------------------------


class InstantMpCmdRun:
    """Stands in for MpCmdRun.exe: answers every argv at once with a clean scan (or ``output``)."""

    def __init__(self, on_run: Callable[[], None], output: str | None = None) -> None:
        self._on_run = on_run
        self._output = output

    async def run(
        self,
        argv: Sequence[str],
        *,
        timeout: float,
        max_output: int = DEFAULT_MAX_OUTPUT,
        on_start: Callable[[int], None] | None = None,
    ) -> RunResult:
        self._on_run()
        if self._output is not None:
            return RunResult(
                exit_code=0, output=self._output[-max_output:], truncated=len(self._output) > max_output
            )
        path = argv[argv.index("-File") + 1] if "-File" in argv else ""
        return RunResult(exit_code=0, output=CLEAN_SCAN.format(path=path))


class AckWatchingState(AgentState):
    """The agent's own state directory, which also reports when the bot acknowledges a stored result."""

    def __init__(self, directory: Path, on_ack: Callable[[str], None]) -> None:
        super().__init__(directory)
        self._on_ack = on_ack

    def acknowledged(self, job_id: str) -> None:
        super().acknowledged(job_id)
        self._on_ack(job_id)


@dataclass(frozen=True)
class Trip:
    """One job's way, in seconds from the moment the command was sent."""

    job_id: str
    ack: float  # the bot's answer is back (the job is stored by then)
    on_agent: float  # the agent started the (fake) MpCmdRun
    stored: float  # the bot stored the result and told the agent so (ResultAck)


class JobProbe:
    """Timestamps each job's arrival on its agent and the bot's acknowledgement of its stored result."""

    def __init__(self) -> None:
        self._ran: dict[str, asyncio.Future[float]] = {}
        self._stored: dict[str, asyncio.Future[tuple[str, float]]] = {}

    def runner(self, host: str, output: str | None = None) -> InstantMpCmdRun:
        return InstantMpCmdRun(lambda: _settle(self._ran.get(host), time.perf_counter()), output)

    def state(self, host: str, directory: Path) -> AckWatchingState:
        return AckWatchingState(
            directory, lambda job_id: _settle(self._stored.get(host), (job_id, time.perf_counter()))
        )

    async def trip(self, host: str, send: Callable[[], Awaitable[str]], *, timeout: float = 30.0) -> Trip:
        """Ask for one scan of ``host`` through ``send`` (which returns the bot's answer) and follow it to
        the stored result."""
        loop = asyncio.get_running_loop()
        ran, stored = loop.create_future(), loop.create_future()
        self._ran[host], self._stored[host] = ran, stored
        try:
            started = time.perf_counter()
            answer = await send()
            acked = time.perf_counter()
            found = re.search(r"`(j-[0-9a-f]+)`", answer)
            if not found:
                raise RuntimeError(f"{host}: the bot did not accept the job: {answer!r}")
            on_agent = await asyncio.wait_for(ran, timeout)
            job_id, done = await asyncio.wait_for(stored, timeout)
            if job_id != found.group(1):
                raise RuntimeError(f"{host}: acknowledged {job_id}, expected {found.group(1)}")
        finally:
            del self._ran[host], self._stored[host]
        return Trip(job_id, acked - started, on_agent - started, done - started)


def via_slack(standin: SlackStandIn, host: str, channel: str = CHANNEL) -> Callable[[], Awaitable[str]]:
    """Send the scan as Slack would: a signed slash command to the bot's /slack/events; the ack's text."""

    async def send() -> str:
        response = await standin.send_slash_command(user=USER, channel=channel, text=scan_text(host))
        if not response.ok:
            return f"HTTP {response.status} {response.error or response.text}"
        return str((response.json or {}).get("text", ""))

    return send


def _settle(future: asyncio.Future[_T] | None, value: _T) -> None:
    if future is not None and not future.done():
        future.set_result(value)


def bench_agent(
    *, url: str, host: str, state_dir: Path, token: str, probe: JobProbe, output: str | None = None
) -> Agent:
    """A real :class:`Agent` (real keys, handshake, signed jobs, state on disk) with the fake MpCmdRun."""
    agent = Agent(
        AgentConfig(
            server=url,
            host=host,
            state_dir=state_dir,
            mpcmdrun=FAKE_MPCMDRUN,
            enroll_token=token,
            probe_status=False,  # no start-up `Get-MpComputerStatus`: the fake answers only scans
        ),
        runner=probe.runner(host, output),
        delays=lambda: backoff(initial=0.2, cap=5.0),  # a failed handshake retries soon, jittered
    )
    # The same state directory (the agent made its key there a moment ago), seen through a subclass that
    # also reports the bot's ResultAck: the only way to see "result stored" from outside the bot.
    agent.state = probe.state(host, state_dir)
    return agent
