"""The state file's schema: typed, frozen records and the JSON → record parsing, each error naming its key.

Parsing is strict because a typo in a test fixture should fail loudly (exit 78), not quietly simulate a
different host. The keys are documented in :mod:`agent_bridge.simulator.mpcmdrun`.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from agent_bridge.simulator.mpcmdrun_text import DATE_STYLES, E_UPDATE_BUSY

STATE_ENV = "DEFENDER_SIM_STATE"
SCAN_KINDS = ("quick", "full", "custom")
# ValidateMapsConnection failures of reference section 2, with the HTTP code each is reported with.
MAPS_HTTP_CODES = {
    0x80070005: 450,
    0x80070006: 451,
    0x80508015: 0,
    0x800722F0D: 0,  # sic: nine hex digits, exactly as Microsoft's CLI documentation prints it
    0x80072EE7: 451,
    0x80004005: 450,
    0x80072F8F: 0,
    0x80072EFE: 0,
}
_UNSUPPORTED = 0x80070667


class StateError(Exception):
    """The state file is unreadable or malformed: a fixture bug, reported apart from Defender's errors."""


@dataclass(frozen=True, slots=True)
class Versions:
    service: str = "4.18.2106.6"
    engine: str = "1.1.18300.4"
    antispyware: str = "1.343.1364.0"
    antivirus: str = "1.343.1364.0"


@dataclass(frozen=True, slots=True)
class QuarantinedFile:
    path: str
    quarantined_at: datetime
    data: bytes = b""
    date_style: str | None = None
    restore_error: int | None = None


@dataclass(frozen=True, slots=True)
class QuarantineEntry:
    threat: str
    files: tuple[QuarantinedFile, ...]


@dataclass(frozen=True, slots=True)
class DynamicSignature:
    set_id: str
    path: str
    added: datetime


@dataclass(frozen=True, slots=True)
class PlantedThreat:
    threat: str
    files: tuple[str, ...]
    found_by: frozenset[str]


@dataclass(frozen=True, slots=True)
class Maps:
    hr: int | None  # None: the connection works
    http_code: int
    bare_hr: bool  # "hr=80070006" (CLI docs) instead of "hr=0x80070006" (network docs)
    http_word: str  # "httpcore" (network docs) or "httpcode" (CLI docs)

    @property
    def unsupported(self) -> bool:
        return self.hr == _UNSUPPORTED


@dataclass(frozen=True, slots=True)
class Settings:
    """The read-only part of the state: how this simulated host behaves."""

    service_running: bool
    elevated: bool
    root: Path
    hostname: str
    user: str
    now: datetime | None
    date_style: str
    encoding: str
    scan_seconds: Mapping[str, float]
    default_scan_type: str
    cancel_wait_seconds: float
    unc_scans_fail: bool
    markers: tuple[tuple[bytes, str], ...]
    exclusions: tuple[str, ...]
    exclusion_extensions: tuple[str, ...]
    volumes: Mapping[str, int]
    update_hr: int | None
    update_available: bool
    maps: Maps
    restore_error: int | None
    reinvoke: bool


def as_object(value: object, where: str) -> dict[str, object]:
    if not isinstance(value, dict):
        raise StateError(f"{where} must be a JSON object")
    return value


def as_list(value: object, where: str) -> list[object]:
    if not isinstance(value, list):
        raise StateError(f"{where} must be a JSON list")
    return value


def _str(value: object, where: str) -> str:
    if not isinstance(value, str):
        raise StateError(f"{where} must be a string")
    return value


def optional_str(value: object, where: str) -> str | None:
    return None if value is None else _str(value, where)


def _bool(value: object, where: str) -> bool:
    if not isinstance(value, bool):
        raise StateError(f"{where} must be true or false")
    return value


