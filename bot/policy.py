"""The access policy (TOML) and the one function that decides: :func:`authorize`.

Default deny: without a grant, a user may run ``help`` and nothing else. A grant gives a role to Slack
user ids and user groups, on hosts matching its globs, in its channels. Roles list policy names (globs
allowed: ``scan.*``, ``*``) and may inherit other roles. The policy is validated when it is loaded: a
typo in a role, a command or an id stops start-up with the key and the reason, written the way the TOML
reads (``grants[2].role``, ``roles.admin.inherits``).

Nothing is guessed. Every grant names its ``hosts`` and ``channels`` (``["*"]`` for any, written out), so
a forgotten key cannot silently widen a grant to the whole fleet; and values are strict: ``required =
"2"`` or ``reason_required = "yes"`` are mistakes to fix, not strings to coerce.
"""

from __future__ import annotations

import fnmatch
import json
import logging
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass
from difflib import get_close_matches
from pathlib import Path
from typing import Annotated, Any, TypeAlias, TypeVar

from pydantic import (
    BaseModel,
    BeforeValidator,
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

_T = TypeVar("_T")


def _listed(value: object) -> object:
    """A TOML array arrives as a list; strict mode takes only tuples, and this is the one conversion."""
    return tuple(value) if isinstance(value, list) else value


TomlList: TypeAlias = Annotated[tuple[_T, ...], BeforeValidator(_listed)]


MAX_APPROVAL_WAIT = 86400.0  # an approval request may wait at most a day


class PolicyError(Exception):
    """A policy file that cannot be used; the message names the key and the reason."""


class _KeyedError(ValueError):
    """A mistake found across keys (a model validator), carrying the key it is about: pydantic would
    otherwise report it at the top level."""

    def __init__(self, loc: tuple[str | int, ...], message: str) -> None:
        super().__init__(message)
        self.loc = loc


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)


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
    commands: TomlList[str] = ()
    inherits: TomlList[str] = ()

    @field_validator("commands")
    @classmethod
    def _known(cls, value: tuple[str, ...], info: ValidationInfo) -> tuple[str, ...]:
        _check_patterns(value, info)
        return value


class Grant(_Strict):
    role: str
    users: TomlList[UserId] = ()
    usergroups: TomlList[GroupId] = ()
    hosts: TomlList[HostGlob]  # required: leaving it out must not mean "every host"
    channels: TomlList[ChannelId]  # required: leaving it out must not mean "every channel"

    @field_validator("hosts", "channels")
    @classmethod
    def _covers_something(cls, value: tuple[str, ...], info: ValidationInfo) -> tuple[str, ...]:
        if not value:
            what = "host" if info.field_name == "hosts" else "channel"
            raise ValueError(f'an empty list covers nothing; write ["*"] for every {what}')
        return value

    @model_validator(mode="after")
    def _someone(self) -> Grant:
        if not self.users and not self.usergroups:
            raise ValueError("a grant needs users or usergroups")
        return self


class Approvers(_Strict):
    users: TomlList[UserId] = ()
    usergroups: TomlList[GroupId] = ()


class Approval(_Strict):
    commands: TomlList[str] = ()
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
        if isinstance(value, bool):  # TOML `true` is not a number of seconds
            raise ValueError("write a duration such as 15m")
        return parse_duration(value) if isinstance(value, str) else value

    @field_validator("expires_after")
    @classmethod
    def _bounded(cls, value: float) -> float:
        """The same bounds whether written ``"15m"`` or as seconds: a request that expires at once, or
        waits for ever, is a mistake."""
        if not 0 < value <= MAX_APPROVAL_WAIT:
            raise ValueError(f"must be more than 0 and at most 24h, not {value:g} seconds")
        return value

    @model_validator(mode="after")
    def _approvers(self) -> Approval:
        if self.commands and not (self.approvers.users or self.approvers.usergroups):
            raise ValueError("commands need approval but no approvers are named")
        possible = len(set(self.approvers.users))
        if self.approvers.users and not self.approvers.usergroups and self.required > possible:
            # With groups, how many approvers exist is known only at run time; with users alone it is not.
            raise _KeyedError(
                ("required",),
                f"{self.required} approvals are required but only {possible} approver"
                f"{' is' if possible == 1 else 's are'} named, so no request could ever be released",
            )
        return self


