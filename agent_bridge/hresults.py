"""What Defender's HRESULTs mean, in words an on-call responder can act on.

MpCmdRun reports every failure as a bare hex code; the thread must say what broke and what to do next.
Texts follow Microsoft's documentation (reference §2); codes we do not know are decoded as far as the
HRESULT layout allows and shown raw, with the log file that holds the details.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from agent_bridge.reports import ErrorInfo

DEFAULT_LOG = r"%TEMP%\MpCmdRun.log"
_WINHTTP_FIRST = 0x80072EE1  # WinHTTP 12001
_WINHTTP_LAST = 0x80072F99  # WinHTTP 12185
_HRESULT_TEXT = re.compile(r"\s*(?:(?P<signed>-\d{1,10})|(?:0[xX])?(?P<hex>[0-9A-Fa-f]{1,16}))\s*")
_NOT_RECOGNIZED_WINDOW = 1024  # the executable's path, as the agent was told it
_NOT_RECOGNIZED = re.compile(
    r"(?:'(?P<quoted>[^'\n]*MpCmdRun(?:\.exe)?)'|(?P<bare>[^\s'\"]*MpCmdRun(?:\.exe)?))"
    r"\s+is not recognized",
    re.IGNORECASE,
)

_FIREWALL = (
    "Allow the Defender cloud endpoints through the firewall and proxy (see Microsoft's 'Configure network "
    "connections for Microsoft Defender Antivirus'), exclude them from TLS inspection, then run `maps` again."
)
SERVICE_REMEDY = (
    "Run `status` on the host: if another antivirus is active this is expected. Otherwise start the "
    "WinDefend service or re-enable Defender (MpCmdRun -WdEnable, or fix the policy that turns it off)."
)


@dataclass(frozen=True, slots=True)
class _Known:
    short: str  # for the one-line summary: "Service disabled"
    title: str
    cause: str
    remedy: str
    name: str | None = None


_KNOWN: dict[int, _Known] = {
    0x800106BA: _Known(
        "Service disabled",
        "Microsoft Defender Antivirus service is disabled or not running",
        "MpCmdRun could not reach the Defender service (RPC server unavailable). Usually another antivirus "
        "product has taken over and Defender switched itself off, or the service was stopped by policy.",
        SERVICE_REMEDY,
        "RPC_S_SERVER_UNAVAILABLE",
    ),
    0x80070667: _Known(
        "Command not supported",
        "This Defender version does not accept the command",
        "Invalid command line: the Defender platform on the host does not support this command or one of "
        "its options, e.g. -ValidateMapsConnection on Windows 10 version 1607 or older.",
        "Update the Defender platform (Windows Update, KB4052623) or use a command this version supports.",
        "ERROR_INVALID_COMMAND_LINE",
    ),
    0x80070005: _Known(
        "Access denied",
        "MpCmdRun ran without administrator rights",
        "Access denied: the command needs an elevated process (ValidateMapsConnection reports httpcode 450).",
        "Run the agent as LocalSystem or an elevated administrator account, then retry.",
        "E_ACCESSDENIED",
    ),
    0x80070006: _Known(
        "Cloud connection blocked",
        "The connection to the Defender cloud (MAPS) is blocked",
        "A firewall or proxy blocks the connection to MAPS, or TLS inspection breaks it (httpcode 451).",
        _FIREWALL,
        "ERROR_INVALID_HANDLE",
    ),
    0x80508015: _Known(
        "Cloud connection blocked",
        "The connection to the Defender cloud (MAPS) is blocked",
        "Microsoft documents this code for a firewall blocking the MAPS connection or inspecting its TLS.",
        _FIREWALL,
    ),
    0x800722F0D: _Known(
        "Cloud connection blocked",
        "The connection to the Defender cloud (MAPS) is blocked",
        "A firewall blocks MAPS or TLS inspection breaks it. Microsoft's documentation prints this code with "
        "one digit too many; the real code is probably 0x80072F0D (certificate authority not trusted).",
        _FIREWALL,
    ),
    0x80072F0D: _Known(
        "Certificate not trusted",
        "The Defender cloud's TLS certificate was not trusted",
        "WinHTTP 12045: the certificate chain did not lead to a trusted root, typically because a proxy "
        "re-signs TLS traffic (TLS inspection) or the host's root certificates are out of date.",
        _FIREWALL,
        "ERROR_WINHTTP_SECURE_INVALID_CA",
    ),
    0x80072EE7: _Known(
        "Cloud name not resolved",
        "The Defender cloud's host name could not be resolved",
        "WinHTTP 12007: DNS or the proxy could not resolve the MAPS address; Microsoft also sees this when "
        "a firewall blocks the connection or inspects its TLS (httpcode 451).",
        "Check DNS and proxy settings for the SYSTEM account (netsh winhttp show proxy), then " + _FIREWALL,
        "ERROR_WINHTTP_NAME_NOT_RESOLVED",
    ),
    0x80004005: _Known(
        "Network problem",
        "Unspecified failure, most likely a network problem",
        "E_FAIL. During the MAPS check (httpcode 450) Microsoft attributes it to network problems such as "
        "name resolution.",
        "Check DNS, the proxy (netsh winhttp show proxy) and the host's internet access, then retry.",
        "E_FAIL",
    ),
    0x80072F8F: _Known(
        "TLS failure",
        "The secure (TLS) connection to the Defender cloud failed",
        "WinHTTP 12175: the TLS handshake or certificate check failed: a wrong system clock, outdated root "
        "certificates, or a proxy intercepting TLS.",
        "Check the host's clock and time sync, update root certificates and exclude the Defender endpoints "
        "from TLS inspection, then retry.",
        "ERROR_WINHTTP_SECURE_FAILURE",
    ),
    0x80072EFE: _Known(
        "Connection interrupted",
        "The connection to the Defender cloud was interrupted",
        "WinHTTP 12030: the connection was reset or closed mid-way, usually by a firewall, a proxy or an "
        "unstable network.",
        "Check the firewall and proxy logs for the Defender endpoints and retry.",
        "ERROR_WINHTTP_CONNECTION_ERROR",
    ),
    0x80072EE2: _Known(
        "Connection timed out",
        "The connection to the Defender cloud timed out",
        "WinHTTP 12002: no answer in time: a firewall silently dropping traffic, a proxy that the SYSTEM "
        "account does not use, or a very slow link.",
        "Check that the host can reach the Defender endpoints (proxy for SYSTEM: netsh winhttp show proxy).",
        "ERROR_WINHTTP_TIMEOUT",
    ),
    0x80070652: _Known(
        "Another installation is running",
        "Another installation or Windows Update is in progress",
        "The signature update could not start because Windows Update or another installer is running.",
        "Wait for the other installation to finish (restart the host if one is stuck), then run `update`.",
        "ERROR_INSTALL_ALREADY_RUNNING",
    ),
    0x800704C7: _Known(
        "Cancelled",
        "The operation was cancelled",
        "It stopped before finishing, e.g. because `cancel` (MpCmdRun -Scan -Cancel) or a shutdown ended it.",
        "Nothing to fix if the cancel was intended; otherwise run the command again.",
        "ERROR_CANCELLED",
    ),
    0x80070002: _Known(
        "File not found",
        "A file the command needs does not exist",
        "The file or folder named in the command is missing on the host, e.g. a dynamic signature file or "
        "an update share.",
        "Check the path exists on the host and the SYSTEM account can read it, then retry.",
        "ERROR_FILE_NOT_FOUND",
    ),
    0x80070003: _Known(
        "Path not found",
        "A folder the command needs does not exist",
        "The path named in the command (e.g. the update share given with --unc) is missing or unreachable.",
        "Check the folder or share exists and the host's SYSTEM account can reach it, then retry.",
        "ERROR_PATH_NOT_FOUND",
    ),
    0x800700AA: _Known(
        "Busy",
        "Defender is busy with another operation",
        "Another scan or operation is already running on the host.",
        "Wait for it to finish (see `status`), or stop a running scan with `cancel`, then retry.",
        "ERROR_BUSY",
    ),
    0x800705B4: _Known(
        "Timed out",
        "Defender did not finish in time",
        "The operation waited too long, e.g. a running scan did not stop after `cancel` asked it to.",
        "Check with `status` whether the scan is still running and try `cancel` again.",
        "ERROR_TIMEOUT",
    ),
    0x80508007: _Known(
        "Out of memory",
        "Defender ran out of memory",
        "The host might have run out of memory.",
        "Check the host's free memory, close unused applications, restart it and run the command again.",
        "ERR_MP_NO_MEMORY",
    ),
    0x8050800C: _Known(
        "Bad input data",
        "Defender reported bad input data",
        "There might be a problem with the security product, often damaged or outdated intelligence.",
        "Run `update`, then a full scan; restart the host and try again if it persists.",
        "ERR_MP_BAD_INPUT_DATA",
    ),
    0x80508014: _Known(
        "Restore failed",
        "The item could not be restored from quarantine",
        "Defender could not restore the quarantined item.",
        "Check the destination exists and SYSTEM can write to it, try another folder with --to, and read "
        "the log on the host.",
        "ERR_MP_RESTORE_FAILED",
    ),
    0x80508019: _Known(
        "Not found",
        "The named item does not exist",
        "No quarantined threat or file, or no dynamic signature set, has that name or ID.",
        "List what exists with `quarantine` or `dynsig list` and use the exact name.",
        "ERR_MP_NOT_FOUND",
    ),
    0x80508022: _Known(
        "Reboot required",
        "A reboot is required to finish removing the threat",
        "Defender needs a restart to complete threat removal.",
        "Restart the host, then run a full scan.",
        "ERR_MP_REBOOT_REQUIRED",
    ),
    0x80508023: _Known(
        "Path not found or not scannable",
        "The path does not exist or could not be scanned",
        "Microsoft: the threat may no longer be present, or malware may be stopping the scan. MpCmdRun also "
        "returns it when the scan path does not exist or is a UNC path it cannot reach.",
        "Check the path exists on the host as a local path; if it does, run the Microsoft Safety Scanner, "
        "update security intelligence and scan again.",
        "ERR_MP_THREAT_NOT_FOUND",
    ),
    0x80508024: _Known(
        "Full scan required",
        "A full scan is required",
        "Defender needs a full system scan to finish dealing with the threat.",
        "Run a full scan of the host.",
        "ERR_MP_FULL_SCAN_REQUIRED",
    ),
    0x80508025: _Known(
        "Manual steps required",
        "Manual steps are required to remove the threat",
        "Defender cannot finish removing the threat by itself.",
        "Follow the threat's manual removal steps in the Microsoft Security Intelligence encyclopedia.",
        "ERR_MP_MANUAL_STEPS_REQUIRED",
    ),
    0x80508026: _Known(
        "Removal not supported",
        "The threat cannot be removed from its container",
        "The threat sits inside an archive or other container that Defender cannot clean in place.",
        "Delete or clean the containing file by hand.",
        "ERR_MP_REMOVE_NOT_SUPPORTED",
    ),
    0x80508030: _Known(
        "Offline scan required",
        "An offline scan is required",
        "The threat can only be removed by Microsoft Defender Offline.",
        "Run Microsoft Defender Offline on the host (Start-MpWDOScan; the host restarts into it).",
        "ERROR_MP_CALLISTO_REQUIRED",
    ),
    0x80508031: _Known(
        "Platform outdated",
        "The Defender platform is too old",
        "Defender does not support the current platform version and needs a newer one.",
        "Update the Defender platform (Windows Update, KB4052623).",
        "ERROR_MP_PLATFORM_OUTDATED",
    ),
    0x80501004: _Known(
        "No internet connection",
        "Defender has no internet connection",
        "Defender could not reach the internet.",
        "Check the host's internet connection and proxy, then retry.",
        "ERROR_MP_NO_INTERNET_CONN",
    ),
}

# The WinHTTP errors a responder meets most; the rest of 12001-12185 is named by number only.
_WINHTTP_NAMES = {
    12001: "OUT_OF_HANDLES", 12002: "TIMEOUT", 12004: "INTERNAL_ERROR", 12005: "INVALID_URL",
    12006: "UNRECOGNIZED_SCHEME", 12007: "NAME_NOT_RESOLVED", 12017: "OPERATION_CANCELLED",
    12029: "CANNOT_CONNECT", 12030: "CONNECTION_ERROR", 12037: "SECURE_CERT_DATE_INVALID",
    12038: "SECURE_CERT_CN_INVALID", 12044: "CLIENT_AUTH_CERT_NEEDED", 12045: "SECURE_INVALID_CA",
    12057: "SECURE_CERT_REV_FAILED", 12152: "INVALID_SERVER_RESPONSE", 12175: "SECURE_FAILURE",
    12180: "AUTODETECTION_FAILED",
}  # fmt: skip


def format_hresult(hresult: int) -> str:
    """The one display form: ``0x800106BA``."""
    return f"0x{_normalise(hresult):08X}"


def known_hresults() -> frozenset[int]:
    return frozenset(_KNOWN)


def parse_hresult(text: str) -> int:
    """``0x800106BA``, ``800106ba``, any case; also a signed decimal such as .NET prints (``-2147023673``)."""
    match = _HRESULT_TEXT.fullmatch(text)
    if match is None:
        raise ValueError(f"{text!r} is not an HRESULT; expected hex such as 0x800106BA")
    if match["signed"] is not None:
        return int(match["signed"]) & 0xFFFFFFFF
    return _normalise(int(match["hex"], 16))


def headline(hresult: int) -> str:
    """A few words for a summary line: "Service disabled"."""
    hresult = _normalise(hresult)
    if (known := _KNOWN.get(hresult)) is not None:
        return known.short
    if _WINHTTP_FIRST <= hresult <= _WINHTTP_LAST:
        return "Network error"
    if hresult >> 16 == 0x8007:
        return f"Windows error {hresult & 0xFFFF}"
    if hresult >> 16 == 0x8050:
        return "Defender error"
    return "Error"


def explain(hresult: int, *, http_code: int | None = None, log_hint: str | None = None) -> ErrorInfo:
    hresult = _normalise(hresult)
    code = format_hresult(hresult)
    log = log_hint or DEFAULT_LOG

    def info(title: str, cause: str, remedy: str, name: str | None = None) -> ErrorInfo:
        return ErrorInfo(
            hresult=code,
            name=name,
            title=title,
            cause=cause,
            remedy=remedy,
            http_code=http_code,
            log_hint=log,
        )

    if (known := _KNOWN.get(hresult)) is not None:
        return info(known.title, known.cause, known.remedy, known.name)
    http = f" (httpcode {http_code})" if http_code is not None else ""
    if _WINHTTP_FIRST <= hresult <= _WINHTTP_LAST:
        number = hresult & 0xFFFF
        suffix = _WINHTTP_NAMES.get(number)
        return info(
            f"Network error (WinHTTP {number})",
            f"Windows HTTP error {number}{http}: the host could not talk to a Microsoft service.",
            f"Check the host's network, DNS and proxy for the SYSTEM account; details in {log}.",
            f"ERROR_WINHTTP_{suffix}" if suffix else None,
        )
    if hresult >> 16 == 0x8007:
        number = hresult & 0xFFFF
        return info(
            f"Windows error {number}",
            f"MpCmdRun failed with Windows error {number} ({code}){http}.",
            f"Run `net helpmsg {number}` on the host for Windows' description; details in {log}.",
        )
    what = "a Microsoft Defender error" if hresult >> 16 == 0x8050 else "an error"
    return info(
        f"Unrecognised error {code}",
        f"MpCmdRun failed with {what} ({code}){http} that this bot does not know.",
        f"Read {log} on the host and look the code up in Microsoft's 'Microsoft Defender Antivirus "
        "event IDs and error codes'.",
    )


def is_not_recognized(text: str) -> bool:
    """cmd's "'MpCmdRun' is not recognized as an internal or external command" or PowerShell's version."""
    return _find_not_recognized(text) is not None


def not_recognized_path(text: str) -> str | None:
    match = _find_not_recognized(text)
    if match is None:
        return None
    return match["quoted"] or match["bare"]


def _find_not_recognized(text: str) -> re.Match[str] | None:
    # Only the stretch before the phrase: searching a whole long line from every position is quadratic.
    end = text.lower().find(" is not recognized")
    if end < 0:
        return None
    return _NOT_RECOGNIZED.search(text, max(0, end - _NOT_RECOGNIZED_WINDOW), end + 32)


def not_found(path: str | None) -> ErrorInfo:
    where = f" at {path}" if path else ""
    return ErrorInfo(
        title="MpCmdRun.exe was not found",
        cause=f"The agent could not start MpCmdRun.exe{where}: Defender is not installed, was removed, "
        "or lives somewhere else (it is not on PATH).",
        remedy="Check Defender is installed on the host (%ProgramFiles%\\Windows Defender, or the Platform "
        "folder under %ProgramData%\\Microsoft\\Windows Defender) or start the agent with --mpcmdrun.",
    )


def _normalise(hresult: int) -> int:
    """Signed (.NET) or sign-extended 64-bit values become the unsigned 32-bit code Windows prints."""
    if hresult < 0 or hresult >> 32 == 0xFFFFFFFF:
        return hresult & 0xFFFFFFFF
    return hresult
