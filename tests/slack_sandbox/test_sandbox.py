"""The Slack sandbox, driven by the real slack_sdk client and by an ingress that checks signatures."""

from __future__ import annotations

import json
import re
from typing import Any

import aiohttp
import pytest
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient

from sandbox import BOT_USER_ID, SandboxServer
from sandbox.client import SandboxClient, SandboxError
from sandbox.signing import signature, signed_headers, verify
from tests.sandbox_fixtures import (
    ALICE,
    BOB,
    SECRET,
    TOKEN,
    FakeIngress,
    new_channel,
    slack_error,
    stage_modal,
)

# --- Web API ----------------------------------------------------------------------------------------------


async def test_auth_test_names_the_bot(slack: AsyncWebClient, sb: SandboxServer) -> None:
    data = (await slack.auth_test()).validate().data
    assert isinstance(data, dict)
    assert (data["user_id"], data["bot_id"], data["team_id"]) == (BOT_USER_ID, "BWARROOM", "T0SANDBOX")
    assert data["url"] == sb.url + "/"


async def test_create_channel_and_name_rules(slack: AsyncWebClient) -> None:
    channel = (await slack.conversations_create(name="inc-7-api_errors", is_private=True))["channel"]
    assert re.fullmatch(r"C[0-9A-Z]{10}", channel["id"])
    assert channel["creator"] == BOT_USER_ID and channel["is_member"] and channel["is_private"]
    assert isinstance(channel["created"], int) and channel["num_members"] == 1
    assert set(channel["purpose"]) == {"value", "creator", "last_set"}
    for name, error in [
        ("inc-7-api_errors", "name_taken"),
        ("", "invalid_name_required"),
        ("x" * 81, "invalid_name_maxlength"),
        ("Inc-8", "invalid_name_specials"),
        ("inc 8", "invalid_name_specials"),
        ("inc.8", "invalid_name_specials"),
    ]:
        assert (await slack_error(slack.conversations_create(name=name))).response["error"] == error
    await slack.conversations_create(name="x" * 80)
    second = await new_channel(slack, "inc-9")
    await slack.conversations_archive(channel=second)
    err = await slack_error(slack.conversations_create(name="inc-9"))
    assert err.response["error"] == "name_taken"  # archived channels keep their name
    renamed = await slack.conversations_rename(channel=second, name="inc-9-resolved")
    assert renamed["channel"]["name"] == "inc-9-resolved"


