"""The HRESULT table: every documented code explained and named, the rest decoded; text forms round-trip."""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agent_bridge import hresults

# (HRESULT, Microsoft's symbolic name, a word the title or cause must use, the summary headline)
TABLE = [
    pytest.param(
        0x800106BA, "RPC_S_SERVER_UNAVAILABLE", "another antivirus", "Service disabled", id="800106BA"
    ),
    pytest.param(0x80070667, "ERROR_INVALID_COMMAND_LINE", "1607", "Command not supported", id="80070667"),
    pytest.param(0x80070005, "E_ACCESSDENIED", "administrator", "Access denied", id="80070005"),
    pytest.param(0x80070006, "ERROR_INVALID_HANDLE", "firewall", "Cloud connection blocked", id="80070006"),
    pytest.param(0x80508015, None, "firewall", "Cloud connection blocked", id="80508015"),
    pytest.param(0x800722F0D, None, "one digit too many", "Cloud connection blocked", id="800722F0D-typo"),
    pytest.param(
        0x80072F0D, "ERROR_WINHTTP_SECURE_INVALID_CA", "TLS", "Certificate not trusted", id="80072F0D"
    ),
    pytest.param(
        0x80072EE7, "ERROR_WINHTTP_NAME_NOT_RESOLVED", "resolve", "Cloud name not resolved", id="80072EE7"
    ),
    pytest.param(0x80004005, "E_FAIL", "name resolution", "Network problem", id="80004005"),
    pytest.param(0x80072F8F, "ERROR_WINHTTP_SECURE_FAILURE", "certificate", "TLS failure", id="80072F8F"),
    pytest.param(
        0x80072EFE, "ERROR_WINHTTP_CONNECTION_ERROR", "interrupted", "Connection interrupted", id="80072EFE"
    ),
    pytest.param(0x80072EE2, "ERROR_WINHTTP_TIMEOUT", "timed out", "Connection timed out", id="80072EE2"),
    pytest.param(
        0x80070652,
        "ERROR_INSTALL_ALREADY_RUNNING",
        "Windows Update",
        "Another installation is running",
        id="80070652",
    ),
    pytest.param(0x800704C7, "ERROR_CANCELLED", "cancel", "Cancelled", id="800704C7"),
    pytest.param(0x80070002, "ERROR_FILE_NOT_FOUND", "missing", "File not found", id="80070002"),
    pytest.param(0x80070003, "ERROR_PATH_NOT_FOUND", "missing", "Path not found", id="80070003"),
    pytest.param(0x800700AA, "ERROR_BUSY", "already running", "Busy", id="800700AA"),
    pytest.param(0x800705B4, "ERROR_TIMEOUT", "did not stop", "Timed out", id="800705B4"),
    pytest.param(0x80508007, "ERR_MP_NO_MEMORY", "memory", "Out of memory", id="80508007"),
    pytest.param(0x8050800C, "ERR_MP_BAD_INPUT_DATA", "intelligence", "Bad input data", id="8050800C"),
    pytest.param(0x80508014, "ERR_MP_RESTORE_FAILED", "restore", "Restore failed", id="80508014"),
    pytest.param(0x80508019, "ERR_MP_NOT_FOUND", "dynamic signature", "Not found", id="80508019"),
    pytest.param(0x80508022, "ERR_MP_REBOOT_REQUIRED", "restart", "Reboot required", id="80508022"),
    pytest.param(
        0x80508023, "ERR_MP_THREAT_NOT_FOUND", "path", "Path not found or not scannable", id="80508023"
    ),
    pytest.param(0x80508024, "ERR_MP_FULL_SCAN_REQUIRED", "full", "Full scan required", id="80508024"),
    pytest.param(
        0x80508025, "ERR_MP_MANUAL_STEPS_REQUIRED", "manual", "Manual steps required", id="80508025"
    ),
    pytest.param(
        0x80508026, "ERR_MP_REMOVE_NOT_SUPPORTED", "archive", "Removal not supported", id="80508026"
    ),
    pytest.param(0x80508030, "ERROR_MP_CALLISTO_REQUIRED", "offline", "Offline scan required", id="80508030"),
    pytest.param(0x80508031, "ERROR_MP_PLATFORM_OUTDATED", "platform", "Platform outdated", id="80508031"),
    pytest.param(
        0x80501004, "ERROR_MP_NO_INTERNET_CONN", "internet", "No internet connection", id="80501004"
    ),
]


