"""Results as Slack messages: readable, and always within Block Kit's limits (3,000 characters per
section, 50 blocks); what does not fit goes into a file in the thread."""

from __future__ import annotations

import json
import re

import pytest

from agent_bridge import wire
from agent_bridge.commands import (
    AgentCommand,
    CancelCommand,
    DynamicSignatureListCommand,
    ExclusionCheckCommand,
    GetFilesCommand,
    MapsCheckCommand,
    QuarantineListCommand,
    RestoreCommand,
    RollbackCommand,
    RollbackScope,
    ScanCommand,
    ScanType,
    StatusCommand,
    ThreatsCommand,
    TraceCommand,
    UpdateCommand,
)
from agent_bridge.interpret import interpret
from agent_bridge.powershell_reports import StatusReport, ThreatDetection, ThreatResource, ThreatsReport
from agent_bridge.reports import (
    Detection,
    EngineVersions,
    ErrorInfo,
    ExclusionReport,
    Outcome,
    QuarantinedFile,
    QuarantineItem,
    QuarantineReport,
    Report,
    ScanReport,
    UpdateReport,
)
from agent_bridge.runner import RunResult
from agent_bridge.wire import OUTPUT_TAIL_MAX
from bot.slack_standin_blocks import validate_blocks
from handlers import RENDERERS
from handlers.blocks import (
    BLOCKS_MAX,
    CONTEXT_MAX,
    FIELD_MAX,
    SECTION_MAX,
    Block,
    Rendered,
    clip,
    escape,
    fit,
)
from handlers.results import render_result

EICAR_NAME = "Virus:DOS/EICAR_Test_File"


def result(
    report: Report | None, *, output: str = "", error: ErrorInfo | None = None, status: str = "succeeded"
) -> wire.JobResult:
    return wire.JobResult(
        job_id="j-0123456789",
        status=status,  # type: ignore[arg-type]
        outcome=Outcome(succeeded=status == "succeeded", summary="summary", report=report, error=error),
        exit_code=0,
        output_tail=output,
        started_at=0.0,
        finished_at=1.5,
    )


def texts(blocks: list[Block]) -> list[str]:
    found = []
    for block in blocks:
        if "text" in block:
            found.append(block["text"]["text"])
        for item in block.get("fields", []) + block.get("elements", []):
            found.append(item["text"])
    return found


def within_limits(blocks: list[Block]) -> None:
    """What the stand-in's validator does not check itself: context elements' count and lengths."""
    assert len(blocks) <= BLOCKS_MAX
    for block in blocks:
        if "text" in block:
            assert 0 < len(block["text"]["text"]) <= SECTION_MAX
        assert len(block.get("fields", [])) <= 10
        assert all(0 < len(item["text"]) <= FIELD_MAX for item in block.get("fields", []))
        assert len(block.get("elements", [])) <= CONTEXT_MAX
        assert all(0 < len(item["text"]) <= SECTION_MAX for item in block.get("elements", []))


def test_a_huge_quarantine_fits_and_the_rest_goes_to_a_file() -> None:
    items = tuple(
        QuarantineItem(
            threat=f"Trojan:Win32/Fake.{i}!ml",
            files=tuple(
                QuarantinedFile(path=f"C:\\Users\\u{i}\\f{j}.exe", quarantined_at="1/2/2026 3:04:05 AM")
                for j in range(5)
            ),
        )
        for i in range(300)
    )
    output = "\n".join(f"ThreatName = Trojan:Win32/Fake.{i}!ml" for i in range(300)) * 5
    rendered = render_result(
        result(QuarantineReport(items=items), output=output), host="host42", renderers=RENDERERS
    )
    within_limits(rendered.blocks)
    assert rendered.attachment is not None
    assert rendered.attachment.content.endswith(output[-100:])
    assert any("more threats" in t for t in texts(rendered.blocks))


