"""The `statuspage` scenario of tests/histories/record.py: a public Statuspage incident opened (Statuspage's
first answer is lost, so the retry finds the incident instead of opening a second), moved by a stage, given a
public update, and resolved with the incident."""

from __future__ import annotations

from domain.models import StageChange
from domain.statuspage import ComponentImpact, PublicConfirm, PublicDraftRequest, PublicRequest
from domain.vocab import Stage
from tests.conftest import RESPONDER, Stack, eventually
from tests.test_incident_workflow import declare


async def statuspage(stack: Stack) -> dict[str, str]:
    from tests.histories.record import _resolve_and_save  # record.py imports this module

    inc = stack.incidents
    incident_id, _ = await declare(stack)

    async def published() -> bool:
        s = (await inc.state(incident_id)).statuspage
        return s.page_incident_id is not None and not s.pending

    api = ComponentImpact(name="api", component_id=stack.settings.statuspage_components["api"])
    opening = PublicDraftRequest(
        kind="open", name="Card payments failing", components=(api,), actor=RESPONDER
    )
    stack.sandbox.statuspage.add_fault("create_incident", 502, after_effect=True)
    await inc.statuspage(incident_id, PublicRequest(preview=opening))
    await inc.statuspage(incident_id, PublicRequest(confirm=PublicConfirm(number=1, actor=RESPONDER)))
    await eventually(published, within=30)
    await inc.change_stage(
        incident_id, StageChange(stage=Stage.IDENTIFIED, context="internal", actor=RESPONDER)
    )
    update = PublicDraftRequest(kind="update", body="Card payments are recovering.", actor=RESPONDER)
    await inc.statuspage(incident_id, PublicRequest(preview=update))
    await inc.statuspage(incident_id, PublicRequest(confirm=PublicConfirm(number=2, actor=RESPONDER)))
    await eventually(published)
    histories = await _resolve_and_save(stack, incident_id, "Fixed", "statuspage")
    assert len(stack.sandbox.statuspage.incidents) == 1
    assert stack.sandbox.statuspage.incidents[0]["status"] == "resolved"
    return histories
