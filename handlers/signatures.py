"""``update``, ``rollback`` and ``dynsig``: security intelligence in, out, and dynamic signature sets."""

from __future__ import annotations

from agent_bridge.commands import (
    DynamicSignatureAddCommand,
    DynamicSignatureListCommand,
    DynamicSignatureRemoveCommand,
    RollbackCommand,
    RollbackScope,
    UpdateCommand,
    UpdateSource,
)
from agent_bridge.reports import DynamicSignaturesReport, EngineVersions, RollbackReport, UpdateReport
from handlers.blocks import Block, Details, escape, fields, say_hidden, section
from handlers.forms import host_args, one_of
from handlers.grammar import Flag, Words
from handlers.registry import CommandSpec, HostAction
from handlers.validation import build

UPDATE_FORMS = ("update <host> [--mmpc | --unc [<path>]]",)
UPDATE_EXAMPLE = "update host42 --unc \\\\fileserver\\defender-updates"


def parse_update(words: Words) -> HostAction:
    flags = {"--mmpc": Flag(), "--unc": Flag(value="share path", optional_value=True)}
    parsed = host_args(words, forms=UPDATE_FORMS, example=UPDATE_EXAMPLE, flags=flags)
    source = one_of(parsed.args, ("--mmpc", "--unc"), forms=UPDATE_FORMS, example=UPDATE_EXAMPLE)
    command = build(
        UpdateCommand,
        UPDATE.usage_error,
        source={None: UpdateSource.DEFAULT, "--mmpc": UpdateSource.MMPC, "--unc": UpdateSource.UNC}[source],
        unc_path=parsed.args.value("--unc"),
    )
    return HostAction(host=parsed.host, command=command, reason=parsed.reason)


ROLLBACK_FORMS = ("rollback <host> [--all | --dynamic | --engine]",)


def parse_rollback(words: Words) -> HostAction:
    flags = {"--all": Flag(), "--dynamic": Flag(), "--engine": Flag()}
    parsed = host_args(words, forms=ROLLBACK_FORMS, example="rollback host42", flags=flags)
    scope = one_of(parsed.args, tuple(flags), forms=ROLLBACK_FORMS, example="rollback host42")
    scopes = {
        None: RollbackScope.INTELLIGENCE,
        "--all": RollbackScope.ALL,
        "--dynamic": RollbackScope.DYNAMIC,
        "--engine": RollbackScope.ENGINE,
    }
    return HostAction(host=parsed.host, command=RollbackCommand(scope=scopes[scope]), reason=parsed.reason)


DYNSIG_FORMS = ("dynsig list <host>", "dynsig add <host> <path>", "dynsig remove <host> <set-id>")


def parse_dynsig(words: Words) -> HostAction:
    if not words.words:
        raise DYNSIG.usage_error("Say what to do: list, add or remove.")
    operation, rest = words.words[0].lower(), Words(words.words[1:], words.reason)
    if operation == "list":
        parsed = host_args(rest, forms=DYNSIG_FORMS, example="dynsig list host42")
        return HostAction(parsed.host, DynamicSignatureListCommand(), parsed.reason)
    if operation == "add":
        parsed = host_args(
            rest, forms=DYNSIG_FORMS, example="dynsig add host42 C:\\sigs\\x.vdm", positionals=1
        )
        path = parsed.positional(0)
        if path is None:
            raise DYNSIG.usage_error("`dynsig add` needs the path of the signature file on the host.")
        return HostAction(
            parsed.host, build(DynamicSignatureAddCommand, DYNSIG.usage_error, path=path), parsed.reason
        )
    if operation == "remove":
        parsed = host_args(rest, forms=DYNSIG_FORMS, example="dynsig remove host42 {set-id}", positionals=1)
        set_id = parsed.positional(0)
        if set_id is None:
            raise DYNSIG.usage_error("`dynsig remove` needs the set id; `dynsig list <host>` shows them.")
        command = build(DynamicSignatureRemoveCommand, DYNSIG.usage_error, set_id=set_id)
        return HostAction(parsed.host, command, parsed.reason)
    raise DYNSIG.usage_error(f"`{operation}` is not a dynsig operation; use list, add or remove.")