def _number(value: object, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise StateError(f"{where} must be a number of seconds, 0 or more")
    return float(value)


def _count(value: object, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise StateError(f"{where} must be a whole number, 0 or more")
    return value


def _choice(value: object, where: str, choices: tuple[str, ...]) -> str:
    text = _str(value, where)
    if text not in choices:
        raise StateError(f"{where} must be one of {', '.join(choices)}")
    return text


def _hresult(value: object, where: str) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value & 0xFFFFFFFF
    text = _str(value, where)
    try:
        return int(text.lower().removeprefix("0x"), 16) & 0xFFFFFFFF
    except ValueError:
        raise StateError(f'{where} must be an HRESULT such as "0x80070652"') from None


def _datetime(value: object, where: str) -> datetime:
    try:
        moment = datetime.fromisoformat(_str(value, where))
    except ValueError:
        raise StateError(f"{where} must be an ISO-8601 time such as 2025-09-26T03:23:34Z") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _strings(value: object, where: str) -> tuple[str, ...]:
    return tuple(_str(item, where) for item in as_list(value, where))


def parse_settings(
    raw: dict[str, object], mp: dict[str, object], *, base_dir: Path, default_root: Path
) -> Settings:
    root_text = raw.get("root")
    root = default_root if root_text is None else base_dir / _str(root_text, "root")
    now = mp.get("now")
    volumes = as_object(mp.get("volumes", {}), "mpcmdrun.volumes")
    markers = as_object(mp.get("signatures", {}), "mpcmdrun.signatures")
    return Settings(
        service_running=_choice(raw.get("service", "running"), "service", ("running", "disabled"))
        == "running",
        elevated=_bool(raw.get("elevated", True), "elevated"),
        root=root,
        hostname=_str(raw.get("hostname", "SIMHOST"), "hostname"),
        user=_str(mp.get("user", "Administrator"), "mpcmdrun.user"),
        now=None if now is None else _datetime(now, "mpcmdrun.now"),
        date_style=_choice(mp.get("date_style", "us"), "mpcmdrun.date_style", DATE_STYLES),
        encoding=_encoding(mp.get("encoding", "utf-8")),
        scan_seconds=_scan_seconds(mp.get("scan_seconds", 0)),
        default_scan_type=_choice(
            mp.get("default_scan_type", "quick"), "mpcmdrun.default_scan_type", ("quick", "full")
        ),
        cancel_wait_seconds=_number(mp.get("cancel_wait_seconds", 10), "mpcmdrun.cancel_wait_seconds"),
        unc_scans_fail=_bool(mp.get("unc_scans_fail", False), "mpcmdrun.unc_scans_fail"),
        markers=tuple(
            (key.encode("utf-8"), _str(threat, f"mpcmdrun.signatures[{key!r}]"))
            for key, threat in markers.items()
            if key
        ),
        exclusions=_strings(mp.get("exclusions", []), "mpcmdrun.exclusions"),
        exclusion_extensions=_strings(mp.get("exclusion_extensions", []), "mpcmdrun.exclusion_extensions"),
        volumes={
            letter.upper(): _count(number, f"mpcmdrun.volumes.{letter}") for letter, number in volumes.items()
        },
        update_hr=_update_hr(mp.get("update", "no_updates")),
        update_available=mp.get("update", "no_updates") == "updated",
        maps=_maps(mp.get("maps", "ok")),
        restore_error=None
        if mp.get("restore_error") is None
        else _hresult(mp.get("restore_error"), "mpcmdrun.restore_error"),
        reinvoke=_bool(mp.get("reinvoke", False), "mpcmdrun.reinvoke"),
    )


def _encoding(value: object) -> str:
    name = _str(value, "mpcmdrun.encoding")
    try:
        "".encode(name)
    except LookupError:
        raise StateError(f"mpcmdrun.encoding {name!r} is not a known code page") from None
    return name


def _scan_seconds(value: object) -> dict[str, float]:
    if not isinstance(value, dict):
        seconds = _number(value, "mpcmdrun.scan_seconds")
        return dict.fromkeys(SCAN_KINDS, seconds)
    unknown = set(value) - set(SCAN_KINDS)
    if unknown:
        raise StateError(f"mpcmdrun.scan_seconds has unknown scan kinds: {', '.join(sorted(unknown))}")
    return {kind: _number(value.get(kind, 0), f"mpcmdrun.scan_seconds.{kind}") for kind in SCAN_KINDS}


def _update_hr(value: object) -> int | None:
    if value in ("updated", "no_updates"):
        return None
    if value == "busy":
        return E_UPDATE_BUSY
    return _hresult(value, "mpcmdrun.update")


def _maps_hresult(value: object) -> int:
    """Like any HRESULT, except that the documentation's nine-digit 0x800722F0D is kept as printed."""
    if isinstance(value, str) and value.lower().removeprefix("0x") == "800722f0d":
        return 0x800722F0D
    return _hresult(value, "mpcmdrun.maps")


def _maps(value: object) -> Maps:
    spec = {"result": value} if not isinstance(value, dict) else value
    result = spec.get("result", "ok")
    hr = None if result == "ok" else _UNSUPPORTED if result == "unsupported" else _maps_hresult(result)
    http = spec.get("http_code")
    return Maps(
        hr=hr,
        http_code=MAPS_HTTP_CODES.get(hr or 0, 0)
        if http is None
        else _count(http, "mpcmdrun.maps.http_code"),
        bare_hr=_choice(spec.get("hr_style", "0x"), "mpcmdrun.maps.hr_style", ("0x", "bare")) == "bare",
        http_word=_choice(
            spec.get("http_word", "httpcore"), "mpcmdrun.maps.http_word", ("httpcore", "httpcode")
        ),
    )


def parse_versions(value: object) -> Versions:
    spec = as_object(value, "versions")
    default = Versions()
    return Versions(
        **{
            key: _str(spec.get(key, getattr(default, key)), f"versions.{key}")
            for key in ("service", "engine", "antispyware", "antivirus")
        }
    )


def parse_quarantine_entry(value: object) -> QuarantineEntry:
    spec = as_object(value, "mpcmdrun.quarantine[]")
    files = tuple(
        _quarantined_file(item) for item in as_list(spec.get("files", []), "mpcmdrun.quarantine[].files")
    )
    return QuarantineEntry(threat=_str(spec.get("threat"), "mpcmdrun.quarantine[].threat"), files=files)


def _quarantined_file(value: object) -> QuarantinedFile:
    where = "mpcmdrun.quarantine[].files[]"
    spec = as_object(value, where)
    style = spec.get("date_style")
    error = spec.get("restore_error")
    try:
        data = base64.b64decode(_str(spec.get("data", ""), f"{where}.data"), validate=True)
    except binascii.Error:
        raise StateError(f"{where}.data must be base64") from None
    return QuarantinedFile(
        path=_str(spec.get("path"), f"{where}.path"),
        quarantined_at=_datetime(spec.get("quarantined_at"), f"{where}.quarantined_at"),
        data=data,
        date_style=None if style is None else _choice(style, f"{where}.date_style", DATE_STYLES),
        restore_error=None if error is None else _hresult(error, f"{where}.restore_error"),
    )


def quarantined_file_json(item: QuarantinedFile) -> dict[str, object]:
    result: dict[str, object] = {"path": item.path, "quarantined_at": iso(item.quarantined_at)}
    if item.data:
        result["data"] = base64.b64encode(item.data).decode("ascii")
    if item.date_style is not None:
        result["date_style"] = item.date_style
    if item.restore_error is not None:
        result["restore_error"] = f"0x{item.restore_error:08X}"
    return result


def parse_dynamic_signature(value: object) -> DynamicSignature:
    where = "mpcmdrun.dynamic_signatures[]"
    spec = as_object(value, where)
    return DynamicSignature(
        set_id=_str(spec.get("id"), f"{where}.id"),
        path=_str(spec.get("path"), f"{where}.path"),
        added=_datetime(spec.get("added"), f"{where}.added"),
    )


def parse_planted(value: object) -> PlantedThreat:
    where = "mpcmdrun.planted[]"
    spec = as_object(value, where)
    found_by = _strings(spec.get("found_by", ["quick", "full"]), f"{where}.found_by")
    if set(found_by) - {"quick", "full"}:
        raise StateError(f"{where}.found_by lists quick and/or full")
    return PlantedThreat(
        threat=_str(spec.get("threat"), f"{where}.threat"),
        files=_strings(spec.get("files", []), f"{where}.files"),
        found_by=frozenset(found_by),
    )
