"""Slack's 3-second deadline: how fast slash commands are acknowledged under load, beside a bare
slack-bolt app that only acknowledges, measured in the same run on the same machine.

    .venv/bin/python bench/ack.py [--requests 600] [--concurrency 1 16] [--warmup 50]

Each target runs as its own process, started fresh for each row (empty database), so the load generator
(this process: an aiohttp client signing each request like Slack, v0 HMAC over a current timestamp)
never shares an event loop with the server it measures:

* ``bare bolt``: slack-bolt AsyncApp on aiohttp, same adapter, signature check, authorize shortcut and
  ``process_before_response=False`` as the bot; its listener only calls ``ack()``;
* ``bare bolt, process_before_response``: the same with ``process_before_response=True``, which shows
  what bolt's own ack-polling costs (see bench/README.md);
* ``defender-bot serve`` (the real bot, Slack Web API played by the local stand-in in this process), with
  ``help``; with ``status`` for an offline host (a job is stored, its root message and "waiting for the
  host" reply queued, before the ack), each command for a different host; and with every command for
  the same offline host. The hosts are made known to the bot first (an enrollment token each, as
  `defender-bot enroll` issues), since it refuses hosts it has never heard of.

Latency is from just before the request is sent until the whole answer is read. Slack gives up after 3 s.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import logging
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

import aiohttp
from _common import (
    CHANNEL,
    SIGNING_SECRET,
    USER,
    Child,
    Latency,
    announce_hosts,
    heading,
    ms,
    new_standin,
    note,
    print_machine,
    ratio,
    run,
    start_bare,
    start_bot,
    table,
    workspace,
)
from slack_sdk.signature import SignatureVerifier

DEADLINE = 3.0


@dataclass(frozen=True)
class Target:
    name: str
    kind: str  # "bolt", "bolt-pbr" or "bot"
    text: Callable[[int], str]  # the slash command text of the i-th request


TARGETS = [
    Target("bare bolt app, ack only", "bolt", lambda i: "help"),
    Target("bare bolt app, ack only, process_before_response", "bolt-pbr", lambda i: "help"),
    Target("defender-bot: help", "bot", lambda i: "help"),
    Target("defender-bot: status <offline host>, a new host each", "bot", lambda i: f"status off-{i:06d}"),
    Target("defender-bot: status <offline host>, all the same host", "bot", lambda i: "status off-host"),
]


@dataclass(frozen=True)
class Sample:
    index: int
    seconds: float
    ok: bool


@asynccontextmanager
async def target_url(target: Target, workdir: Path, *, hosts: Sequence[str] = ()) -> AsyncIterator[str]:
    """Start a fresh process for ``target``; yield its request URL; stop it (and all it needs) after.
    ``hosts``: the hosts its commands name, made known to the bot (enrollment tokens) before the load."""
    async with contextlib.AsyncExitStack() as stack:
        child: Child
        if target.kind == "bot":
            standin = await new_standin()
            stack.push_async_callback(standin.stop)
            child, url, _agents = await start_bot(workdir, standin)
            announce_hosts(workdir / "bot", hosts)
        else:
            extra = ["--process-before-response"] if target.kind == "bolt-pbr" else []
            child, url = await start_bare("bolt", workdir, SIGNING_SECRET, *extra)
        stack.push_async_callback(child.stop)
        yield url


def slash_command_body(text: str, index: int) -> str:
    """The form Slack POSTs for `/defender <text>` (field order as Slack sends it)."""
    return urlencode(
        [
            ("token", "bench-verification"),
            ("team_id", "T0STANDIN"),
            ("team_domain", "standin"),
            ("channel_id", CHANNEL),
            ("channel_name", "bench"),
            ("user_id", USER),
            ("user_name", "bench"),
            ("command", "/defender"),
            ("text", text),
            ("api_app_id", "A0DEFENDER"),
            ("is_enterprise_install", "false"),
            ("response_url", f"http://127.0.0.1:9/commands/T0STANDIN/{index}/bench"),
            ("trigger_id", f"{index}.bench"),
        ]
    )


async def load(
    url: str, text: Callable[[int], str], *, total: int, concurrency: int, first: int
) -> list[Sample]:
    """``total`` signed slash commands, ``concurrency`` in flight at any time."""
    verifier = SignatureVerifier(SIGNING_SECRET)
    indexes = itertools.count(first)
    stop_at = first + total
    samples: list[Sample] = []
    timeout = aiohttp.ClientTimeout(total=30)
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as http:

        async def worker() -> None:
            while (i := next(indexes)) < stop_at:
                body = slash_command_body(text(i), i)
                stamp = str(int(time.time()))
                headers = {
                    "Content-Type": "application/x-www-form-urlencoded",
                    "X-Slack-Request-Timestamp": stamp,
                    "X-Slack-Signature": verifier.generate_signature(timestamp=stamp, body=body) or "",
                }
                started = time.perf_counter()
                try:
                    async with http.post(url, data=body.encode(), headers=headers) as response:
                        await response.read()
                        ok = response.status == 200
                except (aiohttp.ClientError, TimeoutError):
                    ok = False
                samples.append(Sample(i, time.perf_counter() - started, ok))

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return sorted(samples, key=lambda s: s.index)


@dataclass(frozen=True)
class Row:
    target: Target
    concurrency: int
    latency: Latency
    rate: float
    errors: int
    late: int
    first_p50: float
    last_p50: float


async def measure(target: Target, workdir: Path, *, total: int, concurrency: int, warmup: int) -> Row:
    named = {words[1] for i in range(warmup + total) if len(words := target.text(i).split()) > 1}
    async with target_url(target, workdir, hosts=sorted(named)) as url:
        await load(url, target.text, total=warmup, concurrency=concurrency, first=0)
        started = time.perf_counter()
        samples = await load(url, target.text, total=total, concurrency=concurrency, first=warmup)
        elapsed = time.perf_counter() - started
    good = [s.seconds for s in samples if s.ok]
    tenth = max(1, len(samples) // 10)
    return Row(
        target=target,
        concurrency=concurrency,
        latency=Latency.of(good),
        rate=len(samples) / elapsed,
        errors=sum(1 for s in samples if not s.ok),
        late=sum(1 for s in samples if s.seconds > DEADLINE),
        first_p50=Latency.of([s.seconds for s in samples[:tenth]]).p50,
        last_p50=Latency.of([s.seconds for s in samples[-tenth:]]).p50,
    )


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=600, help="timed requests per row (default 600)")
    parser.add_argument(
        "--concurrency", type=int, nargs="+", default=[1, 16], help="requests in flight (default: 1 16)"
    )
    parser.add_argument("--warmup", type=int, default=50, help="untimed requests first (default 50)")
    parser.add_argument(
        "--only", nargs="+", type=int, default=None, help="target numbers to run (1-5, default all)"
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    print_machine()
    targets = [t for n, t in enumerate(TARGETS, 1) if args.only is None or n in args.only]
    heading(
        f"slash command acknowledgement: {args.requests} signed requests per row, each row a fresh process"
    )
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="defender-bench-") as tmp:
        for concurrency in args.concurrency:
            for n, target in enumerate(targets):
                workdir = workspace(Path(tmp) / f"c{concurrency}-t{n}")
                rows.append(await measure(target, workdir, total=args.requests, concurrency=concurrency,
                                          warmup=args.warmup))  # fmt: skip
                note(f"done: {target.name} at concurrency {concurrency}")
    bare = {r.concurrency: r.latency for r in rows if r.target.kind == "bolt"}
    print()
    print(
        table(
            [
                "target",
                "in flight",
                "p50 ms",
                "p99 ms",
                "max ms",
                "p99/bare",
                "req/s",
                "errors",
                ">3 s",
                "p50 first/last 10%",
            ],
            [
                [
                    r.target.name,
                    str(r.concurrency),
                    *r.latency.cells(),
                    ratio(r.latency.p99, bare[r.concurrency].p99) if r.concurrency in bare else "-",
                    f"{r.rate:.0f}",
                    str(r.errors),
                    str(r.late),
                    f"{ms(r.first_p50)} / {ms(r.last_p50)}",
                ]
                for r in rows
            ],
        )
    )
    note("p99/bare: p99 against the bare bolt app (process_before_response=False) at the same concurrency")
    note("p50 first/last 10%: whether acknowledging gets slower as the run goes on (work growing with N)")


if __name__ == "__main__":
    run(main)