def _versions(versions: EngineVersions | None) -> list[tuple[str, str]]:
    if versions is None:
        return []
    rows = [
        ("Platform (service)", versions.service),
        ("Engine", versions.engine),
        ("Antivirus signatures", versions.antivirus),
        ("Antispyware signatures", versions.antispyware),
    ]
    return [(name, f"`{escape(value)}`") for name, value in rows if value]


def render_update(report: UpdateReport) -> Details:
    if not report.updated:
        blocks = [section("No updates needed: the host already has the latest security intelligence.")]
        rows = _versions(report.after)
        return Details(blocks + ([fields(rows)] if rows else []))
    before, after = report.before, report.after
    if before is not None and after is not None:
        changes = []
        for name, old, new in (
            ("Engine", before.engine, after.engine),
            ("Antivirus signatures", before.antivirus, after.antivirus),
            ("Antispyware signatures", before.antispyware, after.antispyware),
            ("Platform (service)", before.service, after.service),
        ):
            if new:
                arrow = (
                    f"`{old}` → `{new}`"
                    if old and old != new
                    else f"`{new}` (unchanged)"
                    if old
                    else f"`{new}`"
                )
                changes.append((name, escape(arrow)))
        return Details([section("Security intelligence updated.")] + ([fields(changes)] if changes else []))
    rows = _versions(after)
    return Details([section("Security intelligence updated.")] + ([fields(rows)] if rows else []))


def render_rollback(report: RollbackReport) -> Details:
    target = f" to {escape(report.target)}" if report.target else ""
    state = "done" if report.done else "did not finish"
    blocks = [section(f"Rollback{target}: {state}.")]
    rows = _versions(report.versions)
    if rows:
        blocks.append(fields(rows))
    return Details(blocks)


MAX_SIGNATURES = 30


def render_dynsig(report: DynamicSignaturesReport) -> Details:
    blocks: list[Block] = []
    if report.message:
        blocks.append(section(escape(report.message)))
    if report.operation == "list" and not report.signatures:
        blocks.append(section("No dynamic signature sets are loaded."))
    for signature in report.signatures[:MAX_SIGNATURES]:
        details = "\n".join(escape(d) for d in signature.details)
        blocks.append(section(f"`{escape(signature.set_id)}`" + (f"\n{details}" if details else "")))
    hidden = say_hidden(
        blocks,
        total=len(report.signatures),
        shown=MAX_SIGNATURES,
        one="signature sets",
        many="signature sets",
    )
    return Details(blocks, shortened=hidden)


UPDATE = CommandSpec(
    name="update",
    summary="Update security intelligence (default sources, Microsoft's MMPC, or a UNC share)",
    forms=UPDATE_FORMS,
    example=UPDATE_EXAMPLE,
    policy_names=("update",),
    parse=parse_update,
    makes=(UpdateCommand,),
    timeout=1800.0,  # a download, sometimes of a whole engine
    renderer=render_update,
)
ROLLBACK = CommandSpec(
    name="rollback",
    summary="Roll back security intelligence (--all removes every signature and engine file)",
    forms=ROLLBACK_FORMS,
    example="rollback host42",
    policy_names=("rollback",),
    parse=parse_rollback,
    makes=(RollbackCommand,),
    timeout=1800.0,  # restarts the engine
    renderer=render_rollback,
)
DYNSIG = CommandSpec(
    name="dynsig",
    summary="List, add or remove dynamic signature sets",
    forms=DYNSIG_FORMS,
    example="dynsig list host42",
    policy_names=("dynsig.list", "dynsig.add", "dynsig.remove"),
    form_policies=(("dynsig.list",), ("dynsig.add",), ("dynsig.remove",)),
    parse=parse_dynsig,
    makes=(DynamicSignatureListCommand, DynamicSignatureAddCommand, DynamicSignatureRemoveCommand),
    renderer=render_dynsig,
)

SPECS = (UPDATE, ROLLBACK, DYNSIG)
