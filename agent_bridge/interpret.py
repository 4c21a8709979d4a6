"""Turn a finished run into an :class:`~agent_bridge.reports.Outcome`, whichever tool ran it."""

from __future__ import annotations

from agent_bridge import commands, mpcmdrun_output, powershell_output
from agent_bridge.reports import Outcome
from agent_bridge.runner import RunResult


def interpret(command: commands.AgentCommand, run: RunResult) -> Outcome:
    if isinstance(command, commands.StatusCommand | commands.ThreatsCommand):
        return powershell_output.interpret(command, run)
    return mpcmdrun_output.interpret(command, run)
