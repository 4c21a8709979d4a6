"""The bridge's admission of connections, driven with stand-in transports: the deadline runs from the
accept, the caps count only connections not yet authenticated, and closings are logged sparingly."""

from __future__ import annotations

import asyncio
import logging

import pytest

from agent_bridge.admission import Admission


class Transport(asyncio.Transport):
    def __init__(self, peer: str) -> None:
        super().__init__()
        self.peer = peer
        self.aborted = asyncio.Event()

    def get_extra_info(self, name: str, default: object = None) -> object:
        return (self.peer, 40000) if name == "peername" else default

    def abort(self) -> None:
        self.aborted.set()


def admission(**caps: int) -> Admission:
    return Admission(
        deadline=10.0, max_pending=caps.get("total", 100), max_pending_per_peer=caps.get("per_peer", 100)
    )


async def test_the_deadline_runs_from_the_accept_not_from_the_upgrade() -> None:
    gate = admission()
    now = asyncio.get_running_loop().time()
    late = Transport("10.0.0.1")
    assert gate.admit(late, accepted=now - 9.5)  # the HTTP request took 9.5 s of the 10
    left = gate.upgraded(late)
    assert left is not None
    assert 0.0 < left <= 0.5
    assert not late.aborted.is_set()  # from here the bridge keeps the deadline (and says why it closes)


async def test_a_connection_past_its_deadline_is_aborted_and_forgotten() -> None:
    gate = admission()
    stuck = Transport("10.0.0.1")
    assert gate.admit(stuck, accepted=asyncio.get_running_loop().time() - 11.0)
    await asyncio.wait_for(stuck.aborted.wait(), 5)
    assert gate.pending == 0
    assert gate.upgraded(stuck) is None


async def test_caps_count_only_connections_not_yet_authenticated() -> None:
    gate = admission(total=3, per_peer=2)
    now = asyncio.get_running_loop().time()
    a1, a2, a3, b1, c1 = (Transport(p) for p in ("10.0.0.1", "10.0.0.1", "10.0.0.1", "10.0.0.2", "10.0.0.3"))
    assert gate.admit(a1, accepted=now) and gate.admit(a2, accepted=now)
    assert not gate.admit(a3, accepted=now)  # per address
    assert gate.admit(b1, accepted=now)
    assert not gate.admit(c1, accepted=now)  # in all
    gate.authenticated(a1)
    assert gate.admit(a3, accepted=now)  # a1 no longer counts
    gate.closed(b1)
    assert gate.admit(c1, accepted=now)
    assert gate.pending == 3
    for transport in (a2, a3, c1):
        gate.closed(transport)
    assert gate.pending == 0


async def test_a_flood_of_refusals_is_logged_sparingly(caplog: pytest.LogCaptureFixture) -> None:
    gate = admission(total=1)
    now = asyncio.get_running_loop().time()
    assert gate.admit(Transport("10.0.0.1"), accepted=now)
    with caplog.at_level(logging.WARNING, logger="agent_bridge.admission"):
        for _ in range(50):
            assert not gate.admit(Transport("10.0.0.9"), accepted=now)
    (line,) = caplog.records  # one line, not fifty; the next one says how many it left out
    assert "closed a connection from 10.0.0.9" in line.getMessage()
