"""Every command of SPEC §3 through the whole product: stand-in → bot → bridge → agent → simulators.

One deployment for the module (the real BotRuntime, real agents enrolled with tokens, the MpCmdRun and
PowerShell simulators as child processes); each case types a command and reads the thread.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from bot.demo import EICAR
from bot.local import LocalDeployment, SimulatedHost
from bot.slack_standin_model import Message
from tests.conftest import shown

pytestmark = pytest.mark.asyncio(loop_scope="module")

CHANNEL = "C0SECOPS"
MANY = 26
ADMIN = "U0BOB"
POLICY = """
[roles.admin]
commands = ["*"]

[[grants]]
role = "admin"
users = ["U0BOB"]
hosts = ["*"]
channels = ["*"]
"""

HOSTS = [
    SimulatedHost(
        name="host42",
        files={
            "C:\\Users\\Public\\eicar.com": EICAR,
            "C:\\Users\\Public\\clean.txt": b"fine\r\n",
            "C:\\Sigs\\extra.vdm": b"dynamic signature bytes",
            "C:\\xampp\\htdocs\\index.php": b"<?php ?>",
        },
        state={
            "mpcmdrun": {
                "exclusions": ["C:\\xampp\\htdocs"],
                "update": "updated",
                "date_style": "us-marks",
                "quarantine": [
                    {
                        "threat": "Backdoor:Win32/Dirtelti!ml",
                        "files": [
                            {"path": "C:\\Users\\David\\cute.md", "quarantined_at": "2025-09-26T03:23:34Z"}
                        ],
                    }
                ],
                "dynamic_signatures": [
                    {
                        "id": "{11111111-2222-3333-4444-555555555555}",
                        "path": "C:\\Sigs\\old.vdm",
                        "added": "2026-11-01T10:00:00Z",
                    }
                ],
            },
            "powershell": {
                "detections": [
                    {
                        "ThreatName": "Virus:DOS/EICAR_Test_File",
                        "Resources": ["file:_C:\\Users\\Public\\eicar.com"],
                    }
                ]
            },
        },
    ),
    SimulatedHost(name="host43", state={"service": "disabled"}),
    SimulatedHost(
        name="host44",
        state={"mpcmdrun": {"maps": {"result": "0x80070006", "hr_style": "bare", "http_word": "httpcode"}}},
    ),
    SimulatedHost(name="host45", state={"elevated": False}),
    SimulatedHost(
        name="host46",
        # 26 files, each with its own threat: a custom scan lists 26 detection blocks, as MpCmdRun prints them.
        files={f"C:\\Many\\f{i:02}.bin": f"x MARK-{i:02}-END x".encode() for i in range(MANY)},
        state={
            "mpcmdrun": {
                "signatures": {f"MARK-{i:02}-END": f"Trojan:Win32/Fake.{i:02}!ml" for i in range(MANY)},
                "quarantine": [
                    {
                        "threat": f"Trojan:Win32/Fake.{i}!ml",
                        "files": [{"path": f"C:\\Temp\\f{i}.exe", "quarantined_at": "2026-11-01T10:00:00Z"}],
                    }
                    for i in range(120)
                ],
            },
            # 26 detections: more than `threats` shows; one has resources longer than a section.
            "powershell": {
                "detections": [
                    {
                        "ThreatID": 2147480000 + i,
                        "ThreatName": f"Trojan:Win32/Fake.{i:02}!ml",
                        "Resources": [f"file:_C:\\Many\\f{i:02}.bin"]
                        + (
                            [f"file:_C:\\Deep\\R&D\\{'d' * 290}\\{j}.bin" for j in range(15)]
                            if i == 0
                            else []
                        ),
                        "InitialDetectionTime": f"2026-11-01T10:{59 - i:02}:00Z",
                    }
                    for i in range(MANY)
                ]
            },
        },
    ),
]


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def world(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[LocalDeployment]:
    deployment = LocalDeployment(
        workdir=tmp_path_factory.mktemp("every-command"),
        policy=POLICY,
        users={ADMIN: "bob"},
        channels={CHANNEL: "secops"},
        hosts=HOSTS,
        settings_overrides={"DEFENDER_SLACK_BURST": "50"},
    )
    try:
        await deployment.start()
        yield deployment
    finally:
        await deployment.stop()


async def run(world: LocalDeployment, text: str) -> tuple[str, Message]:
    """Type a command in a channel of its own (so Slack pacing of one channel does not slow the suite);
    return the root's final status line and the result reply."""
    channel = f"C0{abs(hash(text)) % 16**8:08X}"
    response = await world.command(ADMIN, text, channel)
    assert response.json is not None
    assert "Accepted as job" in response.json["text"], response.json["text"]
    await world.settle()
    root = world.standin.history(channel)[-1]
    replies = world.standin.thread(channel, root.ts)
    return shown(root), replies[-1] if replies[-1].files == [] else replies[-2]


