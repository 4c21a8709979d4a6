"""Fixtures for the MpCmdRun simulator tests."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.simulator.mpcmdrun_host import Host, wait_for_line


@pytest.fixture
def host(tmp_path: Path) -> Host:
    return Host(tmp_path)


@pytest.fixture
def long_scan(host: Host) -> Iterator[subprocess.Popen[bytes]]:
    """A quick scan that would run for a minute, already recorded as running."""
    host.configure(scan_seconds=60)
    proc = host.start("-Scan", "-ScanType", "1")
    try:
        wait_for_line(proc, "Scan starting...")
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)
        assert proc.stdout is not None
        proc.stdout.close()