@pytest.mark.filterwarnings("ignore:The top-level `text` argument is missing")
async def test_post_thread_edit_permalink_and_history(slack: AsyncWebClient, sb: SandboxServer) -> None:
    cid = await new_channel(slack)
    meta = {"event_type": "warroom_post", "event_payload": {"key": "k1"}}
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "*Overview*"}}]
    parent = await slack.chat_postMessage(channel=cid, text="overview", blocks=blocks, metadata=meta)
    assert parent["channel"] == cid and parent["message"]["bot_id"] == "BWARROOM"
    reply = await slack.chat_postMessage(channel=cid, text="update 1", thread_ts=parent["ts"])
    reply2 = await slack.chat_postMessage(channel=cid, text="update 2", thread_ts=parent["ts"])
    assert float(parent["ts"]) < float(reply["ts"]) < float(reply2["ts"])
    edited = await slack.chat_update(channel=cid, ts=parent["ts"], text="overview v2")
    assert edited["message"]["edited"]["user"] == BOT_USER_ID

    history = (await slack.conversations_history(channel=cid, include_all_metadata=True))["messages"]
    assert [m["ts"] for m in history] == [parent["ts"]]  # replies stay in the thread
    top = history[0]
    assert top["text"] == "overview v2" and top["blocks"] == blocks and top["metadata"] == meta
    assert top["reply_count"] == 2 and top["thread_ts"] == parent["ts"] and "edited" in top
    plain = (await slack.conversations_history(channel=cid))["messages"][0]
    assert "metadata" not in plain

    thread = (await slack.conversations_replies(channel=cid, ts=parent["ts"]))["messages"]
    assert [m["text"] for m in thread] == ["overview v2", "update 1", "update 2"]
    assert all(m["thread_ts"] == parent["ts"] for m in thread)
    window = await slack.conversations_history(
        channel=cid, latest=parent["ts"], oldest=parent["ts"], inclusive=True, limit=1
    )
    assert [m["ts"] for m in window["messages"]] == [parent["ts"]]

    link = (await slack.chat_getPermalink(channel=cid, message_ts=parent["ts"]))["permalink"]
    assert link == f"{sb.url}/archives/{cid}/p{parent['ts'].replace('.', '')}"
    link = (await slack.chat_getPermalink(channel=cid, message_ts=reply["ts"]))["permalink"]
    assert link.endswith(f"?thread_ts={parent['ts']}&cid={cid}")

    sb.state.expect_refusals("no_text", "msg_too_long")

    for call, error in [
        (slack.chat_postMessage(channel=cid, text="x", thread_ts=reply["ts"]), "thread_not_found"),
        (slack.chat_postMessage(channel=cid, text="x", thread_ts="1.000001"), "thread_not_found"),
        (slack.chat_postMessage(channel=cid, text=""), "no_text"),
        (slack.chat_postMessage(channel=cid, text="x" * 40_001), "msg_too_long"),
        (slack.chat_postMessage(channel="C9999999999", text="x"), "channel_not_found"),
        (slack.chat_update(channel=cid, ts="1.000001", text="x"), "message_not_found"),
        (slack.chat_getPermalink(channel=cid, message_ts="1.000001"), "message_not_found"),
    ]:
        assert (await slack_error(call)).response["error"] == error
    await slack.chat_delete(channel=cid, ts=reply2["ts"])
    messages = sb.state.channel_messages(sb.state.channel(cid))
    assert [r["text"] for r in messages[0]["replies"]] == ["update 1"]
    assert messages[0]["edit_count"] == 1
    await slack.conversations_archive(channel=cid)
    assert (await slack_error(slack.chat_postMessage(channel=cid, text="x"))).response[
        "error"
    ] == "is_archived"


async def test_timestamps_unique_and_increasing(slack: AsyncWebClient) -> None:
    cid = await new_channel(slack)
    stamps = [(await slack.chat_postMessage(channel=cid, text=str(i)))["ts"] for i in range(30)]
    assert all(re.fullmatch(r"\d{10}\.\d{6}", ts) for ts in stamps)
    assert [float(ts) for ts in stamps] == sorted({float(ts) for ts in stamps})


async def test_dm_by_user_id(slack: AsyncWebClient, sb: SandboxServer) -> None:
    posted = await slack.chat_postMessage(channel=ALICE, text="you were paged")
    assert posted["channel"].startswith("D")
    opened = await slack.conversations_open(users=ALICE)
    assert opened["channel"]["id"] == posted["channel"] and opened["already_open"]
    again = await slack.chat_postMessage(channel=ALICE, text="second")
    assert again["channel"] == posted["channel"]
    history = await slack.conversations_history(channel=posted["channel"])
    assert [m["text"] for m in history["messages"]] == ["second", "you were paged"]
    assert sb.state.snapshot()["dms"] == {ALICE: posted["channel"]}


