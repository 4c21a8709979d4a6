"""Many authenticated agents on one bot process: connect + auth time, bot memory per agent, idle CPU with
heartbeats, and job round trips with all of them connected, beside a raw websocket echo round trip.

    .venv/bin/python bench/agents.py [--agents 1000] [--concurrency 100] [--idle 20] [--jobs 200]

The bot is the real ``defender-bot serve`` in its own process (bolt app, job store, outbox, bridge with
its default 15 s heartbeat), so its RSS and CPU time (Linux /proc) are the bot's alone; the Slack Web
API it calls is the local stand-in, in this process. The agents are real
:class:`~agent_bridge.agent.Agent` instances in this process, sharing its event loop: each has its own
state directory and Ed25519 key, enrolls with its own one-time token (issued on the bot's database as
``defender-bot enroll`` does), proves its key in the challenge/response handshake, and keeps a websocket
open with aiohttp's 30 s heartbeat; their MpCmdRun is a fake that answers at once.

Steps: start the bot and a bare aiohttp websocket echo server (its own process too); connect one agent
and run a few jobs to warm the bot up; read the bot's RSS; connect N agents, at most ``--concurrency``
handshakes in flight; read RSS again (delta / N = memory per agent); stay idle ``--idle`` seconds with
everything connected (heartbeats only) and read the bot's CPU use; time ``--jobs`` scans, one at a
time, each for a random connected host; time raw websocket echoes; stop everything.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import random
import resource
import tempfile
import time
from pathlib import Path

from _common import (
    JobProbe,
    Latency,
    Trip,
    bench_agent,
    cpu_seconds,
    echo_roundtrips,
    heading,
    new_standin,
    note,
    print_machine,
    raise_open_files_limit,
    ratio,
    rss_kib,
    run,
    start_bare,
    start_bot,
    table,
    via_slack,
)

from agent_bridge import keys
from agent_bridge.agent import Agent
from bot.keyring import KeyRing
from bot.runtime import database_path, signing_key_path
from bot.store import Store

FDS_PER_AGENT = 2  # this process: the agent's socket, plus headroom for files it opens while working


class CountingHandler(logging.Handler):
    """Counts the agents' warnings (a refused or dropped connection logs one) and keeps a few to show."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.count = 0
        self.examples: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.count += 1
        if len(self.examples) < 3:
            self.examples.append(record.getMessage()[:200])


def mib(kib: int | None) -> str:
    return "n/a" if kib is None else f"{kib / 1024:.1f} MiB"


def kib_each(delta_kib: int | None, n: int) -> str:
    return "n/a" if delta_kib is None or n == 0 else f"{delta_kib / n:.1f} KiB"


def cpu_delta(pid: int, before: float | None) -> float | None:
    after = cpu_seconds(pid)
    return None if after is None or before is None else after - before


async def wait_outbox_empty(store: Store, timeout: float = 30.0) -> None:
    """Poll the bot's database until every queued Slack post is out (the bot is another process)."""
    deadline = time.monotonic() + timeout
    while store.db.execute("SELECT 1 FROM slack_outbox WHERE done_at IS NULL LIMIT 1").fetchone():
        if time.monotonic() > deadline:
            raise TimeoutError("the bot's Slack outbox did not drain")
        await asyncio.sleep(0.002)


