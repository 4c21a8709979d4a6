"""The access policy: loading with clear errors, and authorize() as a table."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from bot.policy import Policy, PolicyError, Principal, authorize, load_policy, parse_policy
from handlers import REGISTRY

KNOWN = frozenset(
    {"help", "hosts", "jobs", "status", "threats", "quarantine", "exclusion", "maps", "dynsig.list",
     "scan.quick", "scan.full", "scan.default", "scan.custom", "cancel", "update", "trace", "getfiles",
     "rollback", "restore", "dynsig.add", "dynsig.remove"}
)  # fmt: skip

SPEC_POLICY = """
[roles.viewer]
commands = ["help", "hosts", "jobs", "status", "threats", "quarantine", "exclusion", "maps", "dynsig.list"]

[roles.responder]
inherits = ["viewer"]
commands = ["scan.*", "cancel", "update", "trace", "getfiles"]

[roles.admin]
inherits = ["responder"]
commands = ["*"]

[[grants]]
role = "responder"
users = ["U0ALICE"]
usergroups = ["S0ONCALL"]
hosts = ["*"]
channels = ["C0SECOPS"]

[[grants]]
role = "viewer"
users = ["U0VIEW"]
hosts = ["web-*"]
channels = ["*"]

[[grants]]
role = "admin"
users = ["U0BOB"]
hosts = ["*"]
channels = ["*"]

