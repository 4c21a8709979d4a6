"""Chat text as Slack really sends it, turned into words and typed requests."""

from __future__ import annotations

from dataclasses import replace

import pytest

from agent_bridge.commands import ScanCommand, ScanType
from handlers import REGISTRY
from handlers.errors import UnknownCommand, UsageError, UserError
from handlers.grammar import decode_slack, tokenize
from handlers.registry import BotQuery, HostAction


def slack_shows(text: str) -> str:
    """What Slack's client shows of mrkdwn text: entities decoded once."""
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


@pytest.mark.parametrize(
    ("raw", "decoded"),
    [
        pytest.param(
            "scan <http://host42.corp.example|host42.corp.example>", "scan host42.corp.example", id="autolink"
        ),
        pytest.param("scan <http://host42.corp.example>", "scan http://host42.corp.example", id="bare-link"),
        pytest.param("a &amp;&lt;b&gt;", "a &<b>", id="entities"),
        pytest.param("&amp;lt;", "&lt;", id="entity-decoded-once"),
        pytest.param("hi <@U123|alice> in <#C1|sec>", "hi @alice in #sec", id="mentions"),
        pytest.param("<!here>", "@here", id="special"),
    ],
)
def test_decode_slack(raw: str, decoded: str) -> None:
    assert decode_slack(raw) == decoded


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        pytest.param("“C:\\a b”", ("C:\\a b",), id="smart-double"),
        pytest.param("‘x’", ("x",), id="smart-single"),
        pytest.param("„C:\\a b“", ("C:\\a b",), id="low-double"),
        pytest.param("a\u00a0b", ("a", "b"), id="nbsp-between-words-separates"),
        pytest.param("C:\\a–b", ("C:\\a–b",), id="dash-inside-a-word-stays"),
        pytest.param(
            "\ufeff\u200bscan\u200b host42\u200b \u2060", ("scan", "host42"), id="invisible-between-words"
        ),
    ],
)
def test_quote_delimiters_and_separators(raw: str, words: tuple[str, ...]) -> None:
    assert tokenize(raw).words == words


@pytest.mark.parametrize(
    ("raw", "kept"),
    [
        pytest.param('"C:\\Users\\O’Brien\\x"', "C:\\Users\\O’Brien\\x", id="curly-apostrophe-in-double"),
        pytest.param("“C:\\Users\\O'Brien\\x”", "C:\\Users\\O'Brien\\x", id="apostrophe-in-smart-double"),
        pytest.param("“C:\\a ‘b’ c”", "C:\\a ‘b’ c", id="smart-singles-in-smart-double"),
        pytest.param("'C:\\say “hi”'", "C:\\say “hi”", id="smart-doubles-in-single"),
    ],
)
def test_quoted_text_is_kept_exactly_as_typed(raw: str, kept: str) -> None:
    """Only the delimiters are quotes; a smart quote inside the other kind of quotes is kept as typed."""
    assert tokenize(f"exclusion host42 {raw}").words[-1] == kept


@pytest.mark.parametrize(
    ("text", "named"),
    [
        pytest.param('exclusion host42 "C:\\x\u200by"', "U+200B ZERO WIDTH SPACE", id="zwsp-quoted"),
        pytest.param("exclusion host42 C:\\x\u200by", "U+200B ZERO WIDTH SPACE", id="zwsp-unquoted"),
        pytest.param('exclusion host42 "\ufeffC:\\x"', "U+FEFF", id="bom-quoted"),
        pytest.param('exclusion host42 "C:\\a\u00a0b"', "U+00A0 NO-BREAK SPACE", id="nbsp-quoted"),
        pytest.param('exclusion host42 "C:\\a\u202fb"', "U+202F", id="narrow-nbsp-quoted"),
        pytest.param("exclusion host42 C:\\a\u202eb", "U+202E", id="bidi-unquoted"),
        pytest.param("mpcmdrun host42 -\u200bScan", "U+200B", id="inside-an-option"),
        pytest.param("scan host42 custom C:\\x --no\u200b-remediation", "U+200B", id="inside-a-flag"),
    ],
)
def test_an_invisible_character_inside_a_value_is_refused_not_dropped(text: str, named: str) -> None:
    """``C:\\x<U+200B>y`` is not ``C:\\xy``: silently dropping it would name a different path."""
    with pytest.raises(UsageError) as info:
        REGISTRY.parse(text)
    assert named in slack_shows(info.value.message)
    assert "Usage: `/defender " in slack_shows(info.value.message)


