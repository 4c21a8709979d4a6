"""The real ``defender-powershell-sim`` executable, run through the agent's runner, read by ``interpret``."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from agent_bridge.commands import StatusCommand, ThreatsCommand
from agent_bridge.powershell_output import interpret
from agent_bridge.powershell_reports import StatusReport, ThreatResource, ThreatsReport
from agent_bridge.reports import Outcome
from agent_bridge.runner import RunResult, SubprocessRunner
from agent_bridge.simulator import powershell as sim

NOW = "2024-06-03T08:30:49+00:00"
HEALTHY = "Real-time protection on · signatures 1.343.1364.0 (0 days old) · tamper protection on"
SERVICE_OFF = "Service disabled (0x800106BA)"
EICAR = {"ThreatName": "Virus:DOS/EICAR_Test_File", "ThreatStatusID": 3}
TROJAN = {
    "ThreatID": 2147735505,
    "ThreatName": "Trojan:Win32/Wacatac.B!ml",
    "SeverityID": 4,
    "ThreatStatusID": 104,
    "ThreatStatusErrorCode": -2142207980,
    "AdditionalActionsBitMask": 4,
    "InitialDetectionTime": "2024-06-03T08:00:00Z",
    "Resources": ["containerfile:_C:\\Temp\\a.zip", "file:_C:\\Temp\\a.zip->payload.exe"],
    "DomainUser": "CORP\\alice",
}


def _executable() -> str:
    # The console script sits beside the interpreter running the tests, even when that is not on PATH.
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    found = shutil.which("defender-powershell-sim", path=path)
    if found is None:
        pytest.fail("defender-powershell-sim is not installed; run `pip install -e .` first")
    return found


EXE = _executable()


class Sim:
    def __init__(self, tmp_path: Path) -> None:
        self.state_file = tmp_path / "state.json"

    def write(self, state: dict[str, Any]) -> None:
        self.state_file.write_text(json.dumps(state), encoding="utf-8")

    def env(self, *, with_state: bool = True) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k != "DEFENDER_SIM_STATE"}
        if with_state:
            env["DEFENDER_SIM_STATE"] = str(self.state_file)
        return env

    async def run(self, *args: str, with_state: bool = True) -> RunResult:
        runner = SubprocessRunner(env=self.env(with_state=with_state))
        return await runner.run([EXE, *args], timeout=60)

    async def command(
        self, command: StatusCommand | ThreatsCommand, **state: Any
    ) -> tuple[RunResult, Outcome]:
        self.write({"powershell": {"now": NOW}, **state} if "powershell" not in state else state)
        result = await self.run(*command.argv())
        return result, interpret(command, result)


@pytest.fixture
def host(tmp_path: Path) -> Sim:
    return Sim(tmp_path)


def ps(**keys: Any) -> dict[str, Any]:
    return {"powershell": {"now": NOW, **keys}}


def status_of(outcome: Outcome) -> StatusReport:
    assert outcome.succeeded, outcome
    assert isinstance(outcome.report, StatusReport)
    return outcome.report


def threats_of(outcome: Outcome) -> ThreatsReport:
    assert outcome.succeeded, outcome
    assert isinstance(outcome.report, ThreatsReport)
    return outcome.report


def test_scripts_are_the_agents() -> None:
    assert StatusCommand.script == sim.STATUS_SCRIPT
    assert ThreatsCommand.script == sim.THREATS_SCRIPT


async def test_defaults_without_a_state_file(host: Sim) -> None:
    result = await host.run(*StatusCommand().argv(), with_state=False)
    assert result.exit_code == 0
    report = status_of(interpret(StatusCommand(), result))
    assert interpret(StatusCommand(), result).summary == HEALTHY
    assert (report.product_version, report.engine_version) == ("4.18.2106.6", "1.1.18300.4")
    assert not report.full_scan.ran
    assert report.quick_scan.ran


async def test_status_healthy(host: Sim) -> None:
    result, outcome = await host.command(StatusCommand())
    assert (result.exit_code, outcome.summary) == (0, HEALTHY)
    report = status_of(outcome)
    assert report.antivirus.last_updated == datetime(2024, 6, 3, 6, 30, 49, tzinfo=UTC)
    assert report.quick_scan.started_at == datetime(2024, 6, 3, 4, 30, 49, tzinfo=UTC)
    assert report.hidden == ()


async def test_status_overrides_and_versions(host: Sim) -> None:
    _, outcome = await host.command(
        StatusCommand(),
        versions={"antivirus": "1.411.410.0", "engine": "1.1.24050.5"},
        **ps(
            status={
                "RealTimeProtectionEnabled": False,
                "AntivirusSignatureLastUpdated": "2024-05-31T06:00:00Z",
                "FullScanStartTime": "2024-06-01T09:15:00Z",
                "FullScanEndTime": "2024-06-01T10:02:00Z",
                "ComputerState": 2,
            }
        ),
    )
    assert outcome.summary == (
        "Real-time protection off · signatures 1.411.410.0 (3 days old) · tamper protection on"
    )
    report = status_of(outcome)
    assert report.engine_version == "1.1.24050.5"
    assert report.full_scan.ran
    assert report.full_scan.age_days == 1
    assert report.full_scan.ended_at == datetime(2024, 6, 1, 10, 2, tzinfo=UTC)
    assert report.computer_state_text == ("reboot pending",)


@pytest.mark.parametrize(
    "argv",
    [
        pytest.param(["-NoProfile", "-NonInteractive", "-Command"], id="as-the-agent-passes-it"),
        pytest.param(["-noprofile", "-NONINTERACTIVE", "-command"], id="any-case"),
        pytest.param(["-nop", "-noni", "-c"], id="abbreviated"),
        pytest.param(["/NoProfile", "/NonInteractive", "/Command"], id="slash-prefix"),
        pytest.param(["-NoLogo", "-ExecutionPolicy", "Bypass", "-NoProfile", "-Command"], id="other-options"),
    ],
)
async def test_options_like_powershell_exe(host: Sim, argv: list[str]) -> None:
    host.write(ps())
    result = await host.run(*argv, StatusCommand.script)
    assert interpret(StatusCommand(), result).summary == HEALTHY


@pytest.mark.parametrize(
    "argv",
    [
        pytest.param(["-NoProfile", "-Command", "Get-Process"], id="other-script"),
        pytest.param(
            ["-NoProfile", "-Command", "Get-MpComputerStatus"], id="a-real-cmdlet-but-not-the-script"
        ),
        pytest.param(
            ["-NoProfile", "-Command", StatusCommand.script + "; Remove-MpThreat"], id="script-plus-more"
        ),
        pytest.param(["-NoProfile", "-Command"], id="no-script"),
        pytest.param(["-NoProfile", "-File", "x.ps1"], id="file-parameter"),
    ],
)
async def test_anything_else_is_a_powershell_error(host: Sim, argv: list[str]) -> None:
    host.write(ps())
    result = await host.run(*argv)
    assert result.exit_code == 1
    outcome = interpret(StatusCommand(), result)
    assert not outcome.succeeded
    assert outcome.summary in {"PowerShell reported an error", "PowerShell failed"}


async def test_the_script_matches_whitespace_and_case_insensitively(host: Sim) -> None:
    host.write(ps())
    script = "  " + ThreatsCommand.script.upper().replace(" ", "   ") + "\n"
    result = await host.run("-NoProfile", "-Command", script)
    assert (result.exit_code, interpret(ThreatsCommand(), result).summary) == (0, "No detections")


async def test_service_disabled_status(host: Sim) -> None:
    result, outcome = await host.command(StatusCommand(), service="disabled", **ps())
    assert result.exit_code == 1
    assert "FullyQualifiedErrorId : HRESULT 0x800106ba,Get-MpComputerStatus" in result.output
    assert outcome.error is not None
    assert outcome.error.hresult == "0x800106BA"
    assert outcome.summary == SERVICE_OFF


@pytest.mark.parametrize("clean_output", ["nothing", "empty_arrays"])
async def test_service_disabled_threats_is_not_no_detections(host: Sim, clean_output: str) -> None:
    result, outcome = await host.command(
        ThreatsCommand(), service="disabled", **ps(clean_output=clean_output, detections=[EICAR])
    )
    assert result.exit_code == 0  # ConvertTo-Json, the last statement, succeeded
    assert "HRESULT 0x800106ba,Get-MpThreatDetection" in result.output
    assert "HRESULT 0x800106ba,Get-MpThreat\n" in result.output
    assert (outcome.succeeded, outcome.summary) == (False, SERVICE_OFF)


async def test_no_detections_prints_nothing(host: Sim) -> None:
    host.write(ps())
    raw = subprocess.run([EXE, *ThreatsCommand().argv()], env=host.env(), capture_output=True, check=False)
    assert (raw.returncode, raw.stdout, raw.stderr) == (0, b"", b"")
    result = await host.run(*ThreatsCommand().argv())
    assert interpret(ThreatsCommand(), result).summary == "No detections"


async def test_no_detections_as_empty_arrays(host: Sim) -> None:
    result, outcome = await host.command(ThreatsCommand(), **ps(clean_output="empty_arrays"))
    assert result.output == '{"Detections":[],"Threats":[]}\n'
    assert outcome.summary == "No detections"


async def test_detections_joined_with_threats(host: Sim) -> None:
    result, outcome = await host.command(ThreatsCommand(), **ps(detections=[EICAR, TROJAN]))
    assert outcome.summary == "2 detections (1 active)"
    assert "-\\u003epayload.exe" in result.output
    assert "\\/Date(" in result.output
    trojan, eicar = threats_of(outcome).detections
    assert (trojan.threat_name, trojan.severity, trojan.is_active) == (
        "Trojan:Win32/Wacatac.B!ml",
        "High",
        True,
    )
    assert (trojan.status, trojan.status_error, trojan.action_success) == (
        "Remove failed",
        "0x80508014",
        False,
    )
    assert trojan.additional_actions == ("full scan required",)
    assert trojan.resources[1] == ThreatResource(kind="file", path="C:\\Temp\\a.zip->payload.exe")
    assert trojan.domain_user == "CORP\\alice"
    assert trojan.initial_detection_time == datetime(2024, 6, 3, 8, 0, tzinfo=UTC)
    assert (eicar.threat_name, eicar.status, eicar.is_active) == (
        "Virus:DOS/EICAR_Test_File",
        "Quarantined",
        False,
    )
    assert eicar.domain_user == "SIMHOST\\user"
    assert eicar.resources == (ThreatResource(kind="file", path="C:\\Users\\Public\\Downloads\\eicar.com"),)


async def test_explicit_threat_list(host: Sim) -> None:
    threats = [{"ThreatID": 2147519003, "ThreatName": "Virus:DOS/EICAR_Test_File", "IsActive": True}]
    _, outcome = await host.command(ThreatsCommand(), **ps(detections=[EICAR], threats=threats))
    assert outcome.summary == "1 detection (1 active)"


@pytest.mark.parametrize(
    "variant",
    [
        pytest.param({"single_object": True}, id="single-object"),
        pytest.param({"cim_noise": True}, id="cim-noise"),
        pytest.param({"json_style": "pwsh7"}, id="pwsh7"),
        pytest.param(
            {"warnings": ["Resulting JSON is truncated."], "bom": True, "clixml_progress": True},
            id="warnings-bom-clixml",
        ),
    ],
)
async def test_output_variants_read_the_same(host: Sim, variant: dict[str, Any]) -> None:
    _, plain = await host.command(ThreatsCommand(), **ps(detections=[EICAR]))
    _result, varied = await host.command(ThreatsCommand(), **ps(detections=[EICAR], **variant))
    assert varied == plain
    _, plain_status = await host.command(StatusCommand(), **ps())
    _, varied_status = await host.command(StatusCommand(), **ps(**variant))
    assert varied_status == plain_status


async def test_pwsh7_prints_iso_dates(host: Sim) -> None:
    result, _ = await host.command(StatusCommand(), **ps(json_style="pwsh7"))
    assert '"AntivirusSignatureLastUpdated":"2024-06-03T06:30:49+00:00"' in result.output
    assert "\\/Date(" not in result.output


@pytest.mark.parametrize(("elevated", "hidden"), [(False, ("DomainUser",)), (True, ())])
async def test_admin_hidden_only_when_not_elevated(
    host: Sim, elevated: bool, hidden: tuple[str, ...]
) -> None:
    _, outcome = await host.command(
        ThreatsCommand(), elevated=elevated, **ps(detections=[EICAR], admin_hidden=["DomainUser"])
    )
    (row,) = threats_of(outcome).detections
    assert row.hidden == hidden


async def test_admin_hidden_status(host: Sim) -> None:
    _, outcome = await host.command(StatusCommand(), elevated=False, **ps(admin_hidden=["IsTamperProtected"]))
    assert outcome.summary.endswith("tamper protection hidden (not an administrator)")


async def test_module_missing(host: Sim) -> None:
    result, outcome = await host.command(StatusCommand(), **ps(module_missing=True))
    assert result.exit_code == 1
    assert outcome.summary == "The Defender PowerShell module is not available"
    _, outcome = await host.command(ThreatsCommand(), **ps(module_missing=True, clean_output="empty_arrays"))
    assert outcome.summary == "The Defender PowerShell module is not available"


async def test_crlf_on_the_wire(host: Sim) -> None:
    host.write(ps(detections=[EICAR]))
    raw = subprocess.run([EXE, *ThreatsCommand().argv()], env=host.env(), capture_output=True, check=False)
    assert raw.stdout.endswith(b"}\r\n")
    assert b"\n" not in raw.stdout.replace(b"\r\n", b"")


async def test_state_is_not_changed(host: Sim) -> None:
    host.write(ps(detections=[EICAR, TROJAN], cim_noise=True))
    before = host.state_file.read_bytes()
    for command in (StatusCommand(), ThreatsCommand()):
        await host.run(*command.argv())
    assert host.state_file.read_bytes() == before


@pytest.mark.parametrize(
    "content",
    [
        pytest.param("{not json", id="not-json"),
        pytest.param("[1, 2]", id="not-an-object"),
        pytest.param('{"powershell": {"json_style": "ps6"}}', id="bad-style"),
        pytest.param('{"powershell": {"detections": {}}}', id="detections-not-a-list"),
        pytest.param('{"powershell": {"now": "yesterday"}}', id="bad-now"),
        pytest.param('{"powershell": {"clean_output": "none"}}', id="bad-clean-output"),
        pytest.param('{"powershell": {"status": []}}', id="status-not-an-object"),
    ],
)
async def test_bad_state_file(host: Sim, content: str) -> None:
    host.state_file.write_text(content, encoding="utf-8")
    result = await host.run(*StatusCommand().argv())
    assert result.exit_code == 2
    assert "defender-powershell-sim:" in result.output
