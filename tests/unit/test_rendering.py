"""Results as Slack messages: readable, and always within Block Kit's limits (3,000 characters per
section, 50 blocks); what does not fit goes into a file in the thread."""

from __future__ import annotations

import pytest

from agent_bridge import wire
from agent_bridge.powershell_reports import StatusReport
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
from handlers import RENDERERS
from handlers.blocks import BLOCKS_MAX, SECTION_MAX, Block
from handlers.results import render_result


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
    assert len(blocks) <= BLOCKS_MAX
    for block in blocks:
        if "text" in block:
            assert len(block["text"]["text"]) <= SECTION_MAX
        assert len(block.get("fields", [])) <= 10


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
