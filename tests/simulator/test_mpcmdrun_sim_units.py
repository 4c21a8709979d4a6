"""The simulator's pure parts, in process: argv parsing, Windows paths in the sandbox, exclusions, dates."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from agent_bridge.simulator.mpcmdrun_args import (
    CancelScan,
    GetFiles,
    Help,
    InvalidCommandLine,
    RemoveDefinitions,
    Restore,
    RestoreList,
    Scan,
    SignatureUpdate,
    Trace,
    parse,
)
from agent_bridge.simulator.mpcmdrun_sandbox import (
    Sandbox,
    covered_by,
    device_path,
    join_windows,
    split_windows_path,
)
from agent_bridge.simulator.mpcmdrun_text import format_date, threat_blocks

PARSED = {
    "scan alone is the default type": (["-Scan"], Scan(scan_type=0)),
    "custom scan with every flag": (
        [
            "-scan",
            "/SCANTYPE",
            "3",
            "-file",
            "C:\\x",
            "-DisableRemediation",
            "-BootSectorScan",
            "-Timeout",
            "5",
        ],
        Scan(scan_type=3, file="C:\\x", disable_remediation=True, boot_sector=True, timeout_days=5),
    ),
    "full scan, throttled, returnhr": (
        ["-Scan", "-ScanType", "2", "-CpuThrottling", "-ReturnHR"],
        Scan(scan_type=2, cpu_throttling=True, return_hr=True),
    ),
    "cancel": (["-Scan", "-Cancel", "-ReturnHR"], CancelScan(return_hr=True)),
    "update from a share": (
        ["-SignatureUpdate", "-UNC", "-Path", "\\\\s\\d"],
        SignatureUpdate(source="unc", path="\\\\s\\d"),
    ),
    "update from mmpc": (["-SignatureUpdate", "-MMPC"], SignatureUpdate(source="mmpc")),
    "rollback engine": (["-RemoveDefinitions", "-Engine"], RemoveDefinitions(scope="engine")),
    "rollback dynamic": (["/RemoveDefinitions", "/DynamicSignatures"], RemoveDefinitions(scope="dynamic")),
    "restore list": (["-Restore", "-ListAll"], RestoreList()),
    "restore all of a name elsewhere": (
        ["-Restore", "-Name", "T:W/x", "-All", "-Path", "D:\\r"],
        Restore(name="T:W/x", all_items=True, destination="D:\\r"),
    ),
    "trace with bare hex": (
        ["-Trace", "-Grouping", "1f", "-Level", "0X3F"],
        Trace(grouping=0x1F, level=0x3F),
    ),
    "getfiles to a folder": (["-GetFiles", "-SupportLogLocation", "C:\\s"], GetFiles(destination="C:\\s")),
    "help": (["/?"], Help()),
}


@pytest.mark.parametrize(("argv", "expected"), PARSED.values(), ids=PARSED.keys())
def test_parse(argv: list[str], expected: object) -> None:
    assert parse(argv) == expected


def test_parse_refuses_with_a_reason() -> None:
    with pytest.raises(InvalidCommandLine, match="ScanType"):
        parse(["-Scan", "-ScanType", "4"])


@pytest.mark.parametrize(
    ("path", "parts"),
    [
        ("C:\\", ["C"]),
        ("c:\\a\\b\\", ["C", "a", "b"]),
        ("C:/a/b", ["C", "a", "b"]),
        ("\\\\srv\\share\\x", ["UNC", "srv", "share", "x"]),
        ("\\\\srv", None),
        ("C:\\a\\..\\b", None),
        ("a\\b", None),
        ("C:a", None),
        ("C:\\a\x00b", None),
    ],
)
def test_split_windows_path(path: str, parts: list[str] | None) -> None:
    assert split_windows_path(path) == parts


def test_join_windows() -> None:
    assert join_windows("C:\\", "x") == "C:\\x"
    assert join_windows("C:\\a\\", "b", "c") == "C:\\a\\b\\c"


@pytest.mark.parametrize(
    ("path", "covered"),
    [
        ("C:\\Data", True),
        ("c:\\data\\", True),
        ("C:\\Data\\sub\\x.exe", True),
        ("C:\\DataX", False),
        ("D:\\Logs\\2025\\a.tmp", True),
        ("D:\\Logs\\a.txt", False),
        ("E:\\any\\trace.ETL", True),
    ],
)
def test_covered_by(path: str, covered: bool) -> None:
    assert covered_by(path, ["C:\\Data\\", "D:\\Logs\\*.tmp", ""], [".etl"]) is covered


def test_device_path() -> None:
    assert device_path("C:\\x", {}) == "\\Device\\HarddiskVolume1\\x"
    assert device_path("D:\\x", {"D": 7}) == "\\Device\\HarddiskVolume7\\x"
    assert device_path("\\\\srv\\s", {}) == "\\Device\\Mup\\srv\\s"


def test_sandbox_refuses_symlinks_out_of_the_root(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "C").mkdir(parents=True)
    outside = tmp_path / "secret.txt"
    outside.write_text("secret")
    (root / "C" / "link.txt").symlink_to(outside)
    (root / "C" / "inside.txt").write_text("ok")
    sandbox = Sandbox(root)
    assert sandbox.locate("C:\\link.txt") is None
    assert sandbox.target("C:\\link.txt") is None
    assert sandbox.locate("c:\\INSIDE.TXT") == root / "C" / "inside.txt"
    assert sandbox.windows_path(root / "UNC" / "srv" / "share" / "x") == "\\\\srv\\share\\x"
    assert sandbox.windows_path(root / "C" / "a") == "C:\\a"
    assert sandbox.windows_path(tmp_path) is None


@pytest.mark.parametrize(
    ("style", "text"),
    [
        ("us", "9/26/2025 3:23:34 AM"),
        ("us-marks", "?9/?26/?2025 3:23:34 AM"),
        ("ymd", "2025/09/26 3:23:34"),
        ("gb", "26/09/2025 03:23:34"),
        ("de", "26.09.2025 03:23:34"),
    ],
)
def test_format_date(style: str, text: str) -> None:
    assert format_date(datetime(2025, 9, 26, 3, 23, 34, tzinfo=UTC), style) == text


def test_noon_and_midnight_in_twelve_hour_styles() -> None:
    assert format_date(datetime(2025, 1, 2, 0, 5, 6, tzinfo=UTC), "us") == "1/2/2025 12:05:06 AM"
    assert format_date(datetime(2025, 1, 2, 12, 5, 6, tzinfo=UTC), "us") == "1/2/2025 12:05:06 PM"


def test_threat_block_columns_line_up() -> None:
    lines = threat_blocks([("T:W/x", [("file", "C:\\a"), ("containerfile", "C:\\b.zip")])])
    assert {line.index(":") for line in lines[3:7]} == {24}