@pytest.mark.parametrize(
    ("text", "fragments"),
    [
        pytest.param(
            "exclusion host42 C:\\Users\\O'Brien\\x",
            [
                "The `'` in `C:\\Users\\O'Brien\\x` starts a quote that is never closed",
                'double quotes: `"C:\\Users\\O\'Brien\\x"`',
                "Usage: `/defender exclusion <host> <path>`",
            ],
            id="apostrophe-in-a-path",
        ),
        pytest.param(
            "exclusion host42 C:\\Users\\O’Brien\\x",
            [
                "The `’` in `C:\\Users\\O’Brien\\x`",
                "double quotes",
                "Usage: `/defender exclusion <host> <path>`",
            ],
            id="phone-apostrophe-in-a-path",
        ),
        pytest.param(
            'scan host42 custom "C:\\Program Files',
            ['double quote `"` before `C:\\Program` is not closed', "Usage: `/defender scan <host>"],
            id="unclosed-double",
        ),
        pytest.param(
            "restore host42 --name Virus:DOS/EICAR_Test_File --reason",
            ["`--reason` needs some text", "Usage: `/defender restore <host> --name <threat>"],
            id="empty-reason",
        ),
        pytest.param(
            "dynsig add host42 'C:\\x",
            ["is not closed", "Usage: `/defender dynsig list <host>`"],
            id="dynsig",
        ),
    ],
)
def test_a_line_that_cannot_be_split_is_refused_with_the_commands_form(
    text: str, fragments: list[str]
) -> None:
    with pytest.raises(UsageError) as info:
        REGISTRY.parse(text)
    for fragment in fragments:
        assert fragment in slack_shows(info.value.message)


def test_a_line_that_cannot_be_split_with_an_unknown_command_gets_did_you_mean() -> None:
    with pytest.raises(UnknownCommand, match="Did you mean `exclusion`"):
        REGISTRY.parse("exclusoin host42 C:\\O'Brien")


@pytest.mark.parametrize("dash", ["\u2013", "\u2014", "\u2212", "\u2010", "\uff0d"])
def test_a_dash_before_an_option_reads_as_double_dash_in_chat(dash: str) -> None:
    words = tokenize(f"scan h custom C:\\x {dash}no-remediation")
    assert words.words == ("scan", "h", "custom", "C:\\x", "--no-remediation")


def test_dash_normalisation_leaves_quoted_text_alone() -> None:
    words = tokenize("scan host42 custom \"C:\\Q1 —Final\" “C:\\—x” '—y'")
    assert words.words[3:] == ("C:\\Q1 —Final", "C:\\—x", "—y")


def test_a_dash_typed_reason_takes_the_rest_of_the_line() -> None:
    words = tokenize("scan host42 —reason IR-1 “quoted” —x")
    assert words.words == ("scan", "host42") and words.reason == "IR-1 “quoted” —x"  # verbatim
    assert tokenize('scan host42 "—reason" x').words == ("scan", "host42", "—reason", "x")


@pytest.mark.parametrize(
    ("mangled", "native"),
    [
        ("mpcmdrun host42 –Scan –ScanType 2", "mpcmdrun host42 -Scan -ScanType 2"),
        ("mpcmdrun host42 —Restore —ListAll", "mpcmdrun host42 -Restore -ListAll"),
        ("Start-MpScan host42 –ScanType FullScan", "Start-MpScan host42 -ScanType FullScan"),
        ("Get-MpThreatDetection host42 −ThreatID 7", "Get-MpThreatDetection host42 -ThreatID 7"),
    ],
)
def test_a_dash_before_an_option_reads_as_single_dash_in_native_syntax(mangled: str, native: str) -> None:
    assert REGISTRY.parse(mangled) == REGISTRY.parse(native)