@pytest.mark.parametrize(
    ("text", "status", "fragments"),
    [
        pytest.param("scan host42", "succeeded", ["No threats found"], id="quick"),
        pytest.param("scan host42 default --cpu-throttling", "succeeded", ["No threats found"], id="default"),
        pytest.param(
            'scan host42 custom "C:\\Users\\Public\\eicar.com" --no-remediation',
            "succeeded",
            ["1 threat found", "Virus:DOS/EICAR_Test_File", "not remediated"],
            id="custom-eicar",
        ),
        pytest.param(
            "scan host42 custom C:\\Users\\Public\\clean.txt --boot-sector",
            "succeeded",
            ["No threats found"],
            id="clean",
        ),
        # A full scan walks every drive: it finds the EICAR file and remediates it (quarantine).
        pytest.param(
            "scan host42 full --timeout 2", "succeeded", ["1 threat found", "remediation started"], id="full"
        ),
        pytest.param(
            "scan host42 custom C:\\xampp\\htdocs",
            "succeeded",
            [
                "*Skipped, excluded from scanning: `C:\\xampp\\htdocs`*",
                "Defender skipped `C:\\xampp\\htdocs`",
            ],
            id="skipped",
        ),
        pytest.param("scan host42 custom C:\\Nowhere\\x.exe", "failed", ["0x80508023"], id="missing-path"),
        pytest.param("cancel host42", "succeeded", ["No scan"], id="cancel-idle"),
        pytest.param("update host42", "succeeded", ["updated", "→"], id="update"),
        pytest.param("update host42 --mmpc", "succeeded", ["updated"], id="update-mmpc"),
        pytest.param(
            "quarantine host42",
            "succeeded",
            ["Backdoor:Win32/Dirtelti!ml", "C:\\Users\\David\\cute.md", "2025-09-26 03:23 UTC"],
            id="quarantine",
        ),
        pytest.param(
            "restore host42 --name Backdoor:Win32/Dirtelti!ml --to C:\\Restored",
            "succeeded",
            ["restored", "C:\\Users\\David\\cute.md"],
            id="restore-copy",
        ),
        pytest.param(
            "restore host42 --file C:\\Users\\Nobody\\x.exe", "failed", ["0x80508019"], id="restore-missing"
        ),
        pytest.param(
            "exclusion host42 C:\\xampp\\htdocs\\index.php", "succeeded", ["is excluded"], id="excluded"
        ),
        pytest.param("exclusion host42 C:\\Users", "succeeded", ["not excluded"], id="not-excluded"),
        pytest.param("maps host42", "succeeded", ["Connected"], id="maps-ok"),
        pytest.param("maps host44", "failed", ["0x80070006", "451"], id="maps-firewall"),
        pytest.param("trace host42 --grouping 0x1ff --level 0x10", "succeeded", ["MPTrace-"], id="trace"),
        pytest.param("getfiles host42", "succeeded", ["MpSupportFiles.cab"], id="getfiles"),
        pytest.param(
            "getfiles host42 --to C:\\Support",
            "succeeded",
            ["C:\\Support\\", "MpSupport-HOST42-"],
            id="getfiles-to",
        ),
        pytest.param("getfiles host42 --diagtrack", "succeeded", ["DiagOutputDir"], id="diagtrack"),
        pytest.param(
            "dynsig list host42", "succeeded", ["{11111111-2222-3333-4444-555555555555}"], id="dynsig-list"
        ),
        pytest.param("dynsig add host42 C:\\Sigs\\extra.vdm", "succeeded", ["added"], id="dynsig-add"),
        pytest.param(
            "dynsig remove host42 {11111111-2222-3333-4444-555555555555}",
            "succeeded",
            ["removed"],
            id="dynsig-remove",
        ),
        pytest.param("rollback host42", "succeeded", ["Rollback"], id="rollback"),
        pytest.param(
            "status host42", "succeeded", ["Real-time protection", "Tamper protection"], id="status"
        ),
        pytest.param(
            "threats host42",
            "succeeded",
            ["Virus:DOS/EICAR_Test_File", "C:\\Users\\Public\\eicar.com"],
            id="threats",
        ),
        pytest.param("status host43", "failed", ["*Service disabled (0x800106BA)*"], id="status-service-off"),
        pytest.param(
            "threats host43", "failed", ["*Service disabled (0x800106BA)*"], id="threats-service-off"
        ),
        pytest.param("quarantine host43", "failed", ["0x800106BA", "What to do"], id="service-off"),
        pytest.param(
            "mpcmdrun host42 -Scan -ScanType 1", "succeeded", ["No threats found"], id="native-mpcmdrun"
        ),
        pytest.param(
            "Start-MpScan host42 -ScanType QuickScan",
            "succeeded",
            ["No threats found"],
            id="native-start-mpscan",
        ),
        pytest.param("Update-MpSignature host42", "succeeded", ["updated"], id="native-update"),
        pytest.param(
            "Get-MpThreatDetection host42", "succeeded", ["Virus:DOS/EICAR_Test_File"], id="native-threats"
        ),
        pytest.param("restore host45 --file C:\\x.exe", "failed", ["0x80070005"], id="not-elevated"),
    ],
)
async def test_command(world: LocalDeployment, text: str, status: str, fragments: list[str]) -> None:
    root, result = await run(world, text)
    assert f"Status:* {':white_check_mark:' if status == 'succeeded' else ':x:'} {status}" in root, root
    reply = shown(result)
    for fragment in fragments:
        assert fragment in reply, f"{fragment!r} not in:\n{reply}"
    assert world.standin.warnings == []


