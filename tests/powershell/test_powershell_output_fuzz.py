"""``interpret`` must turn any text at all into an Outcome: a parser that raises loses the job's result."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from agent_bridge.commands import StatusCommand, ThreatsCommand
from agent_bridge.powershell_output import interpret
from agent_bridge.reports import Outcome
from agent_bridge.runner import RunResult

COMMANDS = st.sampled_from([StatusCommand(), ThreatsCommand()])
# Real property names, so generated objects reach the report builders with wrong types and values.
KEYS = st.sampled_from(
    [
        "Detections",
        "Threats",
        "ThreatID",
        "ThreatName",
        "Resources",
        "IsActive",
        "SeverityID",
        "ThreatStatusID",
        "ThreatStatusErrorCode",
        "AdditionalActionsBitMask",
        "InitialDetectionTime",
        "DetectionID",
        "DomainUser",
        "AMServiceEnabled",
        "AMProductVersion",
        "AntivirusSignatureAge",
        "AntivirusSignatureLastUpdated",
        "AntivirusSignatureVersion",
        "RealTimeProtectionEnabled",
        "IsTamperProtected",
        "FullScanAge",
        "QuickScanStartTime",
        "ComputerState",
        "AMRunningMode",
        "value",
        "Count",
        "CimClass",
    ]
)
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats()
    | st.text(max_size=30)
    | st.sampled_from(
        [
            "/Date(1717396249000)/",
            "/Date(-99999999999999)/",
            "/Date(1+9999)/",
            "N/A: Must be an administrator",
            "file:_C:\\x",
            ":_",
            "2024-06-03T06:30:49.1234567+14:00",
            "9999-12-31T23:59:59-14:00",
        ]
    )
)
JSON = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(KEYS | st.text(max_size=8), inner, max_size=6)
    ),
    max_leaves=25,
)
FRAGMENTS = st.sampled_from(
    [
        "{",
        "[",
        "}",
        "]",
        '{"Detections":',
        "\ufeff",
        "ï»¿",
        "#< CLIXML",
        "WARNING: x",
        "    + FullyQualifiedErrorId : HRESULT 0x800106ba,Get-MpThreat",
        "HRESULT 0xFFFFFFFF",
        "The term 'Get-MpThreat' is not recognized as the name of a cmdlet",
        "+ CategoryInfo : x",
        "is not recognized as an internal or external command",
        "[" * 3000,
    ]
)


def check(outcome: Outcome) -> None:
    assert isinstance(outcome, Outcome)
    assert "\n" not in outcome.summary
    assert outcome.summary
    if outcome.succeeded:
        assert outcome.report is not None
        assert outcome.error is None
    else:
        assert outcome.error is not None
        assert outcome.report is None


@settings(deadline=None)
@given(
    command=COMMANDS,
    text=st.text(),
    exit_code=st.integers(min_value=-1, max_value=0xFFFFFFFF),
    timed_out=st.booleans(),
    truncated=st.booleans(),
)
def test_arbitrary_text(
    command: StatusCommand | ThreatsCommand, text: str, exit_code: int, timed_out: bool, truncated: bool
) -> None:
    check(interpret(command, RunResult(exit_code, text, truncated=truncated, timed_out=timed_out)))


@settings(deadline=None)
@given(
    command=COMMANDS,
    value=JSON,
    before=st.lists(FRAGMENTS | st.text(max_size=20), max_size=3),
    after=st.lists(FRAGMENTS | st.text(max_size=20), max_size=3),
)
def test_arbitrary_json_among_noise(
    command: StatusCommand | ThreatsCommand, value: object, before: list[str], after: list[str]
) -> None:
    body = json.dumps(value, separators=(",", ":")).replace('"/Date(', '"\\/Date(')
    check(interpret(command, RunResult(0, "\n".join([*before, body, *after]))))


@settings(deadline=None)
@given(command=COMMANDS, lines=st.lists(FRAGMENTS | st.text(max_size=40), max_size=12))
def test_arbitrary_fragments(command: StatusCommand | ThreatsCommand, lines: list[str]) -> None:
    check(interpret(command, RunResult(0, "\n".join(lines))))
