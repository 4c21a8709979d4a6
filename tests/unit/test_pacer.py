"""About one message per second per channel, after a small burst (Slack's chat.postMessage limit)."""

from __future__ import annotations

from bot.slack_out import ChannelPacer, backoff_delay


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_burst_then_one_per_second() -> None:
    clock = Clock()
    pacer = ChannelPacer(rate=1.0, burst=3, clock=clock)
    assert [pacer.delay("C1") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert pacer.delay("C1") == 1.0
    clock.now = 0.5
    assert pacer.delay("C1") == 0.5
    clock.now = 1.0
    assert pacer.delay("C1") == 0.0
    assert pacer.delay("C1") > 0


def test_channels_are_paced_separately() -> None:
    clock = Clock()
    pacer = ChannelPacer(rate=1.0, burst=1, clock=clock)
    assert pacer.delay("C1") == 0.0
    assert pacer.delay("C2") == 0.0
    assert pacer.delay("C1") == 1.0


def test_sending_at_the_pace_never_waits_for_long() -> None:
    clock = Clock()
    pacer = ChannelPacer(rate=1.0, burst=4, clock=clock)
    sent = 0
    while clock.now < 60:
        wait = pacer.delay("C1")
        if wait == 0:
            sent += 1
        else:
            clock.now += wait
    assert 60 <= sent <= 65  # one a second, plus the burst


def test_backoff_grows_and_is_capped() -> None:
    assert [backoff_delay(n) for n in range(8)] == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]
