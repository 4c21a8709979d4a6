"""Chat commands: grammar → typed command, required permission, and how results read in Slack.

Depends on :mod:`agent_bridge` only; the bot depends on this package, never the other way round.
"""

from __future__ import annotations

from handlers import help as help_command
from handlers import scan
from handlers.registry import Registry
from handlers.results import Renderer

REGISTRY = Registry([help_command.SPEC, scan.SPEC])

RENDERERS: dict[str, Renderer] = {
    "scan": scan.render,
}