def test_a_quoted_dash_value_in_native_syntax_is_still_refused() -> None:
    """A quoted word keeps its dash; MpCmdRun never sees it as an option, and the path check refuses it."""
    with pytest.raises(UsageError, match="not absolute"):
        REGISTRY.parse('mpcmdrun host42 -Scan -ScanType 3 -File "–DisableRemediation"')


def test_quotes_group_and_backslashes_stay() -> None:
    words = tokenize('scan host42 custom "C:\\Program Files\\x.exe" --no-remediation')
    assert words.words == ("scan", "host42", "custom", "C:\\Program Files\\x.exe", "--no-remediation")


def test_reason_takes_the_rest_of_the_line() -> None:
    words = tokenize('scan host42 full --reason user reported "weird popups" --timeout 3')
    assert words.words == ("scan", "host42", "full")
    assert words.reason == 'user reported "weird popups" --timeout 3'


def test_reason_inside_quotes_is_just_text() -> None:
    words = tokenize('scan host42 custom "C:\\--reason x"')
    assert words.words[-1] == "C:\\--reason x" and words.reason is None


@pytest.mark.parametrize(
    "raw", ['scan host42 custom "C:\\x', "scan host42 --reason", "scan host42 --reason   "]
)
def test_malformed_lines(raw: str) -> None:
    with pytest.raises(UsageError):
        tokenize(raw)


def test_scan_forms() -> None:
    request = REGISTRY.parse("scan HOST42")
    assert request == HostAction("host42", ScanCommand(scan_type=ScanType.QUICK))
    full = REGISTRY.parse("scan host42 full --timeout 3 --cpu-throttling --reason IR-1234")
    assert isinstance(full, HostAction)
    assert full.command.argv() == ["-Scan", "-ScanType", "2", "-Timeout", "3", "-CpuThrottling"]
    assert full.reason == "IR-1234" and full.policy_name == "scan.full"


def test_custom_scan_from_a_phone() -> None:
    """Smart quotes, an em-dash and a Slack auto-link, all at once."""
    request = REGISTRY.parse(
        "scan <http://host42.corp.example|host42.corp.example> custom “C:\\Users\\Public\\my eicar.com” —no-remediation"
    )
    assert isinstance(request, HostAction)
    assert request.host == "host42.corp.example"
    assert request.command.argv() == [
        "-Scan", "-ScanType", "3", "-File", "C:\\Users\\Public\\my eicar.com", "-DisableRemediation",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        pytest.param("scan", "Which host?", id="no-host"),
        pytest.param("scan host42 fast", "`fast` is not a scan type", id="bad-type"),
        pytest.param("scan host42 custom", "needs the file or folder", id="custom-no-path"),
        pytest.param(
            "scan host42 custom C:\\Program Files\\x", "Put quotes around a path with spaces", id="unquoted"
        ),
        pytest.param("scan host42 custom -DisableRemediation", "argument injection", id="inject-dash"),
        pytest.param("scan host42 custom /DisableRemediation", "argument injection", id="inject-slash"),
        pytest.param("scan host42 custom relative\\x", "not absolute", id="relative"),
        pytest.param("scan host42 --timeout 31", "from 1 to 30", id="timeout-range"),
        pytest.param("scan host42 --timeout", "needs a number of days", id="timeout-missing"),
        pytest.param("scan host42 --timeout -1", "argument injection", id="timeout-negative"),
        pytest.param("scan host42 --timout 3", "Did you mean `--timeout`?", id="flag-typo"),
        pytest.param("scan host42 --no-remediation", "custom scans only", id="quick-no-remediation"),
        pytest.param("scan host42 full --cpu-throttling --cpu-throttling", "given twice", id="twice"),
        pytest.param("scan host;42", "not valid", id="bad-host"),
        pytest.param("scan -host42", "argument injection", id="host-injection"),
        pytest.param("scan host42 quick extra", "don't know what to do with `extra`", id="extra"),
    ],
)
def test_scan_refusals_say_what_was_wrong_and_show_the_form(text: str, fragment: str) -> None:
    with pytest.raises(UsageError) as info:
        REGISTRY.parse(text)
    assert fragment in slack_shows(info.value.message)
    assert "Usage: `/defender scan <host>" in slack_shows(info.value.message)