async def measure(args: argparse.Namespace, workdir: Path) -> None:
    warnings = CountingHandler()
    agent_log = logging.getLogger("agent_bridge")
    agent_log.addHandler(warnings)
    agent_log.propagate = False
    n = args.agents
    async with contextlib.AsyncExitStack() as stack:
        standin = await new_standin()
        stack.push_async_callback(standin.stop)
        bot, slack_url, agent_url = await start_bot(workdir, standin)
        stack.push_async_callback(bot.stop)
        standin.set_request_url(slack_url)
        echo, echo_url = await start_bare("echo", workdir)
        stack.push_async_callback(echo.stop)
        data_dir = workdir / "bot"
        store = Store(database_path(data_dir))  # the bot's own database, as `defender-bot enroll` opens it
        stack.callback(store.close)
        keyring = KeyRing(store)
        server_key = keys.encode_public_key(
            keys.load_or_create_private_key(signing_key_path(data_dir)).public_key()
        )
        probe = JobProbe()
        stop = asyncio.Event()
        tasks: list[asyncio.Task[None]] = []

        async def stop_agents() -> None:
            stop.set()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 60)

        stack.push_async_callback(stop_agents)

        def make(host: str) -> Agent:
            token = keyring.issue_token(host, server_key=server_key, cert_fingerprint=None).encode()
            return bench_agent(
                url=agent_url, host=host, state_dir=workdir / "agents" / host, token=token, probe=probe
            )

        # -- warm the bot up with one agent and a few jobs, then take its baseline --------------------
        warm = make("bench-warm")
        tasks.append(asyncio.create_task(warm.run(stop)))
        await asyncio.wait_for(warm.connected.wait(), 30)
        for i in range(args.warmup):
            await probe.trip("bench-warm", via_slack(standin, "bench-warm", f"C0WARM{i:05d}"))
        await wait_outbox_empty(store)
        heading(f"setting up {n} agents (keys, state directories, one-time enrollment tokens)")
        started = time.perf_counter()
        hosts = [f"bench-{i:05d}" for i in range(n)]
        agents = [make(host) for host in hosts]
        note(f"{time.perf_counter() - started:.1f} s (not part of any figure below)")
        await asyncio.sleep(1.0)
        rss_before, bench_rss_before = bot.rss_kib(), rss_kib(os.getpid())

        # -- connect + authenticate --------------------------------------------------------------------
        heading(f"connecting {n} agents, at most {args.concurrency} handshakes in flight")
        gate = asyncio.Semaphore(args.concurrency)
        connect_times: list[float] = []
        failures_before = warnings.count

        async def connect(agent: Agent) -> None:
            async with gate:
                began = time.perf_counter()
                tasks.append(asyncio.create_task(agent.run(stop)))
                await asyncio.wait_for(agent.connected.wait(), args.connect_timeout)
                connect_times.append(time.perf_counter() - began)

        cpu_before = bot.cpu_seconds()
        started = time.perf_counter()
        await asyncio.gather(*(connect(a) for a in agents))
        connect_wall = time.perf_counter() - started
        connect_cpu = cpu_delta(bot.pid, cpu_before)
        connect_failures = warnings.count - failures_before
        await asyncio.sleep(2.0)
        rss_after, bench_rss_after = bot.rss_kib(), rss_kib(os.getpid())

        # -- idle, heartbeats only -----------------------------------------------------------------------
        heading(f"idle for {args.idle:g} s with all {n + 1} agents connected (heartbeats only)")
        drops_before = warnings.count
        cpu_before = bot.cpu_seconds()
        await asyncio.sleep(args.idle)
        idle_cpu = cpu_delta(bot.pid, cpu_before)
        idle_drops = warnings.count - drops_before
        still = sum(1 for a in agents if a.connected.is_set())
        rss_idle = bot.rss_kib()
        note("done")

        # -- job round trips, each for a random connected host ---------------------------------------
        heading(f"{args.jobs} scans, one at a time, each for a random one of the {n} agents")
        note("each in a channel of its own and started once the previous job's Slack posts are out")
        rng = random.Random(42)
        trips: list[Trip] = []
        for i in range(args.jobs):
            host = rng.choice(hosts)
            await wait_outbox_empty(store)
            trips.append(await probe.trip(host, via_slack(standin, host, f"C0JOB{i:06d}")))
        echo_latency = Latency.of(await echo_roundtrips(echo_url, args.echoes))
        note("done")
        rss_end = bot.rss_kib()

    # -- figures --------------------------------------------------------------------------------------
    delta = None if rss_before is None or rss_after is None else rss_after - rss_before
    idle_delta = None if rss_before is None or rss_idle is None else rss_idle - rss_before
    bench_delta = (
        None if bench_rss_before is None or bench_rss_after is None else bench_rss_after - bench_rss_before
    )
    handshake = Latency.of(connect_times)
    heading(f"{n} agents on one bot process")
    cpu_text = (
        "n/a" if connect_cpu is None else f"{connect_cpu:.2f} s ({connect_cpu / n * 1000:.2f} ms per agent)"
    )
    idle_text = "n/a" if idle_cpu is None else f"{idle_cpu / args.idle * 100:.1f} % of one core"
    rows = [
        ["agents connected and authenticated", f"{len(connect_times)} of {n}"],
        ["connect + enroll + auth, all of them", f"{connect_wall:.2f} s ({n / connect_wall:.0f} agents/s)"],
        ["  per agent: p50 / p99 / max", " / ".join(handshake.cells()) + " ms"],
        ["  connection failures/retries while connecting", str(connect_failures)],
        ["  bot CPU time while connecting", cpu_text],
        ["bot RSS before → after connecting", f"{mib(rss_before)} → {mib(rss_after)}"],
        ["bot memory per agent (RSS delta / N)", kib_each(delta, n)],
        ["  the same after idling (heartbeats exercised)", kib_each(idle_delta, n)],
        [f"bot CPU while idle {args.idle:g} s (heartbeats)", idle_text],
        ["agents still connected after idling", f"{still} of {n} ({idle_drops} drops)"],
        ["bot RSS after idle / after the jobs", f"{mib(rss_idle)} / {mib(rss_end)}"],
        ["this process (the agents): RSS per agent", kib_each(bench_delta, n)],
    ]
    print(table(["figure", "value"], rows, left=2))
    if warnings.examples:
        note(f"agent warnings ({warnings.count}), e.g.: " + " | ".join(warnings.examples))

    heading(f"job round trip with {n + 1} agents connected, beside a raw websocket round trip")
    lat_rows = [
        ("raw websocket echo (bare aiohttp server process, ~1 KB frame)", echo_latency),
        ("slash command sent → ack received (job stored)", Latency.of([t.ack for t in trips])),
        ("slash command sent → job on the agent", Latency.of([t.on_agent for t in trips])),
        ("slash command sent → result stored (ResultAck back)", Latency.of([t.stored for t in trips])),
        ("  of which: job on the agent → result stored", Latency.of([t.stored - t.on_agent for t in trips])),
    ]
    print(
        table(
            ["path", "n", "p50 ms", "p99 ms", "max ms", "p50/echo"],
            [[name, str(lat.n), *lat.cells(), ratio(lat.p50, echo_latency.p50)] for name, lat in lat_rows],
        )
    )


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--agents", type=int, default=1000, help="agents to connect (default 1000)")
    parser.add_argument("--concurrency", type=int, default=100, help="handshakes in flight (default 100)")
    parser.add_argument("--idle", type=float, default=20.0, help="seconds idle with heartbeats (default 20)")
    parser.add_argument("--jobs", type=int, default=200, help="timed job round trips (default 200)")
    parser.add_argument(
        "--warmup", type=int, default=20, help="untimed jobs before the baseline (default 20)"
    )
    parser.add_argument("--echoes", type=int, default=2000, help="raw websocket round trips (default 2000)")
    parser.add_argument("--connect-timeout", type=float, default=120.0, help="per agent (default 120 s)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR, format="%(levelname)s %(name)s: %(message)s")
    soft, hard = raise_open_files_limit()
    print_machine()
    print(f"   open files soft/hard limit {soft}/{hard} (this process and the bot each need one per agent)")
    needed = args.agents * FDS_PER_AGENT + 200
    if needed > soft:
        raise SystemExit(
            f"--agents {args.agents} needs about {needed} open files here, the limit is {soft}; "
            f"raise it (ulimit -n) or run fewer agents"
        )
    with tempfile.TemporaryDirectory(prefix="defender-bench-") as tmp:
        await measure(args, Path(tmp))
    usage = resource.getrusage(resource.RUSAGE_SELF)
    note(f"this process used {usage.ru_utime + usage.ru_stime:.1f} s CPU (agents, stand-in, clients)")


if __name__ == "__main__":
    run(main)
