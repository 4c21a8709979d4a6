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

[[grants]]
role = "admin"
users = ["U0BOB"]

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


def test_denials_explain_themselves(policy: Policy) -> None:
    nobody = authorize(policy, Principal("U0NOBODY"), "scan.quick", host="host42", channel="C0SECOPS")
    assert nobody.reason == "no grant lets you run `scan.quick`"
    elsewhere = authorize(policy, Principal("U0ALICE"), "scan.quick", host="host42", channel="C0RANDOM")
    assert "does not cover this channel" in elsewhere.reason


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


@pytest.mark.parametrize(
    ("mutation", "message"),
    [
        pytest.param(
            ("roles.responder.inherits", ["viewr"]), "'viewr', which is not a role", id="bad-inherit"
        ),
        pytest.param(("grants.0.role", "responders"), "'responders' is not a role", id="bad-role"),
        pytest.param(("roles.viewer.commands", ["statuss"]), "did you mean 'status'", id="typo-command"),
        pytest.param(("grants.0.users", ["alice"]), "grants.0.users.0", id="user-name-not-id"),
        pytest.param(("approval.expires_after", "15 minutes"), "not a duration", id="bad-duration"),
        pytest.param(("approval.required", 0), "approval.required", id="zero-required"),
        pytest.param(("roles.viewer.inherits", ["admin"]), "circle", id="cycle"),
        pytest.param(("grants.0.colour", "red"), "grants.0.colour", id="unknown-key"),
    ],
)
def test_policy_mistakes_name_the_key(mutation: tuple[str, object], message: str) -> None:
    data = tomllib.loads(SPEC_POLICY)
    path, value = mutation
    node: object = data
    *parents, last = path.split(".")
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]  # type: ignore[index]
    if isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value  # type: ignore[index]
    with pytest.raises(PolicyError, match=message.replace(".", r"\.").replace("(", r"\(")):
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