@pytest.mark.parametrize(
    ("word", "suggestion"),
    [
        ("sacn", "scan"),
        ("hlep", "help"),
        ("sca", "scan"),
        ("Start-MpScn", "Start-MpScan"),
        ("start-mpscn", "Start-MpScan"),
        ("Get-MpComputerStatuss", "Get-MpComputerStatus"),
        ("GET-MPTHREATDETECTON", "Get-MpThreatDetection"),
        ("mpcmdrn", "mpcmdrun"),
        ("Update-MpSignatur", "Update-MpSignature"),
    ],
)
def test_did_you_mean(word: str, suggestion: str) -> None:
    with pytest.raises(UnknownCommand) as info:
        REGISTRY.parse(f"{word} host42")
    assert f"Did you mean `{suggestion}`" in slack_shows(info.value.message)


def test_unknown_command_without_a_close_match() -> None:
    with pytest.raises(UnknownCommand) as info:
        REGISTRY.parse("xyzzy")
    assert "/defender help" in slack_shows(info.value.message)


def test_empty_text_is_help() -> None:
    assert REGISTRY.parse("   ") == BotQuery(name="help", policy_name="help")
    assert REGISTRY.parse("help scan") == BotQuery(name="help", policy_name="help", argument="scan")


def test_duplicate_names_fail_at_start_up() -> None:
    from handlers import scan
    from handlers.registry import Registry

    with pytest.raises(ValueError, match="registered twice"):
        Registry([scan.SPEC, scan.SPEC])


def test_help_for_one_command_shows_forms_example_and_access() -> None:
    from handlers.help import render_help

    rendered = render_help(REGISTRY, "restore", may_run=lambda name: name == "restore")
    text = slack_shows(str(rendered.blocks))
    assert "/defender restore <host> --name <threat> [--all] [--to <dir>]" in text
    assert "/defender restore <host> --file <path> [--to <dir>]" in text
    assert "Example: `/defender restore host42" in text
    assert "You may run this here." in text
    with pytest.raises(UnknownCommand, match="Did you mean `restore`"):
        render_help(REGISTRY, "restor", may_run=lambda name: True)


@pytest.mark.parametrize(
    ("topic", "shown", "hidden"),
    [
        ("dynsig list", "dynsig list <host>", "dynsig add"),
        ("DYNSIG Remove", "dynsig remove <host> <set-id>", "dynsig list <host>"),
        ("restore --file", "restore <host> --file <path>", "--name <threat>"),
        ("scan custom", "scan <host> custom <path>", "[quick|full|default]"),
    ],
)
def test_help_narrows_to_a_subcommand_or_option(topic: str, shown: str, hidden: str) -> None:
    from handlers.help import render_help

    assert REGISTRY.parse(f"help {topic}") == BotQuery(name="help", policy_name="help", argument=topic)
    text = slack_shows(str(render_help(REGISTRY, topic, may_run=lambda name: True).blocks))
    assert shown in text and hidden not in text


def test_help_for_a_form_that_does_not_exist_shows_the_real_ones() -> None:
    from handlers.help import render_help

    with pytest.raises(UsageError) as info:
        render_help(REGISTRY, "dynsig frob", may_run=lambda name: True)
    assert "no form with `frob`" in info.value.message
    assert "dynsig list <host>" in slack_shows(info.value.message)
    with pytest.raises(UsageError, match="at most two words"):
        REGISTRY.parse("help dynsig list host42 extra")


def test_help_lists_only_what_policy_allows() -> None:
    from handlers.help import render_help

    allowed = {"help", "status", "threats"}
    text = slack_shows(str(render_help(REGISTRY, None, may_run=lambda name: name in allowed).blocks))
    assert "/defender status <host>" in text
    assert "/defender threats <host>" in text
    assert "/defender scan" not in text
    assert "Get-MpComputerStatus" in text  # the native spelling of what you may run
    assert "Start-MpScan" not in text