class Policy(_Strict):
    roles: dict[str, Role] = {}
    grants: TomlList[Grant] = ()
    approval: Approval = Approval()

    @model_validator(mode="after")
    def _references(self) -> Policy:
        for name, role in self.roles.items():
            for parent in role.inherits:
                if parent not in self.roles:
                    raise _KeyedError(("roles", name, "inherits"), f"{parent!r} is not a role")
        for i, grant in enumerate(self.grants):
            if grant.role not in self.roles:
                raise _KeyedError(("grants", i, "role"), f"{grant.role!r} is not a role")
        for name in self.roles:
            self._expand(name, ())
        return self

    def _expand(self, name: str, chain: tuple[str, ...]) -> frozenset[str]:
        if name in chain:
            raise _KeyedError(  # named at the role whose `inherits` closes the circle
                ("roles", chain[-1], "inherits"), f"roles inherit in a circle: {' → '.join((*chain, name))}"
            )
        role = self.roles[name]
        patterns = set(role.commands)
        for parent in role.inherits:
            patterns |= self._expand(parent, (*chain, name))
        return frozenset(patterns)

    def role_patterns(self, name: str) -> frozenset[str]:
        return self._expand(name, ())

    def needs_approval(self, policy_name: str) -> bool:
        return any(fnmatch.fnmatchcase(policy_name, p) for p in self.approval.commands)

    def groups_granting(self, policy_name: str, *, host: str | None, channel: str) -> frozenset[str]:
        """The user groups whose members this policy would let run ``policy_name`` here: the only groups
        worth asking Slack about when a check fails (refresh on miss)."""
        return frozenset(
            group
            for grant in self.grants
            if _grant_covers(self, grant, policy_name) and _in_channel(grant, channel)
            and _on_host(grant, host)
            for group in grant.usergroups
        )  # fmt: skip


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


def _grant_covers(policy: Policy, grant: Grant, policy_name: str) -> bool:
    return any(fnmatch.fnmatchcase(policy_name, p) for p in policy.role_patterns(grant.role))


def _in_channel(grant: Grant, channel: str) -> bool:
    return "*" in grant.channels or channel in grant.channels


def _on_host(grant: Grant, host: str | None) -> bool:
    return host is None or any(fnmatch.fnmatchcase(host, g.lower()) for g in grant.hosts)


def _authorize(
    policy: Policy, principal: Principal, policy_name: str, *, host: str | None, channel: str
) -> Decision:
    if policy_name in ALWAYS_ALLOWED:
        return Decision(True, "everyone may ask for help")
    wrong_channel = wrong_host = False
    for grant in policy.grants:
        if principal.user_id not in grant.users and not principal.groups & set(grant.usergroups):
            continue
        if not _grant_covers(policy, grant, policy_name):
            continue
        in_channel, on_host = _in_channel(grant, channel), _on_host(grant, host)
        if in_channel and on_host:
            return Decision(True, f"granted by role {grant.role}", role=grant.role)
        wrong_channel |= not in_channel
        wrong_host |= not on_host
    yours = f"your grant for `{policy_name}` does not cover"
    if wrong_host and wrong_channel:
        return Decision(False, f"{yours} host `{host}` in this channel")
    if wrong_host:
        return Decision(False, f"{yours} host `{host}`")
    if wrong_channel:
        return Decision(False, f"{yours} this channel")
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
        loc: tuple[str | int, ...] = tuple(error["loc"])
        original = (error.get("ctx") or {}).get("error")
        if isinstance(original, _KeyedError):
            loc = (*loc, *original.loc)
        raise PolicyError(f"{source}: {policy_key(loc)}: {_reason(error, loc)}") from exc


_REQUIRED = {
    "hosts": 'is required: list the host globs this grant covers, or write ["*"] for every host',
    "channels": 'is required: list the channel ids this grant covers, or write ["*"] for every channel',
}
_WANTED = {  # strict type errors, said the way the TOML file is written
    "int_type": "must be a whole number",
    "float_type": "must be a number",
    "bool_type": "must be true or false",
    "string_type": "must be text in quotes",
    "tuple_type": 'must be a list, such as ["..."]',
    "dict_type": "must be a table",
    "model_type": "must be a table",
}


def _reason(error: Any, loc: tuple[str | int, ...]) -> str:
    kind = str(error["type"])
    if kind == "missing":
        return _REQUIRED.get(str(loc[-1]), "is required") if loc else "is required"
    if kind in _WANTED:
        return f"{_WANTED[kind]}, not {_toml_value(error.get('input'))}"
    return str(error["msg"]).removeprefix("Value error, ")


def _toml_value(value: object) -> str:
    if isinstance(value, str):
        return f"the text {json.dumps(value[:80], ensure_ascii=False)}"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return f"the number {value}"
    if isinstance(value, list | tuple):
        return "a list"
    return "a table" if isinstance(value, dict) else "a value of another kind"


def policy_key(loc: Iterable[str | int]) -> str:
    """``("grants", 2, "role")`` → ``grants[2].role``: the key as it reads in the TOML file."""
    key = ""
    for part in loc:
        key += f"[{part}]" if isinstance(part, int) else (f".{part}" if key else part)
    return key or "(top level)"