def test_a_long_single_line_is_split_not_rejected() -> None:
    rendered = render_result(result(None, output="x" * 20_000), host="host42", renderers=RENDERERS)
    within_limits(rendered.blocks)
    assert rendered.attachment is not None


def test_many_detections_stay_under_fifty_blocks() -> None:
    detections = tuple(
        Detection(threat=f"Virus:DOS/T{i}", resources=(f"file: C:\\{i}",), remediated=False)
        for i in range(100)
    )
    report = ScanReport(outcome="threats", target="C:\\", threats_found=100, detections=detections)
    rendered = render_result(result(report), host="host42", renderers=RENDERERS)
    within_limits(rendered.blocks)


def test_update_shows_versions_before_and_after() -> None:
    before = EngineVersions(
        service="4.18.1", engine="1.1.1", antivirus="1.343.1364.0", antispyware="1.343.1364.0"
    )
    after = before.model_copy(update={"antivirus": "1.343.1365.0", "antispyware": "1.343.1365.0"})
    rendered = render_result(
        result(UpdateReport(updated=True, before=before, after=after)), host="h", renderers=RENDERERS
    )
    joined = "\n".join(texts(rendered.blocks))
    assert "`1.343.1364.0` → `1.343.1365.0`" in joined
    assert "`1.1.1` (unchanged)" in joined


def test_no_updates_needed() -> None:
    rendered = render_result(
        result(UpdateReport(updated=False, after=EngineVersions(engine="1.1.1"))),
        host="h",
        renderers=RENDERERS,
    )
    assert any("No updates needed" in t for t in texts(rendered.blocks))


@pytest.mark.parametrize(("excluded", "words"), [(True, "*is excluded*"), (False, "*not excluded*")])
def test_exclusion(excluded: bool, words: str) -> None:
    report = ExclusionReport(
        path="C:\\Data", device_path="\\Device\\HarddiskVolume1\\Data", excluded=excluded
    )
    rendered = render_result(result(report), host="h", renderers=RENDERERS)
    assert any(words in t for t in texts(rendered.blocks))


def test_errors_are_explained_with_cause_remedy_and_log() -> None:
    error = ErrorInfo(
        hresult="0x80070006", http_code=451, title="Firewall blocks MAPS", cause="TLS inspection", remedy="Allow the URLs",
        log_hint="C:\\Windows\\Temp\\MpCmdRun.log",
    )  # fmt: skip
    rendered = render_result(result(None, error=error, status="failed"), host="h", renderers=RENDERERS)
    joined = "\n".join(texts(rendered.blocks))
    assert "*Firewall blocks MAPS* (`0x80070006`), HTTP 451" in joined
    assert "*Why:* TLS inspection" in joined
    assert "*What to do:* Allow the URLs" in joined
    assert "C:\\Windows\\Temp\\MpCmdRun.log" in joined


def test_tool_text_cannot_inject_mentions_or_links() -> None:
    rendered = render_result(
        result(None, output="<!channel> <@U0BOSS> <http://evil|click>"), host="h", renderers=RENDERERS
    )
    joined = "\n".join(texts(rendered.blocks))
    assert "<!channel>" not in joined
    assert "&lt;!channel&gt;" in joined


def test_status_marks_protection_that_is_off() -> None:
    report = StatusReport(real_time_protection=False, tamper_protected=True)
    rendered = render_result(result(report), host="h", renderers=RENDERERS, show_output=False)
    joined = "\n".join(texts(rendered.blocks))
    assert "*Real-time protection*\n:red_circle: *off*" in joined
    assert "*Tamper protection*\n:large_green_circle: on" in joined


# --- every renderer, fed the worst real-format output we can think of, gives blocks Slack accepts -------

LONG_DIR = "C:\\Users\\Public\\" + "\\".join(f"very long folder name {i:02}" for i in range(9))  # ≈ 230


