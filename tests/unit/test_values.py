"""Value checks shared by the bot's grammar and the agent's re-validation."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest

from agent_bridge import values


@pytest.mark.parametrize(
    "path",
    [
        pytest.param("C:\\Users\\Public\\eicar.com", id="drive"),
        pytest.param("c:\\", id="drive-root"),
        pytest.param("D:\\Data\\Folder With Spaces\\x.txt", id="spaces"),
        pytest.param("\\\\fileserver\\share\\dir", id="unc"),
        pytest.param("\\\\fileserver\\share", id="unc-share"),
        pytest.param("C:\\Users\\Zoë\\Документы\\файл.txt", id="unicode"),
    ],
)
def test_good_windows_paths(path: str) -> None:
    assert values.check_windows_path(path) == path


@pytest.mark.parametrize(
    ("path", "message"),
    [
        pytest.param("", "is empty", id="empty"),
        pytest.param("-Scan", "would read as an option", id="dash"),
        pytest.param("/Scan", "would read as an option", id="slash"),
        pytest.param("relative\\path", "not absolute", id="relative"),
        pytest.param("C:relative", "not absolute", id="drive-relative"),
        pytest.param("\\\\server", "not a full UNC path", id="unc-no-share"),
        pytest.param("\\\\?\\C:\\x", "cannot contain", id="device-namespace"),
        pytest.param("\\\\.\\PhysicalDrive0", "not a full UNC path", id="device-dot"),
        pytest.param('C:\\a"b', "cannot contain", id="quote"),
        pytest.param("C:\\a|b", "cannot contain", id="pipe"),
        pytest.param("C:\\a*", "cannot contain", id="wildcard"),
        pytest.param("C:\\a\nb", "invisible character U+000A", id="newline"),
        pytest.param("C:\\a\x00b", "invisible character U+0000", id="nul"),
        pytest.param("C:\\a\u202eb", "invisible character U+202E", id="bidi-override"),
        pytest.param("C:\\file.txt:stream", "alternate data stream", id="ads"),
        pytest.param("C:\\a\\..\\Windows", "'.' or '..'", id="dotdot"),
        pytest.param("C:\\x/..", "'.' or '..' (Windows reads '/' as '\\')", id="dotdot-slash"),
        pytest.param("C:\\x/../Windows", "'.' or '..'", id="dotdot-slash-middle"),
        pytest.param("C:\\x/./y", "'.' or '..'", id="dot-slash"),
        pytest.param("\\\\srv\\share/..", "'.' or '..'", id="unc-dotdot-slash"),
        pytest.param("C:/Windows", "backslashes only: `C:\\Windows`", id="forward-slashes"),
        pytest.param("C:\\Users/Public", "backslashes only: `C:\\Users\\Public`", id="mixed-slashes"),
        pytest.param("\\\\srv/share", "contains '/'", id="unc-slash"),
        pytest.param("C:\\" + "a" * 300, "at most 260", id="too-long"),
    ],
)
def test_bad_windows_paths(path: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        values.check_windows_path(path)


@pytest.mark.parametrize(
    ("path", "message"),
    [
        pytest.param("C:\\a\\..\\b", "the path `C:\\a\\..\\b` contains '.' or '..'", id="dotdot"),
        pytest.param("relative\\x", "the path `relative\\x` is not absolute", id="relative"),
        pytest.param("\\\\server", "the path `\\\\server` is not a full UNC path", id="unc"),
        pytest.param("C:\\f.txt:s", "the path `C:\\f.txt:s` has a ':' after the drive", id="ads"),
        pytest.param("-C:\\x", "path `-C:\\x` starts with `-`", id="dash"),
        pytest.param("C:\\a|b", "the path `C:\\a|b` contains `|`", id="pipe"),
    ],
)
def test_a_refused_path_is_shown_as_typed_in_backticks(path: str, message: str) -> None:
    """Not Python's repr: a single backslash stays single, and the value is in backticks."""
    with pytest.raises(ValueError) as caught:
        values.check_windows_path(path)
    assert message in str(caught.value)
    assert "\\\\" not in str(caught.value).replace("\\\\server", "")


