"""``quarantine`` and ``restore``: what Defender holds in quarantine, and getting an item back."""

from __future__ import annotations

from datetime import UTC, datetime

from agent_bridge.commands import QuarantineListCommand, RestoreCommand
from agent_bridge.reports import QuarantineReport, RestoreReport
from handlers.blocks import Block, Details, escape, say_hidden, section
from handlers.forms import host_args, host_only
from handlers.grammar import Flag, Words
from handlers.registry import CommandSpec, HostAction
from handlers.validation import build

RESTORE_FORMS = (
    "restore <host> --name <threat> [--all] [--to <dir>]",
    "restore <host> --file <path> [--to <dir>]",
)
RESTORE_EXAMPLE = "restore host42 --name Virus:DOS/EICAR_Test_File --to C:\\Restored"


def parse_restore(words: Words) -> HostAction:
    flags = {
        "--name": Flag(value="threat name"),
        "--all": Flag(),
        "--file": Flag(value="file path"),
        "--to": Flag(value="folder"),
    }
    parsed = host_args(words, forms=RESTORE_FORMS, example=RESTORE_EXAMPLE, flags=flags)
    name, file_path = parsed.args.value("--name"), parsed.args.value("--file")
    if name is None and file_path is None:
        raise RESTORE.usage_error(
            "Say what to restore: `--name <threat>` (from `quarantine`) or `--file <path>`."
        )
    command = build(
        RestoreCommand,
        RESTORE.usage_error,
        name=name,
        all_items=parsed.args.flag("--all"),
        file_path=file_path,
        destination=parsed.args.value("--to"),
    )
    return HostAction(parsed.host, command, parsed.reason)


MAX_ITEMS = 30  # one block each: with the rest of a result, inside 50 blocks
MAX_FILES = 10  # per threat or restore


def render_quarantine(report: QuarantineReport) -> Details:
    if not report.items:
        return Details([section("Nothing is in quarantine.")])
    blocks: list[Block] = []
    for item in report.items[:MAX_ITEMS]:
        lines = [f"*{escape(item.threat)}*"]
        for file in item.files[:MAX_FILES]:
            when = _readable(file.quarantined_at_iso) or file.quarantined_at
            lines.append(f"• {escape(file.kind)} `{escape(file.path)}` — quarantined {escape(when)}")
        if len(item.files) > MAX_FILES:
            lines.append(f"• …and {len(item.files) - MAX_FILES} more files")
        blocks.append(section("\n".join(lines)))
    hidden = say_hidden(blocks, total=len(report.items), shown=MAX_ITEMS, one="threat", many="threats")
    shortened = hidden or any(len(item.files) > MAX_FILES for item in report.items)
    return Details(blocks, shortened=shortened)


def render_restore(report: RestoreReport) -> Details:
    where = (
        f" to `{escape(report.destination)}` (a copy; the item stays quarantined)"
        if report.destination
        else ""
    )
    lines = []
    for file in report.files[:MAX_ITEMS]:
        mark = (
            ":white_check_mark: restored"
            if file.restored
            else f":x: not restored ({escape(file.hresult or 'error')})"
        )
        lines.append(f"• `{escape(file.path)}` ({escape(file.threat)}) — {mark}")
    blocks = [section(f"Restore{where}:" + ("\n" + "\n".join(lines) if lines else " nothing matched."))]
    hidden = say_hidden(blocks, total=len(report.files), shown=MAX_ITEMS, one="files", many="files")
    return Details(blocks, shortened=hidden)


QUARANTINE = host_only(
    name="quarantine",
    summary="List what Defender has quarantined on a host",
    command=QuarantineListCommand,
    renderer=render_quarantine,
)
RESTORE = CommandSpec(
    name="restore",
    summary="Restore a quarantined item in place, or copy it out with --to",
    forms=RESTORE_FORMS,
    example=RESTORE_EXAMPLE,
    policy_names=("restore",),
    parse=parse_restore,
    makes=(RestoreCommand,),
    renderer=render_restore,
)

SPECS = (QUARANTINE, RESTORE)


def _readable(iso: str | None) -> str | None:
    """``2025-09-26T03:23:34Z`` → ``2025-09-26 03:23 UTC``; the printed local text is kept otherwise."""
    if iso is None:
        return None
    try:
        moment = datetime.fromisoformat(iso.replace("Z", "+00:00"))
    except ValueError:
        return iso
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