def _scan_output(count: int, resources: int) -> str:
    lines = ["Scan starting...", "Scan finished.", f"Scanning {LONG_DIR} found {count} threats.", ""]
    lines.append("<===========================LIST OF DETECTED THREATS==========================>")
    for i in range(count):
        lines += [
            "----------------------------- Threat information ------------------------------",
            f"Threat                  : Trojan:Win32/Fake.{i}!ml{'x' * 200}",
            f"Resources               : {resources} total",
            *(f"    file                : {LONG_DIR}\\f{i}-{j}.exe" for j in range(resources)),
            "-------------------------------------------------------------------------------",
        ]
    return "\r\n".join(lines)


def _versions(prefix: str = "") -> list[str]:
    return [
        prefix + "Service Version: 4.18.2106.6",
        prefix + "Engine Version: 1.1.18300.4",
        prefix + "AntiSpyware Signature Version: 1.343.1364.0",
        prefix + "AntiVirus Signature Version: 1.343.1364.0",
    ]


def _quarantine_output(threats: int, files: int) -> str:
    lines = ["The following items are quarantined:", ""]
    for i in range(threats):
        lines.append(f"ThreatName = Backdoor:Win32/Dirtelti.{i}!ml")
        lines += [
            f"      file:{LONG_DIR}\\q{i}-{j}.md quarantined at ?9/?26/?2025 3:23:34 AM (UTC)"
            for j in range(files)
        ]
    return "\r\n".join(lines)


def _restore_output(files: int) -> str:
    lines = ["Restoring the following quarantined items to D:\\Restored:", ""]
    for i in range(files):
        lines += [
            f"ThreatName = Virus:DOS/EICAR_Test_File.{i}",
            f"   file:{LONG_DIR}\\r{i}.com quarantined at 2022/12/31 10:18:35 (UTC) was restored",
        ]
    return "\r\n".join(lines)


def _dynsig_output(count: int) -> str:
    lines = ["Dynamic signatures loaded:"]
    for i in range(count):
        lines += [
            f"SignatureSetID: {{{i:08X}-0000-4000-8000-000000000000}}",
            f"    Path: {LONG_DIR}\\s{i}.vdm",
        ]
        lines.append("    Added: 2025/09/26 03:23:34 (UTC)")
    return "\r\n".join(lines)


def _threats_json(count: int, resources: int) -> str:
    detections = [
        {
            "ThreatID": 2147519003 + i,
            "ThreatStatusID": 3,
            "ActionSuccess": False,
            "ThreatStatusErrorCode": 2152497172,
            "AdditionalActionsBitMask": 65540,
            "InitialDetectionTime": "\\/Date(1717322400000)\\/",
            "Resources": [f"file:_{LONG_DIR}\\t{i}-{j}.exe" for j in range(resources)],
        }
        for i in range(count)
    ]
    names = [
        {"ThreatID": 2147519003 + i, "ThreatName": f"Trojan:Win32/Fake.{i}!ml{'y' * 200}", "SeverityID": 5}
        for i in range(count)
    ]
    return json.dumps({"Detections": detections, "Threats": names}, separators=(",", ":"))


STATUS_JSON = json.dumps(
    {
        "AMEngineVersion": "1.1.18300.4" + "9" * 500, "AMProductVersion": "4.18.2106.6" + "9" * 500,
        "AMRunningMode": "Passive mode" + " very" * 500, "AMServiceEnabled": True, "RealTimeProtectionEnabled": False,
        "AntivirusSignatureVersion": "1.343.1364.0" + "0" * 500, "AntivirusSignatureAge": 400,
        "DefenderSignaturesOutOfDate": True, "IsTamperProtected": False, "FullScanAge": 4294967295,
        "QuickScanAge": 2, "QuickScanEndTime": "\\/Date(1717381608000)\\/", "ComputerState": 31,
        "RebootRequired": True, "FullScanRequired": True, "ComputerID": "x",
    }
)  # fmt: skip

