"""`jobs [host]` and `job <id>`: compact, complete, and within Slack's Block Kit limits."""

from __future__ import annotations

from handlers.blocks import BLOCKS_MAX, SECTION_MAX
from handlers.fleet import HostView, JobView, render_hosts, render_job, render_jobs

NOW = 1_800_000_000.0


def view(i: int, **changes: object) -> JobView:
    fields: dict[str, object] = {
        "id": f"j-{i:010x}",
        "host": "host42",
        "text": "scan host42 full",
        "state": "succeeded",
        "requester": "U0ALICE",
        "created_at": NOW - 300,
        "updated_at": NOW - 60,
    }
    fields.update(changes)
    return JobView(**fields)  # type: ignore[arg-type]


def section_texts(blocks: list[dict[str, object]]) -> list[str]:
    return [str(b["text"]["text"]) for b in blocks if b["type"] == "section"]  # type: ignore[index]


def test_one_line_says_who_asked_approved_why_and_links_the_thread() -> None:
    job = view(1, approvers=("U0BOB", "U0CAROL"), reason="ticket IR-77", summary="no threats",
               thread_link="https://ws.slack.com/archives/C0SECOPS/p1")  # fmt: skip
    (line,) = section_texts(render_jobs([job], "host42", now=NOW).blocks)[0].splitlines()[1:]
    assert line == (
        "`j-0000000001` *succeeded* · `scan host42 full` · by <@U0ALICE> · approved by <@U0BOB>, <@U0CAROL>"
        " · 5m ago · _ticket IR-77_ · no threats · <https://ws.slack.com/archives/C0SECOPS/p1|thread>"
    )


def test_a_denied_job_names_who_denied_it() -> None:
    job = view(2, state="denied", denied_by="U0CAROL")
    text = section_texts(render_jobs([job], None, now=NOW).blocks)[0]
    assert "*denied*" in text and "denied by <@U0CAROL>" in text and "approved by" not in text
    detail = render_job(job, now=NOW)
    fields = [f["text"] for b in detail.blocks for f in b.get("fields", [])]
    assert "*Denied by*\n<@U0CAROL>" in fields


def test_twenty_long_jobs_fit_without_a_line_cut_off() -> None:
    long = "x" * 900
    jobs = [
        view(i, text=f"scan host42 custom C:\\{long}", reason=long, summary=long, approvers=("U0BOB",),
             thread_link=f"https://ws.slack.com/archives/C0SECOPS/p{i:016d}")
        for i in range(20)
    ]  # fmt: skip
    blocks = render_jobs(jobs, "host42", now=NOW).blocks
    assert len(blocks) <= BLOCKS_MAX
    texts = section_texts(blocks)
    assert all(len(t) <= SECTION_MAX for t in texts)
    assert all(not t.endswith("…") for t in texts)  # sections are split between lines, never inside one
    lines = [line for t in texts for line in t.splitlines()][1:]
    assert [line.split("`")[1] for line in lines] == [j.id for j in jobs]
    assert all(line.endswith("|thread>") for line in lines)
    assert all(len(line) < 400 for line in lines)  # free text is clipped: the list stays compact


def test_no_jobs() -> None:
    assert render_jobs([], "host42", now=NOW).text == "No jobs on host42"


HOSTILE = "1` <!channel> <https://evil.example|update>"


def test_a_compromised_agent_cannot_post_a_mention_or_link_through_hosts() -> None:
    """Versions and OS come from the agent itself: escaped, backticks stripped, one line each."""
    hostile = HostView(
        host="host42",
        online=True,
        last_seen=NOW,
        agent_version=HOSTILE,
        os=HOSTILE + "\n*bold*",
        platform_version=HOSTILE,
        engine_version="x" * 5000,
        signature_version=HOSTILE,
    )
    rendered = render_hosts([hostile], None, now=NOW)
    text = "\n".join(section_texts(rendered.blocks))
    assert "<!channel>" not in text and "<https://" not in text and "<" not in text.replace("&lt;", "")
    assert "agent `1 &lt;!channel&gt; &lt;https://evil.example|update&gt;`" in text
    assert text.count("`") % 2 == 0  # every code span closes where it should
    (_, versions) = text.splitlines()  # the newline the agent sent does not make a line
    assert len(versions) < 600  # the 5,000-character engine version is cut
    assert all(len(t) <= SECTION_MAX for t in section_texts(rendered.blocks))


def test_hosts_with_nothing_enrolled_shows_the_command_escaped() -> None:
    text = section_texts(render_hosts([], None, now=NOW).blocks)[0]
    assert "`defender-bot enroll &lt;host&gt;`" in text


def test_a_hundred_hosts_are_split_into_sections_not_cut_off() -> None:
    views = [
        HostView(
            host=f"web-{i:03}.corp.example", online=i % 2 == 0, last_seen=NOW - 90, agent_version="0.1.0",
            os="Windows Server 2022", platform_version="4.18.24090.11", engine_version="1.1.24090.11",
            signature_version="1.419.195.0",
        )
        for i in range(120)
    ]  # fmt: skip
    blocks = render_hosts(views, None, now=NOW).blocks
    text = "\n".join(section_texts(blocks))
    assert all(len(t) <= SECTION_MAX for t in section_texts(blocks)) and len(blocks) <= BLOCKS_MAX
    assert all(f"*web-{i:03}.corp.example*" in text for i in range(100))
    assert "…" not in text
    assert "Showing the first 100 hosts" in str(blocks)
