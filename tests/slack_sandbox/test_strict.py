"""The sandbox is as strict as Slack: it stores people's text escaped, refuses Block Kit that slack-sdk's
models refuse, and can lose an answer by dropping the connection after doing the work."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest
from slack_sdk.web.async_client import AsyncWebClient

from sandbox import SandboxServer
from sandbox.blockkit import block_problem
from sandbox.client import SandboxClient, SandboxError
from sandbox.mrkdwn import from_typed, stored_text_problem
from tests.sandbox_fixtures import (
    ALICE,
    BOB,
    TOKEN,
    FakeIngress,
    new_channel,
    slack_error,
    stage_modal,
)

STORED = "Rolled back 1234 &amp; restarted &lt;pods&gt;, see <https://grafana.example/d/abc|dashboard>"


# --- people's text, as Slack stores it --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "stored"),
    [
        ("p99 < 300ms & falling > 2%", "p99 &lt; 300ms &amp; falling &gt; 2%"),
        ("see https://grafana.example/d/abc.", "see <https://grafana.example/d/abc>."),
        ("https://x.example/?a=1&b=2", "<https://x.example/?a=1&amp;b=2>"),
        ("(https://x.example/wiki/A_(b))", "(<https://x.example/wiki/A_(b)>)"),
        ("@here db down, @channel too", "<!here> db down, <!channel> too"),
        ("ask @alice, not @nobody", "ask <@U0ALICE>, not @nobody"),
        ("mail alice@example.com", "mail alice@example.com"),
        ("already &amp; escaped", "already &amp;amp; escaped"),  # a person typed those five characters
    ],
)
def test_typed_text_is_escaped_and_linkified(typed: str, stored: str) -> None:
    assert from_typed(typed, {"alice": ALICE}) == stored
    assert stored_text_problem(stored) is None


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (STORED, None),
        ("<@U0ALICE> and <#C0123456789|ops> and <!here> and <mailto:a@b.example|mail>", None),
        ("<!date^1392734382^{date_num}|2014-02-18>", None),
        ("p99 < 300ms", "bare '<' at offset 4"),
        ("a -> b", "bare '>' at offset 3"),
        ("Rolled back & restarted", "'&' at offset 12 is not escaped"),
        ("&amp;lt; is fine, &nbsp; is not", "'&' at offset 18 is not escaped"),
        ("restarted <pods>", "'<pods>' at offset 10 is not a link or mention"),
    ],
)
def test_stored_text_must_be_well_formed(text: str, problem: str | None) -> None:
    found = stored_text_problem(text)
    assert found == problem if problem is None else (found or "").startswith(problem)


async def test_typed_message_is_stored_delivered_and_read_back_escaped(
    slack: AsyncWebClient, control: SandboxClient, ingress: FakeIngress
) -> None:
    cid = await new_channel(slack)
    await control.add_user(ALICE, name="alice")
    typed = "p99 < 300ms & falling, https://grafana.example/d/xyz cc @alice @here"
    stored = "p99 &lt; 300ms &amp; falling, <https://grafana.example/d/xyz> cc <@U0ALICE> <!here>"
    said = await control.message(BOB, cid, typed, deliver_event=True)
    assert said["message"]["text"] == stored
    assert ingress.received[-1].json["event"]["text"] == stored
    history = (await slack.conversations_history(channel=cid))["messages"]
    assert [m["text"] for m in history] == [stored]
    reply = await control.message(BOB, cid, STORED, thread_ts=said["ts"], formatted=True, deliver_event=True)
    assert reply["message"]["text"] == STORED and ingress.received[-1].json["event"]["text"] == STORED
    thread = (await slack.conversations_replies(channel=cid, ts=said["ts"]))["messages"]
    assert [m["text"] for m in thread] == [stored, STORED]


async def test_malformed_stored_text_is_refused_and_bot_text_is_kept_as_sent(
    slack: AsyncWebClient, control: SandboxClient
) -> None:
    cid = await new_channel(slack)
    with pytest.raises(SandboxError) as caught:
        await control.message(ALICE, cid, "Rolled back & restarted <pods>", formatted=True)
    assert caught.value.status == 400 and caught.value.error == "invalid_formatted_text"
    assert "bare" in caught.value.body["detail"] or "not a link" in caught.value.body["detail"]
    assert await control.messages(cid) == []
    # Apps escape their own text: Slack stores what the bot sent, untouched.
    posted = await slack.chat_postMessage(channel=cid, text="a & b <https://x.example|x> < c")
    assert posted["message"]["text"] == "a & b <https://x.example|x> < c"


# --- Block Kit, checked with slack-sdk's models ------------------------------------------------------------

GOOD_BLOCKS: list[dict[str, Any]] = [
    {"type": "header", "text": {"type": "plain_text", "text": "INC-7 · db down"}},
    {"type": "section", "text": {"type": "mrkdwn", "text": "*Overview* <https://x.example|link>"}},
    {
        "type": "section",
        "fields": [{"type": "mrkdwn", "text": "*Severity*\nSEV2"}, {"type": "plain_text", "text": "Open"}],
    },
    {"type": "context", "elements": [{"type": "mrkdwn", "text": "Declared by <@U0ALICE>"}]},
    {"type": "divider"},
    {
        "type": "actions",
        "elements": [
            {
                "type": "button",
                "text": {"type": "plain_text", "text": "Acknowledge"},
                "action_id": "ack",
                "value": "7",
                "style": "primary",
            }
        ],
    },
]


def test_slack_sdk_accepts_known_good_blocks_and_a_modal() -> None:
    assert [block_problem(b) for b in GOOD_BLOCKS] == [None] * len(GOOD_BLOCKS)
    assert [block_problem(b) for b in stage_modal()["blocks"]] == [None, None, None]


@pytest.mark.parametrize(
    ("block", "problem"),
    [
        ({"type": "section"}, "section: text or fields attribute must be specified"),
        ({"type": "section", "text": {"type": "mrkdwn", "text": "x" * 3001}}, "cannot exceed 3000"),
        ({"type": "header", "text": {"type": "plain_text", "text": "x" * 151}}, "cannot exceed 150"),
        ({"type": "bogus"}, "unsupported block type: bogus"),
        ({"type": "actions", "elements": [{"type": "bogus"}]}, "an element of an unsupported type"),
        (
            {"type": "section", "text": {"type": "mrkdwn", "text": "x"}, "accessory": {"type": "bogus"}},
            "unsupported accessory type: bogus",
        ),
        (  # nested: only to_dict() sees a button's text over 75 characters
            {
                "type": "actions",
                "elements": [
                    {"type": "button", "text": {"type": "plain_text", "text": "x" * 76}, "action_id": "a"}
                ],
            },
            "cannot exceed 75",
        ),
        ("a string", "missing required field: type"),
    ],
)
def test_slack_sdk_refuses_bad_blocks(block: Any, problem: str) -> None:
    assert problem in (block_problem(block) or "")


@pytest.mark.slack_refusals_expected("invalid_blocks", "msg_too_long")
async def test_messages_with_bad_blocks_or_long_text_are_refused_like_slack(
    slack: AsyncWebClient, sb: SandboxServer
) -> None:
    cid = await new_channel(slack)
    posted = await slack.chat_postMessage(channel=cid, text="overview", blocks=GOOD_BLOCKS)
    assert posted["message"]["blocks"] == GOOD_BLOCKS
    bad = [*GOOD_BLOCKS[:2], {"type": "section", "text": {"type": "mrkdwn", "text": "x" * 3001}}]
    for call in [
        slack.chat_postMessage(channel=cid, text="t", blocks=bad),
        slack.chat_update(channel=cid, ts=posted["ts"], text="t", blocks=bad),
        slack.chat_postEphemeral(channel=cid, user=ALICE, text="t", blocks=bad),
    ]:
        err = await slack_error(call)
        assert err.response["error"] == "invalid_blocks"
        [message] = err.response["response_metadata"]["messages"]
        assert "cannot exceed 3000" in message and message.endswith("[json-pointer:/blocks/2]")
    err = await slack_error(slack.chat_postMessage(channel=cid, text="t", blocks=[{"type": "divider"}] * 51))
    assert err.response["error"] == "invalid_blocks"
    err = await slack_error(slack.chat_postMessage(channel=cid, text="x" * 40_001))
    assert err.response["error"] == "msg_too_long"
    assert [(r.method, r.error) for r in sb.state.refusals] == [
        ("chat.postMessage", "invalid_blocks"),
        ("chat.update", "invalid_blocks"),
        ("chat.postEphemeral", "invalid_blocks"),
        ("chat.postMessage", "invalid_blocks"),
        ("chat.postMessage", "msg_too_long"),
    ]
    assert (await slack.conversations_history(channel=cid))["messages"][0]["blocks"] == GOOD_BLOCKS


async def test_views_with_blocks_slack_sdk_refuses_are_invalid_arguments(
    slack: AsyncWebClient, sb: SandboxServer
) -> None:
    sb.state.expect_refusals("invalid_arguments")
    opened = await slack.views_open(trigger_id=sb.state.issue_trigger(ALICE), view=stage_modal())
    bad_block = {**stage_modal(), "blocks": [{"type": "actions", "elements": [{"type": "bogus"}]}]}
    err = await slack_error(slack.views_open(trigger_id=sb.state.issue_trigger(ALICE), view=bad_block))
    assert err.response["error"] == "invalid_arguments"
    assert err.response["response_metadata"]["messages"][0].endswith("[json-pointer:/view/blocks/0]")
    too_many = {**stage_modal(), "blocks": [{"type": "divider"}] * 101}
    err = await slack_error(slack.views_update(view_id=opened["view"]["id"], view=too_many))
    assert err.response["error"] == "invalid_arguments"
    err = await slack_error(slack.views_push(trigger_id=sb.state.issue_trigger(ALICE), view=bad_block))
    assert err.response["error"] == "invalid_arguments"
    assert [r.method for r in sb.state.refusals] == ["views.open", "views.update", "views.push"]


async def test_response_url_ack_and_response_action_refusals(
    sb: SandboxServer, slack: AsyncWebClient, control: SandboxClient, ingress: FakeIngress
) -> None:
    sb.state.expect_refusals("invalid_blocks", "invalid_arguments")
    cid = await new_channel(slack)
    bad_blocks = [{"type": "section"}]
    ingress.replies.append((200, {"text": "Declaring…", "blocks": bad_blocks}))
    result = await control.command(ALICE, cid, "new db down")
    [ack] = await control.ephemerals(ALICE)
    assert ack["source"] == "command_ack" and ack["error"] == "invalid_blocks"
    assert "didn't work" in ack["text"] and ack["blocks"] is None
    async with aiohttp.ClientSession() as http:
        refused = await http.post(result["response_url"], json={"text": "x", "blocks": bad_blocks})
        assert refused.status == 400 and (await refused.json())["error"] == "invalid_blocks"
        fine = await http.post(result["response_url"], json={"text": "INC-1", "blocks": GOOD_BLOCKS[:2]})
        assert fine.status == 200
    assert [e["text"] for e in await control.ephemerals(ALICE)][1:] == ["INC-1"]

    view_id = (await slack.views_open(trigger_id=sb.state.issue_trigger(ALICE), view=stage_modal()))["view"]
    update = {"response_action": "update", "view": {**stage_modal(), "blocks": bad_blocks}}
    ingress.replies.append((200, update))
    values = {"context": {"value": {"type": "plain_text_input", "value": "x"}}}
    submitted = await control.submit_view(view_id["id"], values)
    assert submitted["response_error"] == "invalid_arguments" and submitted["view_closed"] is False
    assert [(r.method, r.error) for r in sb.state.refusals] == [
        ("command_ack", "invalid_blocks"),
        ("response_url", "invalid_blocks"),
        ("view_submission", "invalid_arguments"),
    ]
    assert all(r.expected for r in sb.state.refusals)


# --- a lost answer: the call is done, then the connection drops ---------------------------------------


async def test_a_dropped_connection_loses_the_answer_after_the_post(sb: SandboxServer) -> None:
    plain = AsyncWebClient(token=TOKEN, base_url=sb.api_url, retry_handlers=[])
    cid = await new_channel(plain)
    sb.state.add_fault("chat.postMessage", drop=True)
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await plain.chat_postMessage(channel=cid, text="Rolled back")
    assert [m["text"] for m in (await plain.conversations_history(channel=cid))["messages"]] == [
        "Rolled back"
    ]
    [call] = sb.state.calls_for("chat.postMessage")
    assert (call.status, call.error) == (0, "connection_dropped")


async def test_slack_sdk_default_retries_post_a_dropped_call_twice(
    sb: SandboxServer, control: SandboxClient
) -> None:
    # Why warroom builds its client with explicit retry handlers: the SDK's default connection-error retry
    # repeats a non-idempotent post whose answer was lost.
    default = AsyncWebClient(token=TOKEN, base_url=sb.api_url)
    cid = await new_channel(default)
    fault = await control.fault("chat.postMessage", drop=True)
    assert fault["fault"]["drop"] is True
    await default.chat_postMessage(channel=cid, text="Rolled back")
    history = (await default.conversations_history(channel=cid))["messages"]
    assert [m["text"] for m in history] == ["Rolled back", "Rolled back"]
    assert [(c.status, c.error) for c in sb.state.calls_for("chat.postMessage")] == [
        (0, "connection_dropped"),
        (200, None),
    ]


async def test_a_drop_fault_answers_nothing_else(control: SandboxClient, sb: SandboxServer) -> None:
    with pytest.raises(SandboxError) as caught:
        await control.fault("chat.postMessage", drop=True, status=500)
    assert caught.value.status == 400 and "drop" in caught.value.body["detail"]
    with pytest.raises(ValueError, match="drop"):
        sb.state.add_fault("chat.postMessage", drop=True, after_effect=True)
    assert sb.state.faults == []


# --- slash commands with should_escape: true (manifest.yml) ----------------------------------------------


async def test_a_slash_command_arrives_with_people_and_channels_escaped(
    sb: SandboxServer, ingress: FakeIngress, control: SandboxClient
) -> None:
    sb.state.add_user(ALICE, name="alice")
    sb.state.add_user(BOB, name="bob")
    ops = sb.state.create_human_channel("ops", members=[ALICE]).id
    secret = sb.state.create_human_channel("secret", is_private=True, members=[BOB]).id
    typed = (
        "commander @alice cc @Bob, @here @channel @everyone in #ops and #secret; "
        "not @nobody #nowhere alice@example.com issue#12 <@U0CAROL|carol> <#C0OLD>"
    )
    await control.command(ALICE, ops, typed)
    assert ingress.received[-1].form["text"] == (
        f"commander <@{ALICE}|alice> cc <@{BOB}|bob>, <!here> <!channel> <!everyone> in <#{ops}|ops> and "
        "#secret; not @nobody #nowhere alice@example.com issue#12 <@U0CAROL|carol> <#C0OLD>"
    )  # #secret: a private channel Alice is not in
    await control.command(BOB, ops, "broadcast add #secret")
    assert ingress.received[-1].form["text"] == f"broadcast add <#{secret}|secret>"
    sb.platform.should_escape = False  # a command without escaping gets the text as typed
    await control.command(ALICE, ops, "commander @alice")
    assert ingress.received[-1].form["text"] == "commander @alice"
