"""The pager scenarios of tests/histories/record.py (both with PAGERDUTY_WEBHOOK_SECRET the stand-in's):

- `pagerduty-declared`: PagerDuty's monitoring opens an incident, its V3 webhook declares the warroom
  incident, a person resolves it, and warroom resolves the PagerDuty incident (patch `resolve-pager-sources`);
- `paged`: `/incident page` pages a PagerDuty service (the answer to the create is lost: the retry finds it
  by key), the responder acknowledges and is invited into the channel, and the resolve resolves the page.
"""

from __future__ import annotations

from domain.paging import PageOrder
from tests.conftest import RESPONDER, Stack, eventually
from tests.test_incident_workflow import declare, wait_quiet

ACKNOWLEDGER = "U0EARLINE"  # the PagerDuty stand-in's on-call user, by email


async def pagerduty_declared(stack: Stack) -> dict[str, str]:
    from tests.histories.record import _resolve_and_save  # record.py imports this module

    pd = stack.sandbox.pagerduty
    pd_id = await pd.trigger("Payments API", "Checkout 5xx above 5%")
    assert pd.webhooks == [("incident.triggered", 202)], pd.webhooks
    await stack.incident_channel(1)
    await wait_quiet(stack, 1)
    histories = await _resolve_and_save(stack, 1, "Rolled back", "pagerduty-declared")
    found = pd.incident(pd_id)
    assert found is not None and found["status"] == "resolved", found
    return histories


async def paged(stack: Stack) -> dict[str, str]:
    from tests.histories.record import _resolve_and_save

    pd = stack.sandbox.pagerduty
    await stack.slack.add_user(ACKNOWLEDGER, name="earline", email="earline@example.com")
    incident_id, channel = await declare(stack)
    pd.add_fault("create_incident", 502, after_effect=True)
    order = PageOrder(provider="pagerduty", target="Payments API", message="Checkout 5xx", actor=RESPONDER)
    await stack.incidents.page(incident_id, order)

    async def made() -> bool:
        return bool((await stack.incidents.state(incident_id)).paging.links)

    await eventually(made, within=30)
    [page] = pd.incidents
    assert await pd.acknowledge(page["id"]) == 202

    async def invited() -> bool:
        return ACKNOWLEDGER in stack.sandbox.state.channels[channel].members

    await eventually(invited, within=30)
    await wait_quiet(stack, incident_id)
    histories = await _resolve_and_save(stack, incident_id, "Rolled back", "paged")
    assert page["status"] == "resolved", page
    return histories