@pytest.mark.parametrize(
    ("check", "value", "shown"),
    [
        pytest.param(values.check_host, "host;rm", "the host name `host;rm` contains `;`", id="host"),
        pytest.param(values.check_threat_name, "Virus EICAR", "the threat name `Virus EICAR`", id="threat"),
        pytest.param(values.check_signature_set_id, "{1A 2B}", "the signature set id `{1A 2B}`", id="set-id"),
        pytest.param(
            lambda v: values.check_hex_mask(v, what="level", maximum=0x3F), "zz", "the level `zz`", id="hex"
        ),
        pytest.param(values.check_host, "a\x07b", "`aU+0007b` contains `U+0007`", id="invisible-named"),
        pytest.param(values.check_threat_name, "a`b", "`a\u02cbb`", id="backtick-cannot-end-the-span"),
    ],
)
def test_other_refused_values_are_shown_in_backticks(
    check: Callable[[str], str], value: str, shown: str
) -> None:
    with pytest.raises(ValueError) as caught:
        check(value)
    assert shown in str(caught.value)
    assert "'" + value not in str(caught.value)  # no repr quoting


def test_long_paths_when_the_host_allows_them() -> None:
    path = "C:\\" + "a" * 300
    assert values.check_windows_path(path, long_paths=True) == path


@pytest.mark.parametrize(
    ("host", "expected"),
    [("host42", "host42"), ("HOST42.Corp.Example", "host42.corp.example"), ("web_01-a", "web_01-a")],
)
def test_hosts_are_lower_cased(host: str, expected: str) -> None:
    assert values.check_host(host) == expected


@pytest.mark.parametrize("host", ["", "-x", "/x", "host 42", "host;rm", "h" * 254, "höst"])
def test_bad_hosts(host: str) -> None:
    with pytest.raises(ValueError):
        values.check_host(host)


@pytest.mark.parametrize(
    ("raw", "maximum", "expected"),
    [("0x1f", 0x3F, "0x1F"), ("1F", 0x3F, "0x1F"), ("0X200", 0x3FF, "0x200"), ("0x00000000001", 0x3F, "0x1")],
)
def test_hex_masks(raw: str, maximum: int, expected: str) -> None:
    assert values.check_hex_mask(raw, what="level", maximum=maximum) == expected


@pytest.mark.parametrize(
    "raw",
    ["0x0", "0x40", "zz", "-0x1", "0x", "1 2", "０x1F", "١٠", "0x²", "0x1\u200b", "0x" + "0" * 100 + "1"],
)
def test_bad_hex_masks(raw: str) -> None:
    with pytest.raises(ValueError):
        values.check_hex_mask(raw, what="level", maximum=0x3F)


@pytest.mark.parametrize(
    "name", ["Virus:DOS/EICAR_Test_File", "Backdoor:Win32/Dirtelti!ml", "Trojan:Win32/Wacatac.B!ml"]
)
def test_threat_names(name: str) -> None:
    assert values.check_threat_name(name) == name


@pytest.mark.parametrize(
    "name", ["-All", "/All", "Virus EICAR", 'a"b', "", "٣Virus:DOS/X", "Virus\u200b:DOS/X"]
)
def test_bad_threat_names(name: str) -> None:
    with pytest.raises(ValueError):
        values.check_threat_name(name)


@pytest.mark.parametrize("set_id", ["{1A-2B}", "abc_1.2"])
def test_signature_set_ids(set_id: str) -> None:
    assert values.check_signature_set_id(set_id) == set_id


@pytest.mark.parametrize("set_id", ["-x", "/x", "٣", "{1A 2B}", "a\u200bb", "ａbc"])
def test_bad_signature_set_ids(set_id: str) -> None:
    with pytest.raises(ValueError):
        values.check_signature_set_id(set_id)
