"""``trace`` and ``getfiles``: diagnostic tracing and the support cab for Microsoft."""

from __future__ import annotations

from agent_bridge.commands import GetFilesCommand, TraceCommand
from agent_bridge.reports import GetFilesReport, TraceReport
from handlers.blocks import Details, escape, section
from handlers.forms import host_args
from handlers.grammar import Flag, Words
from handlers.registry import CommandSpec, HostAction
from handlers.validation import build

TRACE_FORMS = ("trace <host> [--grouping <hex>] [--level <hex>]",)
TRACE_EXAMPLE = "trace host42 --grouping 0x1FF --level 0x10"


def parse_trace(words: Words) -> HostAction:
    flags = {"--grouping": Flag(value="hex mask"), "--level": Flag(value="hex mask")}
    parsed = host_args(words, forms=TRACE_FORMS, example=TRACE_EXAMPLE, flags=flags)
    command = build(
        TraceCommand,
        TRACE.usage_error,
        grouping=parsed.args.value("--grouping"),
        level=parsed.args.value("--level"),
    )
    return HostAction(parsed.host, command, parsed.reason)


def render_trace(report: TraceReport) -> Details:
    lines = [escape(report.message)] if report.message else []
    if report.trace_path:
        lines.append(f"Trace file: `{escape(report.trace_path)}`")
    return Details([section("\n".join(lines))] if lines else [])


TRACE = CommandSpec(
    name="trace",
    summary="Start Defender diagnostic tracing (groups 0x1-0x3FF, levels 0x1-0x3F)",
    forms=TRACE_FORMS,
    example=TRACE_EXAMPLE,
    policy_names=("trace",),
    parse=parse_trace,
    makes=(TraceCommand,),
    renderer=render_trace,
)

GETFILES_FORMS = ("getfiles <host> [--to <dir>]", "getfiles <host> --diagtrack")


def parse_getfiles(words: Words) -> HostAction:
    flags = {"--diagtrack": Flag(), "--to": Flag(value="folder")}
    parsed = host_args(words, forms=GETFILES_FORMS, example="getfiles host42", flags=flags)
    command = build(
        GetFilesCommand,
        GETFILES.usage_error,
        diagtrack=parsed.args.flag("--diagtrack"),
        destination=parsed.args.value("--to"),
    )
    return HostAction(parsed.host, command, parsed.reason)


def render_getfiles(report: GetFilesReport) -> Details:
    return Details([section(f":package: Support files collected on the host: `{escape(report.cab_path)}`")])


GETFILES = CommandSpec(
    name="getfiles",
    summary="Collect Defender's support files into a cab on the host",
    forms=GETFILES_FORMS,
    example="getfiles host42 --to C:\\Support",
    policy_names=("getfiles",),
    parse=parse_getfiles,
    makes=(GetFilesCommand,),
    timeout=1800.0,  # collecting event logs and building the cab takes minutes
    renderer=render_getfiles,
)

SPECS = (TRACE, GETFILES)