[approval]
commands = ["scan.full", "rollback", "restore", "dynsig.add", "dynsig.remove"]
approvers = { usergroups = ["S0ONCALL"], users = [] }
required = 1
expires_after = "15m"
reason_required = true
"""


@pytest.fixture
def policy() -> Policy:
    return parse_policy(tomllib.loads(SPEC_POLICY), known_commands=KNOWN)


@pytest.mark.parametrize(
    ("user", "groups", "command", "host", "channel", "allowed"),
    [
        pytest.param("U0NOBODY", (), "help", None, "C0ANY", True, id="anyone-help"),
        pytest.param("U0NOBODY", (), "scan.quick", "host42", "C0SECOPS", False, id="default-deny"),
        pytest.param("U0NOBODY", (), "status", "host42", "C0SECOPS", False, id="default-deny-read"),
        pytest.param("U0ALICE", (), "scan.full", "host42", "C0SECOPS", True, id="responder-glob"),
        pytest.param("U0ALICE", (), "status", "host42", "C0SECOPS", True, id="inherited"),
        pytest.param("U0ALICE", (), "rollback", "host42", "C0SECOPS", False, id="not-in-role"),
        pytest.param("U0ALICE", (), "scan.quick", "host42", "C0RANDOM", False, id="wrong-channel"),
        pytest.param("U0CAROL", ("S0ONCALL",), "scan.quick", "host42", "C0SECOPS", True, id="by-usergroup"),
        pytest.param("U0CAROL", ("S0OTHER",), "scan.quick", "host42", "C0SECOPS", False, id="other-group"),
        pytest.param("U0VIEW", (), "status", "web-01", "C0ANY", True, id="host-glob"),
        pytest.param("U0VIEW", (), "status", "db-01", "C0ANY", False, id="host-outside-glob"),
        pytest.param("U0VIEW", (), "hosts", None, "C0ANY", True, id="hostless"),
        pytest.param("U0BOB", (), "dynsig.remove", "db-01", "C0ANY", True, id="admin-star"),
        pytest.param("U0BOB", (), "rollback", "anything", "C9", True, id="admin-anywhere"),
    ],
)
def test_authorize(
    policy: Policy,
    user: str,
    groups: tuple[str, ...],
    command: str,
    host: str | None,
    channel: str,
    allowed: bool,
) -> None:
    decision = authorize(policy, Principal(user, frozenset(groups)), command, host=host, channel=channel)
    assert decision.allowed is allowed, decision.reason


@pytest.mark.parametrize(
    ("user", "host", "channel", "reason"),
    [
        pytest.param("U0NOBODY", "host42", "C0SECOPS", "no grant lets you run `status`", id="no-grant"),
        pytest.param(
            "U0ALICE", "host42", "C0RANDOM", "your grant for `status` does not cover this channel",
            id="channel-only",
        ),
        pytest.param(
            "U0VIEW", "db-01", "C0ANY", "your grant for `status` does not cover host `db-01`", id="host-only"
        ),
        pytest.param(
            "U0BOTH", "db-01", "C0RANDOM", "your grant for `status` does not cover host `db-01` in this channel",
            id="host-and-channel",
        ),
    ],
)  # fmt: skip
def test_denials_say_what_is_not_covered(
    policy: Policy, user: str, host: str, channel: str, reason: str
) -> None:
    """A host outside the globs is not blamed on the channel, nor the other way round."""
    data = tomllib.loads(SPEC_POLICY)
    data["grants"].append(
        {"role": "viewer", "users": ["U0BOTH"], "hosts": ["web-*"], "channels": ["C0SECOPS"]}
    )
    both = parse_policy(data, known_commands=KNOWN)
    decision = authorize(both, Principal(user), "status", host=host, channel=channel)
    assert not decision.allowed
    assert decision.reason == reason


def test_the_groups_worth_refreshing_are_those_that_would_grant(policy: Policy) -> None:
    assert policy.groups_granting("scan.quick", host="host42", channel="C0SECOPS") == {"S0ONCALL"}
    assert policy.groups_granting("rollback", host="host42", channel="C0SECOPS") == frozenset()
    assert policy.groups_granting("scan.quick", host="host42", channel="C0RANDOM") == frozenset()


def test_authorize_fails_closed(policy: Policy) -> None:
    class Broken:
        user_id = "U0CAROL"

        @property
        def groups(self) -> frozenset[str]:
            raise RuntimeError("directory down")

    decision = authorize(policy, Broken(), "scan.quick", host="host42", channel="C0SECOPS")  # type: ignore[arg-type]
    assert not decision.allowed and "failed" in decision.reason


def test_approval_rules(policy: Policy) -> None:
    assert policy.needs_approval("scan.full")
    assert not policy.needs_approval("scan.quick")
    assert policy.approval.expires_after == 900.0 and policy.approval.reason_required


def mistake(*changes: object, key: str, says: str, id: str) -> object:
    """A table row: ``changes`` are (dotted path, new value) pairs applied to the SPEC policy."""
    return pytest.param(changes, key, says, id=id)


@pytest.mark.parametrize(
    ("changes", "key", "says"),
    [
        mistake("roles.responder.inherits", ["viewr"], key="roles.responder.inherits",
                says="'viewr' is not a role", id="bad-inherit"),
        mistake("grants.2.role", "responders", key="grants[2].role", says="'responders' is not a role",
                id="bad-role"),
        mistake("roles.viewer.commands", ["statuss"], key="roles.viewer.commands",
                says="did you mean 'status'", id="typo-command"),
        mistake("grants.0.users", ["alice"], key="grants[0].users[0]", says="String should match",
                id="user-name-not-id"),
        mistake("approval.expires_after", "15 minutes", key="approval.expires_after", says="not a duration",
                id="bad-duration"),
        mistake("approval.required", 0, key="approval.required", says="greater than or equal to 1",
                id="zero-required"),
        mistake("roles.viewer.inherits", ["admin"], key="roles.responder.inherits",
                says="roles inherit in a circle: viewer → admin → responder → viewer", id="cycle"),
        mistake("roles.viewer.inherits", ["viewer"], key="roles.viewer.inherits",
                says="circle: viewer → viewer", id="self-cycle"),
        mistake("grants.0.colour", "red", key="grants[0].colour", says="Extra inputs are not permitted",
                id="unknown-key"),
        mistake("approval.expires_after", -5, key="approval.expires_after",
                says="must be more than 0 and at most 24h", id="negative-seconds"),
        mistake("approval.expires_after", 1e9, key="approval.expires_after", says="at most 24h",
                id="huge-seconds"),
        mistake("approval.expires_after", 0, key="approval.expires_after", says="more than 0",
                id="zero-seconds"),
        mistake("approval.expires_after", "0s", key="approval.expires_after", says="more than 0",
                id="zero-as-text"),
        mistake("approval.expires_after", "25h", key="approval.expires_after", says="at most 24h",
                id="too-long-as-text"),
        mistake("approval.expires_after", True, key="approval.expires_after", says="write a duration",
                id="boolean"),
        mistake("approval.approvers", {"users": ["U0BOB"]}, "approval.required", 2, key="approval.required",
                says="2 approvals are required but only 1 approver is named", id="more-required-than-users"),
        mistake("approval.approvers", {"users": ["U0BOB", "U0BOB"]}, "approval.required", 2,
                key="approval.required", says="only 1 approver is named", id="a-repeated-user-counts-once"),
        mistake("grants.1.hosts", [], key="grants[1].hosts",
                says='an empty list covers nothing; write ["*"] for every host', id="no-hosts"),
        mistake("grants.1.channels", [], key="grants[1].channels",
                says='an empty list covers nothing; write ["*"] for every channel', id="no-channels"),
        # Strict values: a string or a float is a mistake to fix, not something to coerce.
        mistake("approval.required", "2", key="approval.required",
                says='must be a whole number, not the text "2"', id="required-as-text"),
        mistake("approval.required", 2.0, key="approval.required",
                says="must be a whole number, not the number 2.0", id="required-as-float"),
        mistake("approval.required", True, key="approval.required",
                says="must be a whole number, not true", id="required-as-boolean"),
        mistake("approval.reason_required", "yes", key="approval.reason_required",
                says='must be true or false, not the text "yes"', id="reason-required-as-text"),
        mistake("approval.reason_required", 1, key="approval.reason_required",
                says="must be true or false, not the number 1", id="reason-required-as-number"),
        mistake("grants.0.users", "U0ALICE", key="grants[0].users",
                says='must be a list, such as ["..."], not the text "U0ALICE"', id="users-not-a-list"),
        mistake("grants.0.role", 7, key="grants[0].role", says="must be text in quotes, not the number 7",
                id="role-as-number"),
        mistake("roles.viewer", ["help"], key="roles.viewer", says="must be a table, not a list",
                id="role-not-a-table"),
    ],
)  # fmt: skip
def test_policy_mistakes_name_the_key(changes: tuple[object, ...], key: str, says: str) -> None:
    data = tomllib.loads(SPEC_POLICY)
    for path, value in zip(changes[::2], changes[1::2], strict=True):
        node: object = data
        *parents, last = str(path).split(".")
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]  # type: ignore[index]
        if isinstance(node, list):
            node[int(last)] = value
        else:
            node[last] = value  # type: ignore[index]
    with pytest.raises(PolicyError) as info:
        parse_policy(data, known_commands=KNOWN, source="policy.toml")
    assert str(info.value).startswith(f"policy.toml: {key}: "), str(info.value)
    assert says in str(info.value)


@pytest.mark.parametrize(
    ("key", "says"),
    [
        pytest.param("hosts", 'write ["*"] for every host', id="hosts"),
        pytest.param("channels", 'write ["*"] for every channel', id="channels"),
    ],
)
def test_a_grant_without_hosts_or_channels_is_refused_not_widened(key: str, says: str) -> None:
    """Default deny: a forgotten key is a mistake, never "everywhere"."""
    data = tomllib.loads(SPEC_POLICY)
    del data["grants"][0][key]
    with pytest.raises(PolicyError) as info:
        parse_policy(data, known_commands=KNOWN, source="policy.toml")
    assert str(info.value) == f"policy.toml: grants[0].{key}: is required: " + (
        f"list the {'host globs' if key == 'hosts' else 'channel ids'} this grant covers, or {says}"
    )


def test_the_example_policy_in_deploy_loads() -> None:
    """The file operators copy must pass the same strict checks."""
    path = Path(__file__).parents[2] / "deploy" / "policy.example.toml"
    policy = load_policy(path, known_commands=REGISTRY.policy_names)
    assert all(grant.hosts and grant.channels for grant in policy.grants)


@pytest.mark.parametrize(
    "approval",
    [
        pytest.param({"expires_after": 86400}, id="a-day-in-seconds"),
        pytest.param({"expires_after": "24h"}, id="a-day-as-text"),
        pytest.param({"expires_after": 0.5}, id="half-a-second"),
        pytest.param({"approvers": {"users": ["U0BOB", "U0CAROL"]}, "required": 2}, id="two-of-two-users"),
        pytest.param(
            {"approvers": {"usergroups": ["S0ONCALL"]}, "required": 5}, id="groups-sized-at-run-time"
        ),
    ],
)
def test_sane_approval_rules_load(approval: dict[str, object]) -> None:
    data = tomllib.loads(SPEC_POLICY)
    data["approval"].update(approval)
    parse_policy(data, known_commands=KNOWN)


def test_load_policy_reports_bad_toml(tmp_path: Path) -> None:
    path = tmp_path / "policy.toml"
    path.write_text("[roles.viewer\n")
    with pytest.raises(PolicyError, match="not valid TOML"):
        load_policy(path, known_commands=KNOWN)


def test_the_spec_policy_validates_against_the_real_registry_names() -> None:
    # Until every command is registered, only check the names the registry has.
    names = REGISTRY.policy_names
    assert {"help", "scan.quick", "scan.full", "scan.custom", "scan.default"} <= names
