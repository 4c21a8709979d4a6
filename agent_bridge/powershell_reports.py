"""Reports for the PowerShell-backed commands (`status`, `threats`)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class StatusReport(_Frozen):
    kind: Literal["status"] = "status"


class ThreatsReport(_Frozen):
    kind: Literal["threats"] = "threats"
