"""User groups (`@oncall-leads`): the workspace's groups and `usergroups.users.list`.

Tests make groups with `SandboxState.usergroups.create(...)` or the control API (`POST /_sandbox/usergroups`,
`SandboxClient.create_usergroup`). The sandbox models no OAuth scopes except this one: with
`usergroups.read_scope = False` the token lacks `usergroups:read`, and the method answers `missing_scope`
as Slack does. Disabled groups are not modelled (`include_disabled` is accepted and changes nothing).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sandbox.args import Args
from sandbox.models import ApiError, is_user_id

if TYPE_CHECKING:
    from sandbox.state import SandboxState

SCOPE = "usergroups:read"
_GROUP_ID = re.compile(r"S[A-Z0-9]+")
_HANDLE = re.compile(r"[a-z0-9][a-z0-9._-]*")


@dataclass
class UserGroup:
    id: str
    handle: str
    users: list[str] = field(default_factory=list)


class UserGroups:
    def __init__(self) -> None:
        self.groups: dict[str, UserGroup] = {}
        self.read_scope = True  # False: the bot token lacks usergroups:read

    def create(self, group_id: str, handle: str, users: list[str]) -> UserGroup:
        if not _GROUP_ID.fullmatch(group_id):
            raise ValueError(f"not a Slack user group id: {group_id!r}")
        if not _HANDLE.fullmatch(handle):
            raise ValueError(f"not a user group handle: {handle!r}")
        if any(g.handle == handle and g.id != group_id for g in self.groups.values()):
            raise ApiError("name_already_exists")
        bad = [u for u in users if not is_user_id(u)]
        if bad:
            raise ValueError(f"not Slack user ids: {bad!r}")
        group = UserGroup(group_id, handle, list(dict.fromkeys(users)))
        self.groups[group_id] = group
        return group

    def to_api(self, group: UserGroup) -> dict[str, Any]:
        return {"id": group.id, "handle": group.handle, "users": list(group.users)}


def usergroups_users_list(state: SandboxState, args: Args) -> dict[str, Any]:
    store = state.usergroups
    if not store.read_scope:
        raise ApiError("missing_scope", needed=SCOPE, provided="commands,chat:write")
    group_id = args.required("usergroup")
    args.flag("include_disabled")
    group = store.groups.get(group_id)
    if group is None:
        raise ApiError("no_such_subteam")
    return {"users": list(group.users)}


METHODS = {"usergroups.users.list": usergroups_users_list}
