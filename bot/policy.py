"""The access policy (TOML) and the one function that decides: :func:`authorize`.

Default deny: without a grant, a user may run ``help`` and nothing else. A grant gives a role to Slack
user ids and user groups, on hosts matching its globs, in its channels. Roles list policy names (globs
allowed: ``scan.*``, ``*``) and may inherit other roles. The policy is validated when it is loaded: a
typo in a role, a command or an id stops start-up with the key and the reason.
"""

from __future__ import annotations

import fnmatch
import logging
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass
from difflib import get_close_matches
from pathlib import Path
from typing import Annotated

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from bot.settings import parse_duration

log = logging.getLogger(__name__)

ALWAYS_ALLOWED = frozenset({"help"})

UserId = Annotated[str, Field(pattern=r"^[UW][A-Z0-9]{2,}$")]
GroupId = Annotated[str, Field(pattern=r"^S[A-Z0-9]{2,}$")]
ChannelId = Annotated[str, Field(pattern=r"^(\*|[CGD][A-Z0-9]{2,})$")]
HostGlob = Annotated[str, Field(pattern=r"^[A-Za-z0-9.*?_\-\[\]!]{1,253}$")]


class PolicyError(Exception):
    """A policy file that cannot be used; the message names the key and the reason."""


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def _check_patterns(patterns: Iterable[str], info: ValidationInfo) -> None:
    known: frozenset[str] = (info.context or {}).get("known_commands", frozenset())
    if not known:
        return
    for pattern in patterns:
        if not any(fnmatch.fnmatchcase(name, pattern) for name in known):
            close = get_close_matches(pattern, sorted(known), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ValueError(f"{pattern!r} matches no command{hint}")


class Role(_Strict):
    commands: tuple[str, ...] = ()
    inherits: tuple[str, ...] = ()

    @field_validator("commands")
    @classmethod
    def _known(cls, value: tuple[str, ...], info: ValidationInfo) -> tuple[str, ...]:
        _check_patterns(value, info)
        return value


class Grant(_Strict):
    role: str
    users: tuple[UserId, ...] = ()
    usergroups: tuple[GroupId, ...] = ()
    hosts: tuple[HostGlob, ...] = ("*",)
    channels: tuple[ChannelId, ...] = ("*",)

    @model_validator(mode="after")
    def _someone(self) -> Grant:
        if not self.users and not self.usergroups:
            raise ValueError("a grant needs users or usergroups")
        return self


class Approvers(_Strict):
    users: tuple[UserId, ...] = ()
    usergroups: tuple[GroupId, ...] = ()


class Approval(_Strict):
    commands: tuple[str, ...] = ()
    approvers: Approvers = Approvers()
    required: int = Field(default=1, ge=1, le=10)
    expires_after: float = 900.0
    reason_required: bool = False

    @field_validator("commands")
    @classmethod
    def _known(cls, value: tuple[str, ...], info: ValidationInfo) -> tuple[str, ...]:
        _check_patterns(value, info)
        return value

    @field_validator("expires_after", mode="before")
    @classmethod
    def _duration(cls, value: object) -> object:
        if isinstance(value, str):
            seconds = parse_duration(value)
            if seconds > 86400:
                raise ValueError("an approval can wait at most 24h")
            return seconds
        return value

    @model_validator(mode="after")
    def _approvers(self) -> Approval:
        if self.commands and not (self.approvers.users or self.approvers.usergroups):
            raise ValueError("commands need approval but no approvers are named")
        return self


class Policy(_Strict):
    roles: dict[str, Role] = {}
    grants: tuple[Grant, ...] = ()
    approval: Approval = Approval()

    @model_validator(mode="after")
    def _references(self) -> Policy:
        for name, role in self.roles.items():
            for parent in role.inherits:
                if parent not in self.roles:
                    raise ValueError(f"roles.{name}.inherits names {parent!r}, which is not a role")
        for i, grant in enumerate(self.grants):
            if grant.role not in self.roles:
                raise ValueError(f"grants[{i}].role {grant.role!r} is not a role")
        for name in self.roles:
            self._expand(name, ())
        return self

    def _expand(self, name: str, chain: tuple[str, ...]) -> frozenset[str]:
        if name in chain:
            raise ValueError(f"roles inherit in a circle: {' → '.join((*chain, name))}")
        role = self.roles[name]
        patterns = set(role.commands)
        for parent in role.inherits:
            patterns |= self._expand(parent, (*chain, name))
        return frozenset(patterns)

    def role_patterns(self, name: str) -> frozenset[str]:
        return self._expand(name, ())

    def needs_approval(self, policy_name: str) -> bool:
        return any(fnmatch.fnmatchcase(policy_name, p) for p in self.approval.commands)


@dataclass(frozen=True)
class Principal:
    user_id: str
    groups: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str
    role: str | None = None


def authorize(
    policy: Policy, principal: Principal, policy_name: str, *, host: str | None, channel: str
) -> Decision:
    """Fail closed: any error inside means deny. ``host=None`` asks about host-less commands."""
    try:
        return _authorize(policy, principal, policy_name, host=host, channel=channel)
    except Exception:  # fail closed, whatever went wrong
        log.exception("authorization failed for %s %s; denying", principal.user_id, policy_name)
        return Decision(False, "the access check failed, so the request is refused")


def _authorize(
    policy: Policy, principal: Principal, policy_name: str, *, host: str | None, channel: str
) -> Decision:
    if policy_name in ALWAYS_ALLOWED:
        return Decision(True, "everyone may ask for help")
    held_elsewhere = False
    for grant in policy.grants:
        if principal.user_id not in grant.users and not principal.groups & set(grant.usergroups):
            continue
        patterns = policy.role_patterns(grant.role)
        if not any(fnmatch.fnmatchcase(policy_name, p) for p in patterns):
            continue
        if "*" not in grant.channels and channel not in grant.channels:
            held_elsewhere = True
            continue
        if host is not None and not any(fnmatch.fnmatchcase(host, g.lower()) for g in grant.hosts):
            held_elsewhere = True
            continue
        return Decision(True, f"granted by role {grant.role}", role=grant.role)
    if held_elsewhere:
        where = f" on {host}" if host else ""
        return Decision(False, f"your grant for `{policy_name}` does not cover this channel{where}")
    return Decision(False, f"no grant lets you run `{policy_name}`")


def load_policy(path: Path, *, known_commands: frozenset[str]) -> Policy:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise PolicyError(f"{path}: cannot read the policy: {exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise PolicyError(f"{path}: not valid TOML: {exc}") from exc
    return parse_policy(data, known_commands=known_commands, source=str(path))


def parse_policy(data: object, *, known_commands: frozenset[str], source: str = "policy") -> Policy:
    try:
        return Policy.model_validate(data, context={"known_commands": known_commands})
    except ValidationError as exc:
        error = exc.errors(include_url=False)[0]
        key = ".".join(str(part) for part in error["loc"]) or "(top level)"
        message = str(error["msg"]).removeprefix("Value error, ")
        raise PolicyError(f"{source}: {key}: {message}") from exc
