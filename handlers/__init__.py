"""Chat commands: grammar → typed command, required permission, and how results read in Slack.

Depends on :mod:`agent_bridge` only; the bot depends on this package, never the other way round.
"""

from __future__ import annotations

from collections.abc import Mapping

from agent_bridge.commands import ACTIONS
from handlers import checks, diagnostics, fleet, native, quarantine, scan, signatures, status
from handlers import help as help_command
from handlers.registry import Registry, Renderer

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
# Every typed command the agent can run belongs to exactly one command here (its timeout, renderer).
REGISTRY.check_owns(ACTIONS)

# Report kind → renderer of its details (the result's headline and error explanation are generic).
RENDERERS: Mapping[str, Renderer] = REGISTRY.renderers