@pytest.mark.parametrize(("hresult", "name", "word", "headline"), TABLE)
def test_every_known_hresult_is_explained(hresult: int, name: str | None, word: str, headline: str) -> None:
    info = hresults.explain(hresult)

    assert info.hresult == f"0x{hresult:08X}"
    assert info.name == name
    assert word.lower() in f"{info.title} {info.cause}".lower()
    assert info.title
    assert info.cause
    assert info.remedy
    assert info.log_hint == r"%TEMP%\MpCmdRun.log"
    assert hresults.headline(hresult) == headline


def test_the_table_holds_exactly_the_tested_codes() -> None:
    assert hresults.known_hresults() == {p.values[0] for p in TABLE}


def test_the_docs_typo_keeps_its_nine_digits() -> None:
    assert hresults.explain(0x800722F0D).hresult == "0x800722F0D"


def test_http_code_and_log_hint_are_carried() -> None:
    info = hresults.explain(0x80070005, http_code=450, log_hint=r"C:\Users\X\AppData\Local\Temp\MpCmdRun.log")

    assert info.http_code == 450
    assert info.log_hint == r"C:\Users\X\AppData\Local\Temp\MpCmdRun.log"


@pytest.mark.parametrize(
    "hresult",
    [
        pytest.param(-2147023673, id="signed-dotnet"),
        pytest.param(0xFFFFFFFF800704C7, id="sign-extended-64-bit"),
        pytest.param(0x800704C7, id="unsigned"),
    ],
)
def test_signed_and_sign_extended_codes_are_normalised(hresult: int) -> None:
    assert hresults.explain(hresult).hresult == "0x800704C7"
    assert hresults.format_hresult(hresult) == "0x800704C7"


@pytest.mark.parametrize(
    ("hresult", "title", "name"),
    [
        pytest.param(0x80072EE1, "Network error (WinHTTP 12001)", "ERROR_WINHTTP_OUT_OF_HANDLES", id="first"),
        pytest.param(0x80072EFD, "Network error (WinHTTP 12029)", "ERROR_WINHTTP_CANNOT_CONNECT", id="12029"),
        pytest.param(0x80072F99, "Network error (WinHTTP 12185)", None, id="last-unnamed"),
        pytest.param(0x80072EE0, "Windows error 12000", None, id="just-below-range"),
        pytest.param(0x80072F9A, "Windows error 12186", None, id="just-above-range"),
        pytest.param(0x80070020, "Windows error 32", None, id="win32-sharing-violation"),
    ],
)
def test_generic_windows_and_winhttp_decoding(hresult: int, title: str, name: str | None) -> None:
    info = hresults.explain(hresult, http_code=451)

    assert info.title == title
    assert info.name == name
    assert info.hresult == f"0x{hresult:08X}"
    assert "451" in info.cause


def test_generic_windows_error_points_at_net_helpmsg() -> None:
    assert "net helpmsg 32" in hresults.explain(0x80070020).remedy
    assert hresults.headline(0x80070020) == "Windows error 32"
    assert hresults.headline(0x80072EFD) == "Network error"


