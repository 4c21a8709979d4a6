"""``scan`` and ``cancel``: quick, full, default and custom scans, stopping one, and their results."""

from __future__ import annotations

from agent_bridge.commands import CancelCommand, ScanCommand, ScanType
from agent_bridge.reports import CancelReport, ScanReport
from handlers.blocks import Details, cut_section, escape, fields, say_hidden, section
from handlers.errors import UsageError
from handlers.forms import host_only
from handlers.grammar import Flag, Words, host_argument, parse_arguments
from handlers.registry import CommandSpec, HostAction
from handlers.validation import build, whole_number

FORMS = (
    "scan <host> [quick|full|default] [--timeout <days 1-30>] [--cpu-throttling]",
    "scan <host> custom <path> [--no-remediation] [--boot-sector] [--timeout <days>] [--cpu-throttling]",
)
EXAMPLE = "scan host42 full"
_COMMON = {"--timeout": Flag(value="number of days"), "--cpu-throttling": Flag()}
_CUSTOM = {**_COMMON, "--no-remediation": Flag(), "--boot-sector": Flag()}


def _usage(problem: str) -> UsageError:
    return SPEC.usage_error(problem)


def parse(words: Words) -> HostAction:
    args = parse_arguments(words.words, flags=_CUSTOM, usage=FORMS, example=EXAMPLE)
    positionals = list(args.positionals)
    host = host_argument(positionals.pop(0) if positionals else None, usage=FORMS, example=EXAMPLE)
    kind = positionals.pop(0).lower() if positionals else "quick"
    try:
        scan_type = ScanType(kind)
    except ValueError:
        raise _usage(f"`{kind}` is not a scan type; use quick, full, default or custom.") from None
    path = None
    if scan_type is ScanType.CUSTOM:
        if not positionals:
            raise _usage("A custom scan needs the file or folder to scan.")
        path = positionals.pop(0)
    elif args.flag("--no-remediation") or args.flag("--boot-sector"):
        raise _usage("`--no-remediation` and `--boot-sector` apply to custom scans only.")
    if positionals:
        extra = " ".join(positionals)
        hint = " Put quotes around a path with spaces." if scan_type is ScanType.CUSTOM else ""
        raise _usage(f"I don't know what to do with `{extra}`.{hint}")
    timeout = args.value("--timeout")
    days = whole_number(timeout, 1, 30) if timeout is not None else None
    if timeout is not None and days is None:
        raise _usage(f"`--timeout {timeout}` must be a whole number of days from 1 to 30, such as `3`.")
    command = build(
        ScanCommand,
        SPEC.usage_error,
        scan_type=scan_type,
        path=path,
        disable_remediation=args.flag("--no-remediation"),
        boot_sector=args.flag("--boot-sector"),
        timeout_days=days,
        cpu_throttling=args.flag("--cpu-throttling"),
    )
    return HostAction(host=host, command=command, reason=words.reason)


MAX_DETECTIONS = 10  # two blocks each: with the rest of a result, well inside 50 blocks
MAX_RESOURCES = 10
DAY = 86400.0
SLACK = 600.0  # MpCmdRun stops the scan at its own limit and reports; the agent kills only after this


def timeout(command: ScanCommand) -> float:
    """MpCmdRun's own limit (``-Timeout`` days, else its defaults: 7 for full and 1 for others) plus
    some slack, with or without ``--timeout``: the agent must not kill MpCmdRun at the very moment it
    would stop by itself and say so."""
    days = command.timeout_days
    if days is None:
        days = 7 if command.scan_type is ScanType.FULL else 1
    return days * DAY + SLACK


def render(report: ScanReport) -> Details:
    """Details under the result's headline (which already carries the summary)."""
    target = f" in `{escape(report.target)}`" if report.target else ""
    if report.outcome == "skipped":
        where = f"`{escape(report.target)}`" if report.target else "the path"
        return Details(
            [section(f"Defender skipped {where}: it is excluded from scanning (see `exclusion`).")]
        )
    if report.outcome != "threats":
        return Details()
    count = report.threats_found or len(report.detections)
    noun = "threat" if count == 1 else "threats"
    blocks = [section(f":rotating_light: *{count} {noun} found*{target}.")]
    cut = False
    for detection in report.detections[:MAX_DETECTIONS]:
        state = {True: "remediated", False: "*not remediated*", None: "remediation unknown"}[
            detection.remediated
        ]
        shown = [f"`{escape(r)}`" for r in detection.resources[:MAX_RESOURCES]]
        if len(detection.resources) > MAX_RESOURCES:
            shown.append(f"…and {len(detection.resources) - MAX_RESOURCES} more")
        blocks.append(fields([("Threat", f"`{escape(detection.threat)}`"), ("Status", state)]))
        block, shortened = cut_section("*Resources*\n" + ("\n".join(shown) or "—"))
        blocks.append(block)
        cut |= shortened
    hidden = say_hidden(
        blocks, total=len(report.detections), shown=MAX_DETECTIONS, one="threat", many="threats"
    )
    if report.remediation_started:
        blocks.append(section("Defender started cleaning (remediation) on the host."))
    elif report.detections and all(d.remediated is False for d in report.detections):
        blocks.append(section("Nothing was remediated (scan ran with `--no-remediation`)."))
    shortened = cut or hidden or any(len(d.resources) > MAX_RESOURCES for d in report.detections)
    return Details(blocks, shortened=shortened)


SPEC = CommandSpec(
    name="scan",
    summary="Run a Microsoft Defender scan (quick unless you say full, default or custom)",
    forms=FORMS,
    example=EXAMPLE,
    policy_names=("scan.quick", "scan.full", "scan.default", "scan.custom"),
    form_policies=(("scan.quick", "scan.full", "scan.default"), ("scan.custom",)),
    parse=parse,
    makes=(ScanCommand,),
    timeout=timeout,
    renderer=render,
)


def render_cancel(report: CancelReport) -> Details:
    return Details([section(escape(report.message))] if report.message else [])


CANCEL = host_only(
    name="cancel",
    summary="Stop the scan running on a host (MpCmdRun -Scan -Cancel, then its process tree)",
    command=CancelCommand,
    renderer=render_cancel,
)