async def test_invite_members_and_users(slack: AsyncWebClient, sb: SandboxServer) -> None:
    cid = await new_channel(slack)
    await slack.conversations_invite(channel=cid, users=[ALICE, BOB])
    assert (await slack.conversations_members(channel=cid))["members"] == [BOT_USER_ID, ALICE, BOB]
    for users, error in [
        ([ALICE, BOB], "already_in_channel"),
        ([BOT_USER_ID], "cant_invite_self"),
        (["not-a-user"], "user_not_found"),
    ]:
        assert (await slack_error(slack.conversations_invite(channel=cid, users=users))).response[
            "error"
        ] == error
    await slack.conversations_invite(channel=cid, users=f"{ALICE},U0CAROL")  # one new user is enough

    sb.state.add_user(ALICE, name="alice", tz="Europe/Paris")
    user = (await slack.users_info(user=ALICE))["user"]
    assert (user["name"], user["tz"]) == ("alice", "Europe/Paris") and user["tz_offset"] in (3600, 7200)
    assert (await slack.users_info(user=BOB))["user"]["tz"] == "UTC"

    purpose = await slack.conversations_setPurpose(channel=cid, purpose="SEV2 · investigating")
    assert purpose["channel"]["purpose"]["value"] == "SEV2 · investigating"
    err = await slack_error(slack.conversations_setPurpose(channel=cid, purpose="p" * 251))
    assert err.response["error"] == "too_long"
    await slack.conversations_setTopic(channel=cid, topic="db down")
    assert (await slack.conversations_info(channel=cid))["channel"]["topic"]["value"] == "db down"


async def test_list_paginates_with_cursor(slack: AsyncWebClient, control: SandboxClient) -> None:
    names = {f"inc-{i}" for i in range(5)}
    for name in sorted(names):
        await new_channel(slack, name)
    await control.create_channel("secret", members=[ALICE], is_private=True)  # the bot is not in it
    seen: list[str] = []
    cursor, pages = "", 0
    while pages < 10:
        page = await slack.conversations_list(types="public_channel,private_channel", limit=2, cursor=cursor)
        seen += [c["name"] for c in page["channels"]]
        cursor, pages = page["response_metadata"]["next_cursor"], pages + 1
        if not cursor:
            break
    assert sorted(seen) == sorted(names) and pages == 3
    err = await slack_error(slack.conversations_list(cursor="bogus"))
    assert err.response["error"] == "invalid_cursor"


async def test_auth_failures(sb: SandboxServer) -> None:
    err = await slack_error(AsyncWebClient(token="xoxb-wrong", base_url=sb.api_url).auth_test())
    assert err.response.status_code == 200 and err.response["error"] == "invalid_auth"
    err = await slack_error(AsyncWebClient(base_url=sb.api_url).auth_test())
    assert err.response["error"] == "not_authed"
    err = await slack_error(AsyncWebClient(token=TOKEN, base_url=sb.api_url).api_call("nope.nope"))
    assert err.response["error"] == "unknown_method"
    err = await slack_error(AsyncWebClient(token=TOKEN, base_url=sb.api_url).conversations_info(channel=""))
    assert err.response["error"] == "invalid_arguments"


async def test_form_json_and_get_bodies(sb: SandboxServer) -> None:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    blocks = [{"type": "divider"}]
    async with aiohttp.ClientSession(headers=headers) as http:
        created = await (await http.post(sb.api_url + "conversations.create", data={"name": "c1"})).json()
        cid = created["channel"]["id"]
        form = {"channel": cid, "text": "t", "blocks": json.dumps(blocks)}
        posted = await (await http.post(sb.api_url + "chat.postMessage", data=form)).json()
        assert posted["ok"] and posted["message"]["blocks"] == blocks
        sb.state.expect_refusals("invalid_blocks")
        bad = await (await http.post(sb.api_url + "chat.postMessage", data={**form, "blocks": "[{"})).json()
        assert bad["ok"] is False and bad["error"] == "invalid_blocks"
        assert bad["response_metadata"]["messages"] == [
            "[ERROR] blocks is not valid JSON [json-pointer:/blocks]"
        ]
        got = await (await http.get(sb.api_url + "conversations.info", params={"channel": cid})).json()
        assert got["channel"]["name"] == "c1"


