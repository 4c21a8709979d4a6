"""``exclusion`` and ``maps``: is a path excluded from scanning, and can the host reach the cloud."""

from __future__ import annotations

from agent_bridge.commands import ExclusionCheckCommand, MapsCheckCommand
from agent_bridge.reports import ExclusionReport, MapsReport
from handlers.blocks import Details, escape, section
from handlers.forms import host_args, host_only
from handlers.grammar import Words
from handlers.registry import CommandSpec, HostAction
from handlers.validation import build

EXCLUSION_FORMS = ("exclusion <host> <path>",)
EXCLUSION_EXAMPLE = 'exclusion host42 "C:\\Program Files\\App\\app.exe"'


def parse_exclusion(words: Words) -> HostAction:
    parsed = host_args(words, forms=EXCLUSION_FORMS, example=EXCLUSION_EXAMPLE, positionals=1)
    path = parsed.positional(0)
    if path is None:
        raise EXCLUSION.usage_error("Which path should I check?")
    return HostAction(
        parsed.host, build(ExclusionCheckCommand, EXCLUSION.usage_error, path=path), parsed.reason
    )


def render_exclusion(report: ExclusionReport) -> Details:
    device = f" ({escape(report.device_path)})" if report.device_path else ""
    if report.excluded:
        text = f":warning: `{escape(report.path)}`{device} *is excluded*: Defender does not scan it."
    else:
        text = f":white_check_mark: `{escape(report.path)}`{device} is *not excluded*: Defender scans it."
    return Details([section(text)])


def render_maps(report: MapsReport) -> Details:
    if report.connected:
        return Details([section(":cloud: Connected to MAPS (cloud-delivered protection works).")])
    return Details()  # the error explanation says why not


EXCLUSION = CommandSpec(
    name="exclusion",
    summary="Check whether a path is excluded from Defender scans",
    forms=EXCLUSION_FORMS,
    example=EXCLUSION_EXAMPLE,
    policy_names=("exclusion",),
    parse=parse_exclusion,
    makes=(ExclusionCheckCommand,),
    renderer=render_exclusion,
)

MAPS = host_only(
    name="maps",
    summary="Check the host's connection to Microsoft's cloud protection (MAPS)",
    command=MapsCheckCommand,
    renderer=render_maps,
)

SPECS = (EXCLUSION, MAPS)