async def test_hosts_lists_every_agent_with_its_versions(world: LocalDeployment) -> None:
    response = await world.command(ADMIN, "hosts", CHANNEL)
    assert response.json is not None
    text = str(response.json["blocks"])
    for host in ("host42", "host43", "host44", "host45", "host46"):
        assert f"*{host}*" in text
    assert "5 of 5 online" in text
    assert "signatures `1.343." in text  # versions the agents reported


async def test_job_shows_one_job_in_full(world: LocalDeployment) -> None:
    _, _ = await run(world, "maps host42")
    (job, *_) = world.runtime.store.jobs(host="host42")
    response = await world.command(ADMIN, f"job {job.id}", CHANNEL)
    assert response.json is not None
    text = str(response.json["blocks"])
    assert job.id in text
    assert "Connected to the Defender cloud" in text
    assert "/archives/C0" in text  # a link to the thread


async def test_output_too_long_for_a_message_goes_into_a_file(world: LocalDeployment) -> None:
    channel = "C0LONGOUTPUT"
    await world.command(ADMIN, "quarantine host46", channel)
    await world.settle()
    (root,) = world.standin.history(channel)
    *_, result, upload = world.standin.thread(channel, root.ts)
    assert len(result.blocks) <= 50
    assert all(len(b.get("text", {}).get("text", "")) <= 3000 for b in result.blocks)
    assert "120 threats in quarantine" in shown(result)
    (file,) = upload.files
    content = world.standin.file_content(file.id).decode()
    assert "Trojan:Win32/Fake.0!ml" in content
    assert "Trojan:Win32/Fake.119!ml" in content


