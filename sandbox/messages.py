"""Messages in a conversation: posting, threading, editing, deleting, reacting, linking."""

from __future__ import annotations

from typing import Any

from sandbox.blockkit import blocks_problem
from sandbox.models import MAX_MESSAGE_BLOCKS, MAX_TEXT, ApiError, Channel, Message
from sandbox.refusals import Refused


def check_text_and_blocks(text: str | None, blocks: Any) -> None:
    """Slack's limits on a message's text and blocks, the blocks checked with slack-sdk's models."""
    if text is not None and len(text) > MAX_TEXT:
        raise Refused("msg_too_long", f"text is {len(text)} characters; the limit is {MAX_TEXT}")
    if blocks is None:
        return
    if not isinstance(blocks, list):
        raise Refused("invalid_blocks", "blocks must be a list [json-pointer:/blocks]")
    if len(blocks) > MAX_MESSAGE_BLOCKS:
        raise Refused(
            "invalid_blocks",
            f"{len(blocks)} blocks; a message may have {MAX_MESSAGE_BLOCKS} [json-pointer:/blocks]",
        )
    problem = blocks_problem(blocks, pointer="/blocks")
    if problem is not None:
        raise Refused("invalid_blocks", problem)


def check_content(text: str | None, blocks: list[dict[str, Any]] | None, *, has_files: bool = False) -> None:
    """Slack's checks on a message body (a message sharing files may have no text)."""
    if not text and not blocks and not has_files:
        raise Refused("no_text", "a message needs text, blocks or files")
    check_text_and_blocks(text, blocks)


class MessageOps:
    """The message half of the sandbox state (SandboxState provides `next_ts` and `base_url`)."""

    base_url: str

    def next_ts(self) -> str:
        raise NotImplementedError

    def post(
        self,
        channel: Channel,
        *,
        user: str,
        text: str | None,
        blocks: list[dict[str, Any]] | None = None,
        thread_ts: str | None = None,
        metadata: dict[str, Any] | None = None,
        bot_id: str | None = None,
        broadcast: bool = False,
        files: list[dict[str, Any]] | None = None,
    ) -> Message:
        if channel.is_archived:
            raise ApiError("is_archived")
        check_content(text, blocks, has_files=bool(files))
        parent = None
        if thread_ts:
            parent = channel.messages.get(thread_ts)
            if parent is None or parent.is_reply:
                raise ApiError("thread_not_found")
        message = Message(
            channel=channel.id,
            ts=self.next_ts(),
            user=user,
            text=text or "",
            bot_id=bot_id,
            blocks=blocks,
            thread_ts=parent.ts if parent else None,
            metadata=metadata,
            subtype="thread_broadcast" if parent and broadcast else None,
            files=files or None,
        )
        channel.messages[message.ts] = message
        if parent is not None:
            parent.replies.append(message.ts)
        return message

    def message(self, channel: Channel, ts: str) -> Message:
        found = channel.messages.get(ts)
        if found is None:
            raise ApiError("message_not_found")
        return found

    def history(self, channel: Channel) -> list[Message]:
        """What conversations.history shows, oldest first."""
        return [m for m in channel.messages.values() if m.in_history]

    def thread(self, channel: Channel, ts: str) -> list[Message]:
        """Parent then replies, oldest first; a reply's ts stands for its whole thread."""
        found = channel.messages.get(ts)
        if found is None:
            raise ApiError("thread_not_found")
        parent = channel.messages[found.thread_ts] if found.thread_ts else found
        return [parent, *(channel.messages[r] for r in parent.replies if r in channel.messages)]

    def update(
        self,
        message: Message,
        *,
        text: str | None,
        blocks: list[dict[str, Any]] | None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        """Replaces what was given and keeps the rest; Slack marks the message edited."""
        if text is None and blocks is None:
            raise ApiError("no_text")
        new_blocks = blocks if blocks is not None else message.blocks
        check_content(text if text is not None else message.text, new_blocks or None)
        if text is not None:
            message.text = text
        if blocks is not None:
            message.blocks = blocks or None
        if metadata is not None:
            message.metadata = metadata
        message.edit_count += 1
        message.edited = {"user": message.user, "ts": self.next_ts()}

    def delete(self, channel: Channel, message: Message) -> None:
        """A parent with replies leaves a tombstone, as in Slack; anything else disappears."""
        if message.replies:
            message.subtype = "tombstone"
            message.text = "This message was deleted."
            message.user = "USLACKBOT"
            message.bot_id = None
            message.blocks = None
            message.metadata = None
            return
        del channel.messages[message.ts]
        if message.thread_ts and message.thread_ts in channel.messages:
            channel.messages[message.thread_ts].replies.remove(message.ts)

    def react(self, channel: Channel, ts: str, user: str, reaction: str, *, remove: bool = False) -> Message:
        message = self.message(channel, ts)
        name = reaction.strip(":")
        users = message.reactions.setdefault(name, [])
        if remove:
            if user in users:
                users.remove(user)
            if not users:
                del message.reactions[name]
        elif user not in users:
            users.append(user)
        return message

    def permalink(self, channel: Channel, message: Message) -> str:
        link = f"{self.base_url}/archives/{channel.id}/p{message.ts.replace('.', '')}"
        if message.thread_ts:
            link += f"?thread_ts={message.thread_ts}&cid={channel.id}"
        return link