@pytest.mark.parametrize(
    ("hresult", "log_hint", "where", "headline"),
    [
        pytest.param(0x87654321, None, r"%TEMP%\MpCmdRun.log", "Error", id="default-log"),
        pytest.param(0x8050ABCD, r"C:\Temp\MpCmdRun.log", r"C:\Temp\MpCmdRun.log", "Defender error", id="mp"),
    ],
)
def test_unknown_hresult_is_shown_raw_with_its_log(
    hresult: int, log_hint: str | None, where: str, headline: str
) -> None:
    info = hresults.explain(hresult, log_hint=log_hint)

    assert f"0x{hresult:08X}" in info.title
    assert info.name is None
    assert where in info.remedy
    assert info.log_hint == where
    assert hresults.headline(hresult) == headline


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("0x800106BA", 0x800106BA, id="prefixed-upper"),
        pytest.param("0x800106ba", 0x800106BA, id="prefixed-lower"),
        pytest.param("0X800106Ba", 0x800106BA, id="capital-x-mixed"),
        pytest.param("800106ba", 0x800106BA, id="bare-lower"),
        pytest.param("800106BA", 0x800106BA, id="bare-upper"),
        pytest.param(" 0x80070652 ", 0x80070652, id="padded"),
        pytest.param("0x800722F0D", 0x800722F0D, id="docs-typo"),
        pytest.param("-2147023673", 0x800704C7, id="signed-decimal"),
        pytest.param("FFFFFFFF800704C7", 0x800704C7, id="sign-extended"),
        pytest.param("0", 0, id="s-ok"),
    ],
)
def test_parse_hresult(text: str, expected: int) -> None:
    assert hresults.parse_hresult(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("", id="empty"),
        pytest.param("0x", id="prefix-only"),
        pytest.param("hr=0x80070006", id="with-label"),
        pytest.param("0x8007 0006", id="inner-space"),
        pytest.param("0xZZ", id="not-hex"),
        pytest.param("0x" + "1" * 17, id="too-long"),
        pytest.param("2147023673.5", id="decimal-fraction"),
    ],
)
def test_parse_hresult_refuses_non_hresults(text: str) -> None:
    with pytest.raises(ValueError, match="not an HRESULT"):
        hresults.parse_hresult(text)


FORMATS: list[Callable[[int], str]] = [
    lambda v: f"0x{v:08X}",
    lambda v: f"0x{v:08x}",
    lambda v: f"0X{v:X}",
    lambda v: f"{v:x}",
    lambda v: f"{v:08X}",
    hresults.format_hresult,
]


@given(st.integers(min_value=0, max_value=0xFFFFFFFF), st.sampled_from(FORMATS))
def test_parse_hresult_round_trips_every_format(value: int, form: Callable[[int], str]) -> None:
    assert hresults.parse_hresult(form(value)) == value
    assert hresults.format_hresult(hresults.parse_hresult(form(value))) == f"0x{value:08X}"


@given(st.integers(min_value=0x80000000, max_value=0xFFFFFFFF))
def test_parse_hresult_round_trips_signed_decimal(value: int) -> None:
    assert hresults.parse_hresult(str(value - (1 << 32))) == value


@given(st.text())
def test_parse_hresult_only_ever_raises_value_error(text: str) -> None:
    with contextlib.suppress(ValueError):
        hresults.parse_hresult(text)


@pytest.mark.parametrize(
    ("text", "path"),
    [
        pytest.param(
            "'MpCmdRun' is not recognized as an internal or external command,\n"
            "operable program or batch file.",
            "MpCmdRun",
            id="cmd",
        ),
        pytest.param(
            "The term 'MpCmdRun.exe' is not recognized as the name of a cmdlet, function, script file, "
            "or operable program.",
            "MpCmdRun.exe",
            id="powershell",
        ),
        pytest.param(
            r"The term 'C:\Program Files\Windows Defender\MpCmdRun.exe' is not recognized as the name",
            r"C:\Program Files\Windows Defender\MpCmdRun.exe",
            id="powershell-full-path",
        ),
        pytest.param("mpcmdrun is not recognized", "mpcmdrun", id="bare-lower-case"),
    ],
)
def test_not_recognized_texts(text: str, path: str) -> None:
    assert hresults.is_not_recognized(text)
    assert hresults.not_recognized_path(text) == path


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("Scan starting...", id="scan"),
        pytest.param("MpCmdRun.exe: hr = 0x80070006", id="hr-line"),
        pytest.param("'foo' is not recognized as an internal or external command", id="other-program"),
    ],
)
def test_other_texts_are_not_not_recognized(text: str) -> None:
    assert not hresults.is_not_recognized(text)
    assert hresults.not_recognized_path(text) is None


def test_not_found_names_the_path_and_the_flag() -> None:
    info = hresults.not_found(r"C:\Program Files\Windows Defender\MpCmdRun.exe")

    assert info.title == "MpCmdRun.exe was not found"
    assert r"C:\Program Files\Windows Defender\MpCmdRun.exe" in info.cause
    assert "--mpcmdrun" in info.remedy
    assert hresults.not_found(None).cause.startswith("The agent could not start MpCmdRun.exe:")