async def test_many_detections_fit_one_message_and_the_full_list_goes_to_a_file(
    world: LocalDeployment,
) -> None:
    """The stand-in refuses blocks real Slack would refuse (invalid_blocks): the result must still land."""
    channel = "C0MANYTHREATS"
    await world.command(ADMIN, "scan host46 custom C:\\Many --no-remediation", channel)
    await world.settle()
    (root,) = world.standin.history(channel)
    *_, result, upload = world.standin.thread(channel, root.ts)
    reply = shown(result)
    assert f"{MANY} threats found" in reply
    assert "Trojan:Win32/Fake.09!ml" in reply and "Fake.10!ml" not in reply.split("```")[0]
    assert f"…and {MANY - 10} more threats (full list in the attached file)." in reply
    (file,) = upload.files
    assert "Trojan:Win32/Fake.25!ml" in world.standin.file_content(file.id).decode()
    assert world.standin.warnings == []


async def test_many_threats_attach_a_readable_report_not_powershells_json(world: LocalDeployment) -> None:
    """`threats` with 26 detections: 20 shown, "full list in the attached file", and that file is the
    report written out (one detection per block), not ConvertTo-Json's one line with \\/Date()\\/."""
    channel = "C0MANYDETECTIONS"
    await world.command(ADMIN, "threats host46", channel)
    await world.settle()
    (root,) = world.standin.history(channel)
    *_, result, upload = world.standin.thread(channel, root.ts)
    reply = shown(result)
    assert f"{MANY} detections" in reply
    assert f"…and {MANY - 20} more older detections (full list in the attached file)." in reply
    # The first detection's resources pass Slack's 3,000 characters: cut cleanly, and said so.
    assert "… (shortened: the full text is in the attached file)" in reply.replace("_", "")
    assert all(len(b.get("text", {}).get("text", "")) <= 3000 for b in result.blocks)
    (file,) = upload.files
    content = world.standin.file_content(file.id).decode()
    assert "Date(" not in content and '{"' not in content
    assert "1. Trojan:Win32/Fake.00!ml (threat id 2147480000, Severe" in content
    assert "\n   Resources (16):\n     file: C:\\Many\\f00.bin\n" in content
    assert f"file: C:\\Deep\\R&D\\{'d' * 290}\\14.bin" in content  # every resource, unescaped
    assert f"{MANY}. Trojan:Win32/Fake.{MANY - 1:02}!ml" in content
    assert "Times:       detected 2026-11-01 10:59 UTC" in content
    assert world.standin.warnings == []


async def test_cancel_stops_a_running_scan(tmp_path_factory: pytest.TempPathFactory) -> None:
    slow = SimulatedHost(name="host50", state={"mpcmdrun": {"scan_seconds": {"quick": 60}}})
    deployment = LocalDeployment(
        workdir=tmp_path_factory.mktemp("cancel"), policy=POLICY, users={ADMIN: "bob"}, channels={CHANNEL: "secops"},
        hosts=[slow], settings_overrides={"DEFENDER_SLACK_BURST": "50"},
    )  # fmt: skip
    try:
        await deployment.start()
        standin, store = deployment.standin, deployment.runtime.store
        await deployment.command(ADMIN, "scan host50", CHANNEL)
        (root,) = await standin.wait_for_messages(CHANNEL, 1)
        await standin.wait_for(
            lambda: any("Running on" in m.text for m in standin.thread(CHANNEL, root.ts)),
            description="running",
        )
        await deployment.command(ADMIN, "cancel host50", CHANNEL)
        await deployment.settle(timeout=30)
        scan, cancel = sorted(store.jobs(), key=lambda j: j.created_at)
        assert scan.state.value == "cancelled", scan.result
        assert cancel.state.value == "succeeded"
        assert "cancelled" in shown(standin.find_message(CHANNEL, root.ts))
    finally:
        await deployment.stop()
