"""Chat commands: grammar → typed command, required permission, and how results read in Slack.

Depends on :mod:`agent_bridge` only; the bot depends on this package, never the other way round.
"""

from __future__ import annotations

from handlers import checks, diagnostics, fleet, native, quarantine, scan, signatures, status
from handlers import help as help_command
from handlers.registry import Registry
from handlers.results import Renderer

REGISTRY = Registry(
    [
        help_command.SPEC,
        *fleet.SPECS,
        *status.SPECS,
        scan.SPEC,
        scan.CANCEL,
        *signatures.SPECS,
        *quarantine.SPECS,
        *checks.SPECS,
        *diagnostics.SPECS,
        *native.SPECS,
    ],
    refused=native.REFUSED_CMDLETS,
)

# Report kind → renderer of its details (the result's headline and error explanation are generic).
RENDERERS: dict[str, Renderer] = {
    "scan": scan.render,
    "cancel": scan.render_cancel,
    "update": signatures.render_update,
    "rollback": signatures.render_rollback,
    "dynsig": signatures.render_dynsig,
    "quarantine": quarantine.render_quarantine,
    "restore": quarantine.render_restore,
    "exclusion": checks.render_exclusion,
    "maps": checks.render_maps,
    "getfiles": diagnostics.render_getfiles,
    "trace": diagnostics.render_trace,
    "status": status.render_status,
    "threats": status.render_threats,
}