# report kind → (command, output, exit code): every renderer in the registry has its worst case here.
WORST: dict[str, tuple[AgentCommand, str, int]] = {
    "scan": (
        ScanCommand(scan_type=ScanType.CUSTOM, path=LONG_DIR, disable_remediation=True),
        _scan_output(200, 40),
        2,
    ),
    "cancel": (CancelCommand(), "Scan cancelled." + "\r\n" * 3000, 0),
    "update": (
        UpdateCommand(),
        "\r\n".join(["Signature update started . . .", *_versions(), "Signature update finished."]),
        0,
    ),
    "rollback": (
        RollbackCommand(scope=RollbackScope.ALL),
        "\r\n".join(["", *_versions(), "", "Starting engine and signature rollback to none...", "Done!"]),
        0,
    ),
    "quarantine": (QuarantineListCommand(), _quarantine_output(300, 25), 0),
    "restore": (
        RestoreCommand(name=EICAR_NAME, all_items=True, destination="D:\\Restored"),
        _restore_output(400),
        0,
    ),
    "exclusion": (
        ExclusionCheckCommand(path=LONG_DIR),
        f"{LONG_DIR} [\\Device\\HarddiskVolume1{LONG_DIR[2:]}] is excluded. Exit code is 0.",
        0,
    ),
    "maps": (
        MapsCheckCommand(),
        "ValidateMapsConnection failed to establish a connection to MAPS (hr=0x800722F0D httpcode=451)\r\n"
        "MpCmdRun.exe: hr = 0x800722F0D\r\n" + "noise line\r\n" * 5000,
        2,
    ),
    "getfiles": (
        GetFilesCommand(destination=LONG_DIR),
        "\r\n".join(
            [
                "Collecting events from Operational Event Log...",
                *(["..."] * 4000),
                "Creating CAB file...",
                f"Files successfully created in {LONG_DIR}\\0926\\MpSupport-host42-0323.cab",
            ]
        ),
        0,
    ),
    "trace": (
        TraceCommand(grouping="0x3FF", level="0x3F"),
        f"Tracing started with grouping 0x3FF and level 0x3F.\r\nTrace file: {LONG_DIR}\\MPTrace.bin",
        0,
    ),
    "dynsig": (DynamicSignatureListCommand(), _dynsig_output(300), 0),
    "status": (StatusCommand(), STATUS_JSON, 0),
    "threats": (ThreatsCommand(), _threats_json(120, 40), 0),
}


def job_for(outcome: Outcome, output: str, code: int) -> wire.JobResult:
    """As the agent sends it: the parser saw all the output, the bot gets its tail."""
    return wire.JobResult(
        job_id="j-0123456789", status="succeeded" if outcome.succeeded else "failed", outcome=outcome,
        exit_code=code, output_tail=output[-OUTPUT_TAIL_MAX:], output_truncated=len(output) > OUTPUT_TAIL_MAX,
        started_at=0.0, finished_at=1.0,
    )  # fmt: skip


def run_and_render(kind: str, *, show_output: bool) -> Rendered:
    command, output, code = WORST[kind]
    outcome = interpret(command, RunResult(exit_code=code, output=output))
    assert outcome.report is not None and outcome.report.kind == kind, outcome
    return render_result(
        job_for(outcome, output, code), host="host42", renderers=RENDERERS, show_output=show_output
    )


def test_every_renderer_has_a_worst_case() -> None:
    assert set(WORST) == set(RENDERERS)


@pytest.mark.parametrize("show_output", [True, False], ids=["with-output", "report-only"])
@pytest.mark.parametrize("kind", sorted(WORST))
def test_every_renderer_fits_slack_for_long_real_output(kind: str, show_output: bool) -> None:
    rendered = run_and_render(kind, show_output=show_output)
    assert validate_blocks(rendered.blocks) == []
    within_limits(rendered.blocks)
    assert 0 < len(rendered.text) <= 3000
    joined = "\n".join(texts(rendered.blocks))
    if "more" in joined and "(full list in the attached file)" in joined:
        assert rendered.attachment is not None, "the message points at a file that is not there"
        assert rendered.attachment.content.strip()


