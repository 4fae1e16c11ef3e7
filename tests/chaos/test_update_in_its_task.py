"""A status update is posted by a local activity inside its own workflow task (patch
update-posted-in-its-task). A worker SIGKILLed while that post is with Slack leaves a task that never
completed: the next worker runs the update again from the start, and must find the post rather than make it
a second time.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from domain.models import StatusUpdate
from domain.vocab import Severity
from sandbox.models import Fault
from tests.chaos.harness import chaos_stack, slow_slack
from tests.conftest import RESPONDER
from tests.test_integrations import settled

TEXT = "Rolled back payments-api, watching the error rate"


async def test_a_worker_killed_while_an_update_posts_in_its_own_task_posts_it_once(tmp_path: Path) -> None:
    async with chaos_stack(tmp_path / "update-in-task") as chaos:
        stack = chaos.stack
        worker = chaos.new_worker("worker")
        await worker.start()
        incident_id = await stack.incidents.declare("Checkout 5xx", Severity.SEV2, declared_by=RESPONDER)
        channel = await stack.incident_channel(incident_id)
        await settled(stack, incident_id, within=30)

        posting = asyncio.Event()
        take_fault = chaos.sandbox.state.take_fault

        def watch(method: str) -> Fault | None:
            if method == "chat.postMessage":
                posting.set()
            return take_fault(method)

        chaos.sandbox.state.take_fault = watch  # type: ignore[method-assign]
        # Each Slack call takes effect 600 ms after it arrives: the kill lands while the posts are with Slack.
        slow_slack(chaos, 600)
        update = asyncio.create_task(stack.incidents.post_update(incident_id, StatusUpdate(text=TEXT)))
        await asyncio.wait_for(posting.wait(), timeout=15)
        await worker.kill()
        await asyncio.sleep(0.8)  # the posts the dead worker sent take effect
        chaos.sandbox.state.clear_faults()
        await worker.start()
        answer = await asyncio.wait_for(update, timeout=60)

        await settled(stack, incident_id, within=30)
        assert answer == "Update posted here and to 2 broadcast channels.", answer
        assert sum(TEXT in m["text"] for m in await stack.slack.messages(channel)) == 1
        for bc in stack.broadcast:
            [overview] = await stack.slack.messages(bc)
            assert sum(TEXT in r["text"] for r in overview["replies"]) == 1, overview["replies"]
