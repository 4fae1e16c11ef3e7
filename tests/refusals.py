"""A guard that fails any test during which a Slack sandbox refused content the test did not expect.

Every SandboxState made during the run is registered (whatever fixture, or test body, made it). After each
test, the refusals recorded since the last check are split into expected ones (declared with
`sandbox.state.expect_refusals("invalid_blocks")` or `@pytest.mark.slack_refusals_expected("invalid_blocks")`;
either with no error names: any) and unexpected ones, which fail the test. tests/conftest.py imports the
fixtures and hooks below; the session's totals are printed in the terminal summary.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Generator, Iterator
from typing import Any

import pytest

from sandbox.refusals import Refusal
from sandbox.state import SandboxState

MARKER = "slack_refusals_expected"


class RefusalGuard:
    """Watches every SandboxState created while installed, and counts the session's refusals."""

    def __init__(self) -> None:
        self._new: list[SandboxState] = []  # held until first checked: a test's state may already be gone
        self._seen: list[tuple[weakref.ref[SandboxState], int]] = []  # a gone state refuses nothing more
        self.unexpected = 0
        self.expected = 0

    def watch(self, state: SandboxState) -> None:
        self._new.append(state)

    def take(self, *, forget: bool) -> list[tuple[SandboxState, list[Refusal]]]:
        """Refusals recorded since the last call, per state; with `forget`, each state's declarations too
        (once a test is over: they must not cover the next test's refusals)."""
        states = [(s, 0) for s in self._new] + [
            (s, cursor) for ref, cursor in self._seen if (s := ref()) is not None
        ]
        self._new = []
        self._seen = [(weakref.ref(s), len(s.refusals)) for s, _ in states]
        taken = [(s, s.refusals[cursor:]) for s, cursor in states]
        for state, _ in states if forget else ():
            state.refusal_log.expected.clear()
        return [(s, new) for s, new in taken if new]

    def check(self, marker: pytest.Mark | None, *, forget: bool) -> list[Refusal]:
        """The unexpected refusals since the last check (counting both kinds for the session)."""
        allowed = set(marker.args) if marker is not None else set()
        unexpected: list[Refusal] = []
        for _, refusals in self.take(forget=forget):
            for refusal in refusals:
                if refusal.expected or (marker is not None and (not allowed or refusal.error in allowed)):
                    self.expected += 1
                else:
                    unexpected.append(refusal)
        self.unexpected += len(unexpected)
        return unexpected


GUARD_KEY = pytest.StashKey[RefusalGuard]()


def _fail_on(item: pytest.Item, when: str, *, test_over: bool) -> None:
    guard = item.config.stash.get(GUARD_KEY, None)
    if guard is None:
        return
    unexpected = guard.check(item.get_closest_marker(MARKER), forget=test_over)
    if unexpected:
        lines = "\n".join(f"  {r.describe()}" for r in unexpected)
        pytest.fail(
            f"the Slack sandbox refused {len(unexpected)} call(s) {when} that the test did not expect:\n"
            f"{lines}\n(declare expected ones with sandbox.state.expect_refusals(error) or "
            f"@pytest.mark.{MARKER}(error))",
            pytrace=False,
        )


@pytest.fixture(scope="session", autouse=True)
def slack_refusal_registry(request: pytest.FixtureRequest) -> Iterator[RefusalGuard]:
    """Registers every SandboxState made from here on, by wrapping its __init__ for the session."""
    guard = RefusalGuard()
    original: Callable[..., None] = SandboxState.__init__

    def registering_init(self: SandboxState, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        guard.watch(self)

    request.config.stash[GUARD_KEY] = guard
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(SandboxState, "__init__", registering_init)
        yield guard


@pytest.fixture(autouse=True)
def slack_refusal_check(
    request: pytest.FixtureRequest, slack_refusal_registry: RefusalGuard
) -> Iterator[None]:
    """Checks again after the test's fixtures are torn down (a refusal there errors the test's teardown)."""
    yield
    _fail_on(request.node, "while tearing down", test_over=True)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, None, None]:
    """Fails the test itself when the sandbox refused something unexpected while it ran."""
    try:
        yield
    finally:
        _fail_on(item, "during the test", test_over=False)


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    guard = config.stash.get(GUARD_KEY, None)
    if guard is not None:
        terminalreporter.write_line(
            f"slack sandbox refusals: {guard.unexpected} unexpected, {guard.expected} expected"
        )