async def test_injected_faults(slack: AsyncWebClient, sb: SandboxServer, control: SandboxClient) -> None:
    cid = await new_channel(slack)
    await control.fault("chat.postMessage", status=429, retry_after=2)
    err = await slack_error(slack.chat_postMessage(channel=cid, text="x"))
    assert err.response.status_code == 429 and err.response.headers["Retry-After"] == "2"
    assert err.response["error"] == "ratelimited"
    await slack.chat_postMessage(channel=cid, text="x")  # count defaults to 1

    await control.fault("chat.update", status=500, count=-1)
    ts = (await slack.chat_postMessage(channel=cid, text="x"))["ts"]
    for _ in range(3):
        assert (
            await slack_error(slack.chat_update(channel=cid, ts=ts, text="y"))
        ).response.status_code == 500
    await control.clear_faults()
    await slack.chat_update(channel=cid, ts=ts, text="y")

    sb.state.add_fault("conversations.invite", error="missing_scope", count=2)
    for _ in range(2):
        err = await slack_error(slack.conversations_invite(channel=cid, users=ALICE))
        assert err.response.status_code == 200 and err.response["error"] == "missing_scope"
    await slack.conversations_invite(channel=cid, users=ALICE)

    posts = sb.state.calls_for("chat.postMessage")
    assert [c.status for c in posts] == [429, 200, 200] and posts[0].error == "ratelimited"
    assert (await control.state())["calls"]["chat.update"] == 4


async def test_per_channel_rate_limit() -> None:
    async with SandboxServer(TOKEN, SECRET, rate_limit_per_channel=True) as sb:
        slack = AsyncWebClient(token=TOKEN, base_url=sb.api_url)
        first, second = await new_channel(slack, "a"), await new_channel(slack, "b")
        await slack.chat_postMessage(channel=first, text="1")
        err = await slack_error(slack.chat_postMessage(channel=first, text="2"))
        assert err.response.status_code == 429 and err.response.headers["Retry-After"] == "1"
        await slack.chat_postMessage(channel=second, text="other channels are unaffected")


async def test_bookmarks(slack: AsyncWebClient) -> None:
    cid = await new_channel(slack)
    added = await slack.bookmarks_add(channel_id=cid, title="Runbook", type="link", link="https://r.example")
    bookmark_id = added["bookmark"]["id"]
    await slack.bookmarks_edit(channel_id=cid, bookmark_id=bookmark_id, title="Runbook v2")
    listed = (await slack.bookmarks_list(channel_id=cid))["bookmarks"]
    assert [(b["title"], b["link"]) for b in listed] == [("Runbook v2", "https://r.example")]
    await slack.bookmarks_remove(channel_id=cid, bookmark_id=bookmark_id)
    assert (await slack.bookmarks_list(channel_id=cid))["bookmarks"] == []


# --- control API and the platform side --------------------------------------------------------------------


async def test_humans_and_inspection(slack: AsyncWebClient, control: SandboxClient) -> None:
    status = await control.create_channel("status", members=[ALICE, BOT_USER_ID])
    found = await control.channel_by_name("#status")
    assert found is not None and found["id"] == status["id"] and found["members"] == [ALICE, BOT_USER_ID]
    said = await control.message(ALICE, status["id"], "is the API down?")
    await slack.chat_postMessage(channel=status["id"], text="looking", thread_ts=said["ts"])
    messages = await control.messages(status["id"])
    assert [(m["user"], m["text"]) for m in messages] == [(ALICE, "is the API down?")]
    assert [r["text"] for r in messages[0]["replies"]] == ["looking"]
    await control.add_user(BOB, name="bob", tz="Asia/Tokyo")
    assert (await slack.users_info(user=BOB))["user"]["tz_offset"] == 9 * 3600
    with pytest.raises(SandboxError) as caught:
        await control.messages("C9999999999")
    assert caught.value.status == 404 and caught.value.error == "channel_not_found"
    await control.reset()
    assert await control.channel_by_name("status") is None


