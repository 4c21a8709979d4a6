r"""``-Scan -Cancel`` across processes, and scans that are killed, stopped or terminated."""

from __future__ import annotations

import json
import os
import signal
import subprocess

import pytest

from tests.simulator.mpcmdrun_host import Host, failed, output_of, wait_for_line


def test_cancel_with_nothing_running(host: Host) -> None:
    result = host.run("-Scan", "-Cancel")
    assert (result.code, result.lines) == (0, ["No scan is currently running."])


def test_cancel_from_another_process_ends_the_running_scan(
    host: Host, long_scan: subprocess.Popen[bytes]
) -> None:
    cancel = host.run("-Scan", "-Cancel")
    assert (cancel.code, cancel.lines) == (0, ["Cancelling the running scan...", "Scan cancelled."])
    scan = output_of(long_scan)
    assert (scan.code, scan.lines) == (2, ["Scan starting...", failed("0x800704c7")])
    assert not host.scan_record.exists()
    assert host.run("-Scan", "-Cancel").lines == ["No scan is currently running."]


def test_cancelled_scan_with_returnhr_exits_with_the_cancel_hresult(host: Host) -> None:
    host.configure(scan_seconds={"custom": 60})
    host.put("C:\\Data\\x.txt")
    proc = host.start("-Scan", "-ScanType", "3", "-File", "C:\\Data", "-ReturnHR")
    wait_for_line(proc, "Scan starting...")
    assert host.run("-Scan", "-Cancel").code == 0
    scan = output_of(proc)
    assert scan.code == 0x800704C7 & 0xFF
    assert scan.lines == ["Scan starting...", failed("0x800704c7")]


def test_second_scan_while_one_runs_is_refused(host: Host, long_scan: subprocess.Popen[bytes]) -> None:
    second = host.run("-Scan", "-ScanType", "2")
    assert (second.code, second.lines) == (2, ["Scan starting...", failed("0x800700aa")])
    assert long_scan.poll() is None
    assert host.run("-Scan", "-Cancel").code == 0


def test_killed_scan_leaves_no_record_that_breaks_the_next_cancel(
    host: Host, long_scan: subprocess.Popen[bytes]
) -> None:
    long_scan.kill()  # SIGKILL: nothing runs in the scan, its record stays behind
    long_scan.wait(timeout=10)
    assert host.scan_record.exists()
    assert host.run("-Scan", "-Cancel").lines == ["No scan is currently running."]
    host.configure(scan_seconds=0)
    assert host.run("-Scan", "-ScanType", "1").lines == ["Scan starting...", "Scan finished."]


def test_a_zombie_scan_does_not_count_as_running(host: Host, long_scan: subprocess.Popen[bytes]) -> None:
    long_scan.kill()
    os.waitid(os.P_PID, long_scan.pid, os.WEXITED | os.WNOWAIT)  # dead but not reaped: a zombie
    assert host.run("-Scan", "-Cancel").lines == ["No scan is currently running."]


def test_sigterm_cleans_up_the_running_record(host: Host, long_scan: subprocess.Popen[bytes]) -> None:
    long_scan.send_signal(signal.SIGTERM)
    assert long_scan.wait(timeout=10) == 128 + signal.SIGTERM
    assert not host.scan_record.exists()


def test_cancel_gives_up_on_a_scan_that_does_not_stop(host: Host, long_scan: subprocess.Popen[bytes]) -> None:
    host.configure(cancel_wait_seconds=0.2)
    long_scan.send_signal(signal.SIGSTOP)
    try:
        cancel = host.run("-Scan", "-Cancel")
    finally:
        long_scan.send_signal(signal.SIGCONT)
    assert (cancel.code, cancel.lines) == (2, ["Cancelling the running scan...", failed("0x800705b4")])
    scan = output_of(long_scan)  # the request stands: once resumed, the scan ends cancelled
    assert scan.lines == ["Scan starting...", failed("0x800704c7")]


def test_a_scan_killed_while_cancel_waits_counts_as_cancelled(
    host: Host, long_scan: subprocess.Popen[bytes]
) -> None:
    long_scan.send_signal(signal.SIGSTOP)  # it cannot acknowledge, so the cancel keeps waiting
    cancel = host.start("-Scan", "-Cancel")
    try:
        wait_for_line(cancel, "Cancelling the running scan...")
        long_scan.kill()
        result = output_of(cancel)
    finally:
        if cancel.poll() is None:
            cancel.kill()
    assert (result.code, result.lines) == (0, ["Cancelling the running scan...", "Scan cancelled."])
    assert not host.scan_record.exists()


@pytest.mark.parametrize(
    "record",
    [
        json.dumps({"pid": os.getpid(), "token": "t", "kind": "quick", "start_ticks": 1}),  # a recycled pid
        "{not json",
    ],
    ids=["recycled pid", "corrupt record"],
)
def test_records_that_are_not_a_running_scan_are_ignored(host: Host, record: str) -> None:
    host.scan_record.write_text(record, encoding="utf-8")
    assert host.run("-Scan", "-Cancel").lines == ["No scan is currently running."]
    assert not host.scan_record.exists()