@pytest.mark.parametrize(
    ("allowed", "shown", "hidden"),
    [
        pytest.param(
            {"dynsig.add"}, ["/defender dynsig add <host> <path>"], ["dynsig list", "dynsig remove"], id="add"
        ),
        pytest.param(
            {"dynsig.list", "dynsig.remove"},
            ["/defender dynsig list <host>", "/defender dynsig remove <host> <set-id>"],
            ["dynsig add"],
            id="list-remove",
        ),
        pytest.param(
            {"scan.custom"}, ["/defender scan <host> custom <path>"], ["[quick|full|default]"], id="custom"
        ),
        pytest.param(
            {"scan.full"}, ["/defender scan <host> [quick|full|default]"], ["scan <host> custom"], id="full"
        ),
    ],
)
def test_help_lists_the_forms_whose_policy_name_you_may_run(
    allowed: set[str], shown: list[str], hidden: list[str]
) -> None:
    """Not each command's first form: a user granted only ``dynsig.add`` sees ``dynsig add``."""
    from handlers.help import render_help

    text = slack_shows(
        str(render_help(REGISTRY, None, may_run=lambda name: name in allowed | {"help"}).blocks)
    )
    for form in shown:
        assert form in text
    for form in hidden:
        assert form not in text


def test_help_for_an_unknown_topic_says_did_you_mean() -> None:
    from handlers.help import render_help

    def may_run(name: str) -> bool:
        return name in {"help", "status", "threats"}

    with pytest.raises(UnknownCommand, match="Did you mean `scan`"):
        render_help(REGISTRY, "scna", may_run=may_run)
    with pytest.raises(UnknownCommand) as info:
        render_help(REGISTRY, "nonesuch", may_run=may_run)
    assert "Did you mean one of these: `help`, `status`, `threats`?" in slack_shows(info.value.message)
    assert "Type `/defender help`" not in slack_shows(
        info.value.message
    )  # not circular when you already typed help


def test_form_policies_must_match_the_forms() -> None:
    from handlers import signatures

    with pytest.raises(ValueError, match="form_policies"):
        replace(signatures.DYNSIG, form_policies=(("dynsig.list",),))
    with pytest.raises(ValueError, match="form_policies"):
        replace(signatures.DYNSIG, form_policies=(("dynsig.list",), ("dynsig.add",), ("scan.full",)))


@pytest.mark.parametrize(
    ("text", "echoed"),
    [
        pytest.param("scan host42 &lt;!channel&gt;", "`&lt;!channel&gt;` is not a scan type", id="mention"),
        pytest.param("scan host42 custom C:\\a&amp;b --frob", "`--frob` is not an option", id="flag"),
        pytest.param(
            "exclusion host42 &lt;https://evil.example|x&gt;", "&lt;https://evil.example|x&gt;", id="link"
        ),
        pytest.param(
            "&lt;!here&gt; host42", "`&lt;!here&gt;` is not a Defender command", id="unknown-command"
        ),
        pytest.param("mpcmdrun host42 -Scan -Foo&amp;", "`-Foo&amp;` does not go with `-Scan`", id="native"),
    ],
)
def test_refusals_escape_echoed_words_and_usage_lines_once(text: str, echoed: str) -> None:
    """Slack reads ``<!channel>`` in a reply as a live mention and ``<host>`` as markup: both must
    arrive as ``&lt;...&gt;``, escaped exactly once."""
    with pytest.raises(UserError) as info:
        REGISTRY.parse(text)
    message = info.value.message
    assert echoed in message
    assert "<" not in message and ">" not in message and "&amp;lt;" not in message
    if isinstance(info.value, UsageError):
        assert "Usage: `/defender " in message and "&lt;host&gt;" in message


def test_help_escapes_its_usage_lines() -> None:
    from handlers.help import render_help

    for topic in (None, "scan", "restore", "mpcmdrun"):
        text = str(render_help(REGISTRY, topic, may_run=lambda name: True).blocks)
        assert "<" not in text and ">" not in text, topic
    assert "`/defender scan &lt;host&gt; custom &lt;path&gt;" in str(
        render_help(REGISTRY, "scan", may_run=lambda n: True).blocks
    )