async def test_slash_command_is_signed_and_shaped(
    sb: SandboxServer, ingress: FakeIngress, slack: AsyncWebClient, control: SandboxClient
) -> None:
    cid = await new_channel(slack, "ops")
    await control.add_user(ALICE, name="alice")
    ingress.replies.append((200, {"text": "Declaring…"}))
    result = await control.command(ALICE, cid, "new DB is down", "/incident")
    assert result["status"] == 200 and result["body"] == {"text": "Declaring…"}
    request = ingress.received[-1]
    assert request.signature_ok and request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert SignatureVerifier(SECRET).is_valid_request(request.body, request.headers)
    form = request.form
    assert form["command"] == "/incident" and form["text"] == "new DB is down"
    assert (form["user_id"], form["user_name"], form["channel_name"]) == (ALICE, "alice", "ops")
    assert form["team_id"] == "T0SANDBOX" and form["is_enterprise_install"] == "false" and form["token"]
    assert form["trigger_id"] == result["trigger_id"] and form["response_url"] == result["response_url"]
    assert form["response_url"].startswith(sb.url + "/_sandbox/respond/")

    async with aiohttp.ClientSession() as http:
        later = {"response_type": "ephemeral", "text": "INC-1 declared"}
        assert (await http.post(form["response_url"], json=later)).status == 200
    assert [e["text"] for e in await control.ephemerals(ALICE)] == ["Declaring…", "INC-1 declared"]
    await slack.chat_postEphemeral(channel=cid, user=ALICE, text="only you")
    assert [e["source"] for e in await control.ephemerals(ALICE)][-1] == "chat.postEphemeral"

    view = {
        "type": "modal",
        "callback_id": "declare",
        "title": {"type": "plain_text", "text": "Declare"},
        "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "hi"}}],
    }
    opened = await slack.views_open(trigger_id=result["trigger_id"], view=view)
    assert opened["view"]["id"].startswith("V") and opened["view"]["callback_id"] == "declare"
    for trigger, error in [(result["trigger_id"], "exchanged_trigger_id"), ("1.2.3", "invalid_trigger_id")]:
        assert (await slack_error(slack.views_open(trigger_id=trigger, view=view))).response["error"] == error
    sb.state.expect_refusals("invalid_arguments")
    long_title = {**view, "title": {"type": "plain_text", "text": "x" * 25}}
    trigger = sb.state.issue_trigger(ALICE)
    err = await slack_error(slack.views_open(trigger_id=trigger, view=long_title))
    assert err.response["error"] == "invalid_arguments"

    await control.command(ALICE, "D0000000404", "help")
    assert ingress.received[-1].form["channel_name"] == "directmessage"


async def test_reaction_event_and_retries(
    slack: AsyncWebClient, ingress: FakeIngress, control: SandboxClient
) -> None:
    cid = await new_channel(slack)
    ts = (await slack.chat_postMessage(channel=cid, text="root cause found"))["ts"]
    result = await control.react(ALICE, cid, ts, ":mega:", repeat=2)
    assert result["statuses"] == [200, 200, 200] and result["event_id"].startswith("Ev")
    bodies = [r.body for r in ingress.received]
    assert len(bodies) == 3 and len(set(bodies)) == 1 and all(r.signature_ok for r in ingress.received)
    assert "X-Slack-Retry-Num" not in ingress.received[0].headers
    assert [r.headers.get("X-Slack-Retry-Num") for r in ingress.received[1:]] == ["1", "2"]
    assert ingress.received[1].headers["X-Slack-Retry-Reason"] == "http_timeout"
    envelope = ingress.received[0].json
    assert envelope["type"] == "event_callback" and envelope["event_id"] == result["event_id"]
    assert envelope["authorizations"][0]["user_id"] == BOT_USER_ID
    event = envelope["event"]
    assert (event["type"], event["user"], event["reaction"]) == ("reaction_added", ALICE, "mega")
    assert event["item"] == {"type": "message", "channel": cid, "ts": ts}
    assert event["item_user"] == BOT_USER_ID
    message = (await slack.conversations_history(channel=cid))["messages"][0]
    assert message["reactions"] == [{"name": "mega", "users": [ALICE], "count": 1}]

    second = await control.react(BOB, cid, ts, "pushpin")
    assert second["event_id"] != result["event_id"]
    outside = await control.create_channel("random", members=[ALICE])
    said = await control.message(ALICE, outside["id"], "hello")
    quiet = await control.react(BOB, outside["id"], said["ts"], "mega")
    assert quiet["delivered"] is False and len(ingress.received) == 4  # the bot is not in #random


