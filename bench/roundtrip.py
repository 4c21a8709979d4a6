"""Command accepted → job on the agent → result stored, beside a raw websocket round trip; and how the
Slack posts of a burst of jobs in one channel are spread in time.

    .venv/bin/python bench/roundtrip.py [--jobs 300] [--echoes 2000] [--burst-jobs 5] [--no-slack-limit]

Part 1 runs the real bot (:class:`~bot.runtime.BotRuntime`: bolt app, job store, outbox, bridge) with
one real in-process agent whose MpCmdRun is a fake that answers at once, the Slack stand-in, and a bare
aiohttp websocket echo server, all in this one process and event loop on loopback, so both sides of
the comparison pay the same costs. One job at a time; each is timed from the moment its signed slash
command is sent until the agent gets the bot's acknowledgement of the stored result.

Part 2 starts a fresh bot and stand-in (the stand-in answers chat.postMessage beyond ~1 message/s per
channel with 429 + Retry-After, as Slack does), sends K scans at once in one channel, one of them with
a long output, waits until everything is posted, and reports which Web API calls that caused and when.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import logging
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from _common import (
    CHANNEL,
    USER,
    JobProbe,
    Latency,
    Trip,
    bench_agent,
    bot_environment,
    echo_roundtrips,
    heading,
    new_standin,
    note,
    print_machine,
    ratio,
    run,
    scan_text,
    table,
    via_slack,
)
from _servers import echo_app
from aiohttp import web

from agent_bridge.agent import Agent
from bot.runtime import BotRuntime
from bot.settings import Settings
from bot.slack_standin import SlackStandIn

FINAL_PREFIXES = ("succeeded:", "failed:", "timed_out:", "cancelled:")  # a result reply's text
LONG_OUTPUT = "".join(  # ~200 KB
    f"line {i:06d}: scanning C:\\Windows\\System32\\file{i}.dll\n" for i in range(4000)
)


@dataclass
class Deployment:
    standin: SlackStandIn
    runtime: BotRuntime
    probe: JobProbe
    agents: dict[str, Agent]


@asynccontextmanager
async def deployment(
    workdir: Path, hosts: dict[str, str | None], *, slack_limit: bool, burst: int | None
) -> AsyncIterator[Deployment]:
    """The real bot on loopback with one real agent per host (``host → fake output``, None: clean scan)."""
    standin = await new_standin()
    stop = asyncio.Event()
    tasks: list[asyncio.Task[None]] = []
    runtime: BotRuntime | None = None
    try:
        if slack_limit:
            standin.enforce_rate_limit(1.0)
        extra = {"DEFENDER_SLACK_BURST": str(burst)} if burst is not None else {}
        runtime = BotRuntime(Settings.model_validate(bot_environment(workdir, standin, **extra)))
        endpoints = await runtime.start()
        standin.set_request_url(endpoints.slack_url)
        probe = JobProbe()
        agents: dict[str, Agent] = {}
        for host, output in hosts.items():
            token = runtime.keyring.issue_token(
                host, server_key=runtime.bridge.server_key, cert_fingerprint=None
            )
            agent = bench_agent(
                url=endpoints.agent_url,
                host=host,
                state_dir=workdir / "agents" / host,
                token=token.encode(),
                probe=probe,
                output=output,
            )
            agents[host] = agent
            tasks.append(asyncio.create_task(agent.run(stop)))
        await asyncio.wait_for(asyncio.gather(*(a.connected.wait() for a in agents.values())), 30)
        yield Deployment(standin, runtime, probe, agents)
    finally:
        stop.set()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 15)
        if runtime is not None:
            await runtime.stop()
        await standin.stop()


@asynccontextmanager
async def echo_server() -> AsyncIterator[str]:
    runner = web.AppRunner(echo_app(), access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        host, port = runner.addresses[0][:2]
        yield f"ws://{host}:{port}/echo"
    finally:
        await runner.cleanup()


# ---- part 1: latency ------------------------------------------------------------------------------


def accepting(bot: Deployment, host: str, channel: str) -> Callable[[], Awaitable[str]]:
    """What the bolt listener calls for a slash command: parse, authorize, store the job, spawn its
    dispatch, answer. Called directly, so "accepted" is exactly the moment the job is stored."""

    async def send() -> str:
        return bot.runtime.requests.handle_command(
            user_id=USER, channel_id=channel, text=scan_text(host)
        ).text

    return send


async def latency(workdir: Path, *, jobs: int, echoes: int, warmup: int) -> None:
    heading(f"part 1: one job at a time, {jobs} jobs per path, everything in this process on loopback")
    note("each job is asked for in a channel of its own, so Slack pacing never backs the outbox up, and")
    note("starts once the previous job's Slack posts are out: each is timed on an otherwise idle bot")
    host = "host-rt"
    # A job posts 4 paced messages in its channel (root, sent, running, result); with the bot's default
    # burst of 3 the last would wait ~1 s for its token, which is never timed here but would make the
    # run last minutes. A burst of 5 lets each job's posts out at once.
    async with deployment(workdir, {host: None}, slack_limit=False, burst=5) as bot, echo_server() as url:
        channels = (f"C0RT{i:06d}" for i in itertools.count())
        store = bot.runtime.store

        async def idle() -> None:
            await bot.runtime.outbox.wait_until(lambda: not store.pending_outbox(), timeout=30)

        direct: list[Trip] = []
        http: list[Trip] = []
        for i in range(warmup + jobs):
            await idle()
            trip = await bot.probe.trip(host, accepting(bot, host, next(channels)))
            await idle()
            over_http = await bot.probe.trip(host, via_slack(bot.standin, host, next(channels)))
            if i >= warmup:
                direct.append(trip)
                http.append(over_http)
        echo = Latency.of(await echo_roundtrips(url, echoes))
    rows = [
        ("raw websocket echo (aiohttp, ~1 KB text frame)", echo),
        ("command accepted (handle_command: parsed, stored)", Latency.of([t.ack for t in direct])),
        ("  → job on the agent", Latency.of([t.on_agent for t in direct])),
        ("  → result stored (ResultAck back at the agent)", Latency.of([t.stored for t in direct])),
        ("  of which: job on the agent → result stored", Latency.of([t.stored - t.on_agent for t in direct])),
        ("signed slash command over HTTP → ack received", Latency.of([t.ack for t in http])),
        ("  → job on the agent", Latency.of([t.on_agent for t in http])),
        ("  → result stored (ResultAck back at the agent)", Latency.of([t.stored for t in http])),
    ]
    print(
        table(
            ["path (times from the start of the command)", "n", "p50 ms", "p99 ms", "max ms", "p50/echo"],
            [[name, str(lat.n), *lat.cells(), ratio(lat.p50, echo.p50)] for name, lat in rows],
        )
    )
    total = rows[3][1]
    note(
        f"accepted → result stored / raw echo: p50 {ratio(total.p50, echo.p50)}, "
        f"p99 {ratio(total.p99, echo.p99)}"
    )


async def busy_channel(workdir: Path, *, jobs: int) -> None:
    heading(f"part 1b: the same {jobs} jobs, one at a time, all asked for in ONE channel")
    note("Slack allows ~1 post/s per channel, so the outbox backlog grows by ~4 posts per job")
    host = "host-busy"
    async with deployment(workdir, {host: None}, slack_limit=False, burst=None) as bot:
        trips: list[Trip] = []
        backlog: list[int] = []
        for _ in range(jobs):
            trips.append(await bot.probe.trip(host, accepting(bot, host, CHANNEL)))
            backlog.append(len(bot.runtime.store.pending_outbox()))
    tenth = max(1, jobs // 10)
    rows = []
    for name, part, queued in (
        (f"first {tenth} jobs", trips[:tenth], backlog[tenth - 1]),
        (f"last {tenth} jobs", trips[-tenth:], backlog[-1]),
    ):
        rows.append([name, str(queued), *Latency.of([t.stored for t in part]).cells()])
    print(table(["accepted → result stored", "posts queued", "p50 ms", "p99 ms", "max ms"], rows))


# ---- part 2: Slack posting ------------------------------------------------------------------------


async def posting(workdir: Path, *, burst_jobs: int, slack_limit: bool, burst: int | None) -> None:
    limit = "answers 429 beyond ~1 msg/s per channel (burst 3)" if slack_limit else "does not rate-limit"
    heading(f"part 2: {burst_jobs} scans sent at once in one channel; the stand-in {limit}")
    hosts: dict[str, str | None] = {f"host-{i:02d}": None for i in range(1, burst_jobs)}
    hosts[f"host-{burst_jobs:02d}"] = LONG_OUTPUT  # the last job has a long output (a file upload)
    async with deployment(workdir, hosts, slack_limit=slack_limit, burst=burst) as bot:
        standin, store = bot.standin, bot.runtime.store
        before = len(standin.calls)
        started = time.time()
        answers = await asyncio.gather(
            *(standin.send_slash_command(user=USER, channel=CHANNEL, text=scan_text(h)) for h in hosts)
        )
        acked = time.time() - started

        def settled() -> bool:
            jobs = store.jobs(limit=len(hosts) + 10)
            return len(jobs) == len(hosts) and all(j.state.final for j in jobs) and not store.pending_outbox()

        await bot.runtime.outbox.wait_until(
            lambda: all(j.state.final for j in store.jobs(limit=len(hosts) + 10)), timeout=60
        )
        finished_jobs = time.time() - started
        await bot.runtime.outbox.wait_until(settled, timeout=300)
        finished = time.time() - started
        calls = standin.calls[before:]
        jobs = store.jobs(limit=len(hosts) + 10)
    refused = sum(1 for a in answers if not a.ok)
    states = Counter(j.state.value for j in jobs)
    by_method: dict[str, Counter[str]] = {}
    for call in calls:
        by_method.setdefault(call.method, Counter())[
            "ok" if call.ok else (call.error or str(call.status))
        ] += 1
    print(
        table(
            ["Web API method", "calls", "ok", "errors"],
            [
                [
                    method,
                    str(sum(c.values())),
                    str(c["ok"]),
                    ", ".join(f"{k} {v}" for k, v in c.items() if k != "ok"),
                ]
                for method, c in sorted(by_method.items())
            ],
        )
    )
    posts = sorted(c.time - started for c in calls if c.method == "chat.postMessage" and c.ok)
    per_second = Counter(int(t) for t in posts)
    span = posts[-1] - posts[0] if len(posts) > 1 else 0.0
    busiest = max((sum(1 for u in posts if t <= u < t + 1.0) for t in posts), default=0)
    timeline = " ".join(str(per_second.get(s, 0)) for s in range(int(posts[-1]) + 1)) if posts else "-"
    note(
        f"{len(hosts)} jobs acknowledged in {acked * 1000:.0f} ms ({refused} refused); "
        f"final states: {dict(states)}"
    )
    note(
        f"{len(posts)} messages posted ({len(posts) / len(hosts):.1f} per job) over {span:.1f} s; "
        f"at most {busiest} in any 1 s window; after the first 5 s: "
        f"{_rate_after(posts, 5.0)}"
    )
    note(f"messages posted per second since the burst: {timeline}")
    results = sorted(
        c.time - started
        for c in calls
        if c.method == "chat.postMessage" and c.ok and str(c.args.get("text", "")).startswith(FINAL_PREFIXES)
    )
    if results:
        note(
            f"the jobs' result replies reached Slack {results[0]:.1f} s (first) … {results[-1]:.1f} s (last) "
            f"after the burst; "
            f"the jobs themselves finished within {finished_jobs:.2f} s"
        )
    note(f"everything posted and every job final after {finished:.1f} s")


def _rate_after(posts: list[float], skip: float) -> str:
    later = [t for t in posts if t >= posts[0] + skip] if posts else []
    if len(later) < 2:
        return "no later posts"
    return f"{(len(later) - 1) / (later[-1] - later[0]):.2f} msg/s"


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--jobs", type=int, default=300, help="timed jobs, one at a time (default 300)")
    parser.add_argument("--warmup", type=int, default=20, help="untimed jobs first (default 20)")
    parser.add_argument("--echoes", type=int, default=2000, help="raw websocket round trips (default 2000)")
    parser.add_argument("--burst-jobs", type=int, default=5, help="jobs sent at once in part 2 (default 5)")
    parser.add_argument(
        "--slack-burst", type=int, default=None, help="DEFENDER_SLACK_BURST (default: the bot's)"
    )
    parser.add_argument("--no-slack-limit", action="store_true", help="the stand-in does not answer 429s")
    parser.add_argument("--skip-busy", action="store_true", help="skip part 1b (one busy channel)")
    parser.add_argument("--skip-posting", action="store_true", help="skip part 2 (Slack posting)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR, format="%(levelname)s %(name)s: %(message)s")
    print_machine()
    with tempfile.TemporaryDirectory(prefix="defender-bench-") as tmp:
        await latency(Path(tmp) / "latency", jobs=args.jobs, echoes=args.echoes, warmup=args.warmup)
        if not args.skip_busy:
            await busy_channel(Path(tmp) / "busy", jobs=args.jobs)
        if not args.skip_posting:
            await posting(
                Path(tmp) / "posting",
                burst_jobs=max(2, args.burst_jobs),
                slack_limit=not args.no_slack_limit,
                burst=args.slack_burst,
            )


if __name__ == "__main__":
    run(main)