@pytest.mark.parametrize("count", [11, 26, 200])
def test_scan_detections_are_capped_and_the_rest_is_in_the_file(count: int) -> None:
    command = ScanCommand(scan_type=ScanType.CUSTOM, path="C:\\Users", disable_remediation=True)
    output = _scan_output(count, 1)
    outcome = interpret(command, RunResult(exit_code=2, output=output))
    job = job_for(outcome, output, 2)
    rendered = render_result(job, host="host42", renderers=RENDERERS, show_output=False)  # no raw tail shown
    assert validate_blocks(rendered.blocks) == []
    joined = "\n".join(texts(rendered.blocks))
    noun = "threat" if count == 11 else "threats"
    assert f"…and {count - 10} more {noun} (full list in the attached file)." in joined
    assert "Fake.9!ml" in joined and "Fake.10!ml" not in joined
    assert rendered.attachment is not None
    assert f"Trojan:Win32/Fake.{count - 1}!ml" in rendered.attachment.content


def test_ten_detections_are_all_shown_without_a_file() -> None:
    output = _scan_output(10, 1)
    command = ScanCommand(scan_type=ScanType.CUSTOM, path="C:\\Users", disable_remediation=True)
    outcome = interpret(command, RunResult(exit_code=2, output=output[:1400]))  # short: no preview file
    assert outcome.report is not None
    report = outcome.report
    rendered = render_result(result(report), host="host42", renderers=RENDERERS)
    assert rendered.attachment is None
    assert "more threats" not in "\n".join(texts(rendered.blocks))


def test_a_shortened_report_without_output_attaches_the_report_itself() -> None:
    items = tuple(
        QuarantineItem(threat=f"T{i}", files=(QuarantinedFile(path=f"C:\\{i}", quarantined_at="x"),))
        for i in range(100)
    )
    rendered = render_result(result(QuarantineReport(items=items)), host="h", renderers=RENDERERS)
    assert rendered.attachment is not None
    assert '"threat": "T99"' in rendered.attachment.content


def test_a_hostile_agent_cannot_push_the_message_over_the_limits() -> None:
    """The bot re-validates results, but lengths are not capped there: rendering must hold anyway."""
    huge = "<!channel> " + "z" * 100_000
    error = ErrorInfo(
        hresult=huge, name=huge, http_code=451, title=huge, cause=huge, remedy=huge, log_hint=huge
    )
    job = wire.JobResult(
        job_id="j-0123456789", status="failed",
        outcome=Outcome(succeeded=False, summary=huge, report=ScanReport(outcome="failed", target=huge), error=error),
        exit_code=2, output_tail=huge[:OUTPUT_TAIL_MAX], started_at=0.0, finished_at=1.0,
    )  # fmt: skip
    rendered = render_result(job, host="host42", renderers=RENDERERS)
    assert validate_blocks(rendered.blocks) == []
    within_limits(rendered.blocks)
    assert len(rendered.text) <= 3000
    assert "<!channel>" not in "\n".join(texts(rendered.blocks))


def test_versions_that_say_nothing_give_no_empty_fields() -> None:
    report = UpdateReport(updated=True, before=EngineVersions(), after=EngineVersions())
    rendered = render_result(result(report), host="h", renderers=RENDERERS)
    assert validate_blocks(rendered.blocks) == []