async def test_view_submission_payload_and_response_actions(
    sb: SandboxServer, slack: AsyncWebClient, ingress: FakeIngress, control: SandboxClient
) -> None:
    cid = await new_channel(slack)
    view = stage_modal()
    trigger = (await control.command(ALICE, cid, "stage"))["trigger_id"]
    view_id = (await slack.views_open(trigger_id=trigger, view=view))["view"]["id"]
    with pytest.raises(SandboxError) as caught:  # a required input left empty cannot be submitted
        await control.submit_view(
            view_id, {"stage": {"value": {"type": "static_select", "selected_option": None}}}
        )
    assert caught.value.error == "required_field_missing"

    ingress.replies.append((200, {"response_action": "errors", "errors": {"context": "Say what changed"}}))
    values: dict[str, Any] = {"context": {"value": {"type": "plain_text_input", "value": "x"}}}
    first = await control.submit_view(view_id, values, user_id=ALICE)
    assert first["response_action"] == "errors" and first["view_closed"] is False

    values = {
        "context": {"value": {"type": "plain_text_input", "value": "rolled back"}},
        "broadcast": {"value": {"type": "multi_conversations_select", "selected_conversations": [cid]}},
    }
    done = await control.submit_view(view_id, values, user_id=ALICE)
    assert done["status"] == 200 and done["view_closed"] is True
    request = ingress.received[-1]
    assert request.signature_ok and request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    payload = request.payload
    assert payload["type"] == "view_submission" and payload["user"]["id"] == ALICE
    assert payload["team"]["id"] == "T0SANDBOX" and payload["trigger_id"] == done["trigger_id"]
    submitted = payload["view"]
    assert submitted["id"] == view_id and submitted["callback_id"] == "stage_change"
    assert json.loads(submitted["private_metadata"]) == {"incident": 7}
    state_values = submitted["state"]["values"]
    assert state_values["stage"]["value"]["selected_option"]["value"] == "investigating"  # initial value
    assert state_values["context"]["value"] == {"type": "plain_text_input", "value": "rolled back"}
    assert state_values["broadcast"]["value"]["selected_conversations"] == [cid]
    with pytest.raises(SandboxError) as caught:
        await control.submit_view(view_id, values)
    assert caught.value.error == "view_closed"
    snapshot = await control.state()
    assert [(v["id"], v["closed"]) for v in snapshot["views"]] == [(view_id, True)]
    assert [d["kind"] for d in snapshot["deliveries"]] == ["command", "view_submission", "view_submission"]


async def test_platform_needs_an_ingress(sb: SandboxServer, control: SandboxClient) -> None:
    sb.ingress_url = None
    with pytest.raises(SandboxError) as caught:
        await control.command(ALICE, "C1", "help")
    assert caught.value.status == 409 and caught.value.error == "no_ingress_url"


def test_signing_matches_slack_sdk() -> None:
    body = b"token=x&team_id=T1&text=hello%20world"
    headers = signed_headers(SECRET, body, timestamp=1_700_000_000)
    assert headers["X-Slack-Signature"] == signature(SECRET, "1700000000", body)
    assert headers["X-Slack-Signature"].startswith("v0=") and len(headers["X-Slack-Signature"]) == 67
    verifier = SignatureVerifier(SECRET, clock=type("Clock", (), {"now": lambda self: 1_700_000_010})())
    assert verifier.is_valid(body, "1700000000", headers["X-Slack-Signature"])
    assert not verifier.is_valid(body + b"x", "1700000000", headers["X-Slack-Signature"])
    assert verify(SECRET, "1700000000", body, headers["X-Slack-Signature"], now=1_700_000_010)
    assert not verify(SECRET, "1700000000", body, headers["X-Slack-Signature"], now=1_700_001_000)
    assert signed_headers(SECRET, body)["Content-Type"] == "application/x-www-form-urlencoded"