def test_fit_repairs_what_slack_would_refuse() -> None:
    blocks: list[Block] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": ""}},
        {"type": "section", "fields": []},
        {"type": "context", "elements": [{"type": "mrkdwn", "text": "x"}] * 12},
        *({"type": "section", "text": {"type": "mrkdwn", "text": "y" * 5000}} for _ in range(60)),
        {"type": "context", "elements": [{"type": "mrkdwn", "text": "footer"}]},
    ]
    fitted = fit(Rendered("t" * 50_000, blocks), raw="raw text", filename="f.txt")
    assert validate_blocks(fitted.blocks) == []
    assert fitted.blocks[-1]["elements"][0]["text"] == "footer"
    assert fitted.attachment is not None and fitted.attachment.content == "raw text"
    assert len(fitted.text) <= 3000


@pytest.mark.parametrize("limit", range(6, 40))
def test_clip_never_cuts_inside_an_entity_and_closes_a_code_span(limit: int) -> None:
    text = "`" + escape("R&D <x> " * 20) + "`"
    clipped = clip(text, limit)
    assert len(clipped) <= limit and clipped.endswith("…")
    assert re.fullmatch(r"(?:[^&]|&(?:amp|lt|gt);)*", clipped), clipped
    assert clipped.count("`") % 2 == 0


def _threats_report(resources: int, *, name: str = "R&D") -> ThreatsReport:
    detection = ThreatDetection(
        threat_id=7,
        threat_name="Trojan:Win32/Fake!ml",
        status="Quarantined",
        resources=tuple(
            ThreatResource(kind="file", path=f"C:\\{name}\\{'d' * 280}\\{j}.exe") for j in range(resources)
        ),
    )
    return ThreatsReport(detections=(detection,))


def test_a_detection_longer_than_a_section_is_cut_cleanly_and_attached_in_full() -> None:
    """Ten resources of long paths pass 3,000 characters: cut at a clean point, say so, attach it all."""
    report = _threats_report(10)
    rendered = render_result(result(report), host="h", renderers=RENDERERS, show_output=False)
    (section_text,) = [t for t in texts(rendered.blocks) if "Trojan:Win32/Fake!ml" in t]
    assert len(section_text) <= SECTION_MAX
    assert section_text.endswith("(shortened: the full text is in the attached file)_")
    assert re.fullmatch(r"(?:[^&]|&(?:amp|lt|gt);)*", section_text, re.DOTALL)
    assert section_text.split(" … ")[0].count("`") % 2 == 0
    assert rendered.attachment is not None
    assert f"     file: C:\\R&D\\{'d' * 280}\\9.exe" in rendered.attachment.content


def test_a_short_detection_is_not_marked_shortened() -> None:
    rendered = render_result(result(_threats_report(2)), host="h", renderers=RENDERERS, show_output=False)
    assert rendered.attachment is None
    assert "shortened" not in "\n".join(texts(rendered.blocks))


def test_more_than_twenty_detections_attach_the_report_as_text_not_json() -> None:
    output = _threats_json(26, 1)
    outcome = interpret(ThreatsCommand(), RunResult(exit_code=0, output=output))
    rendered = render_result(job_for(outcome, output, 0), host="h", renderers=RENDERERS, show_output=False)
    assert "…and 6 more older detections (full list in the attached file)." in "\n".join(
        texts(rendered.blocks)
    )
    assert rendered.attachment is not None
    content = rendered.attachment.content
    assert "Date(" not in content and not content.lstrip().startswith("{")
    assert content.count("\n   Status:      Quarantined; the action FAILED (0x804C8014)") == 26
    assert "26. Trojan:Win32/Fake." in content


def test_fit_attaches_the_raw_text_when_it_had_to_cut_a_section() -> None:
    blocks: list[Block] = [{"type": "section", "text": {"type": "mrkdwn", "text": "&amp;" * 1000}}]
    fitted = fit(Rendered("t", blocks), raw="the whole thing", filename="f.txt")
    assert fitted.attachment is not None and fitted.attachment.content == "the whole thing"
    assert re.fullmatch(r"(?:&amp;)*…", fitted.blocks[0]["text"]["text"])
