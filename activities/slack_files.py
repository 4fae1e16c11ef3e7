"""Slack files as warroom uses them: uploaded through Slack's external flow, shared in a thread or kept
private (a long incident's archived timeline parts), and read back with the bot token.

Uploads: `files.getUploadURLExternal`, a POST of the bytes to the URL it answers, then
`files.completeUploadExternal` (sharing the files, or keeping them private when no channel is given).
slack_sdk's `files_upload_v2` makes the same calls, but a failed byte upload surfaces there as a bare
`SlackRequestError` without the `Retry-After` of a 429; here it becomes a `SlackCallError` like any other
Slack failure. Reading: `files.info` names `url_private_download`, fetched with the token in an
`Authorization` header. Without a valid token (or the `files:read` scope) Slack answers that URL with its
sign-in page, not an error: that is recognised and reported as what it is.
"""

from __future__ import annotations

from typing import Any

import aiohttp
from temporalio.exceptions import ApplicationError

from activities.slack_base import SlackBase, call_budget
from activities.slack_errors import SlackCallError, _retry_after

UPLOAD_STEP = "file upload"  # how the byte upload is named in errors (its URL is a credential: never shown)
DOWNLOAD_STEP = "file download"
SIGN_IN_PAGE = "sign_in_page"  # the error named when Slack answers a download with HTML


class SlackFiles(SlackBase):
    """File helpers shared by the activities that upload or read files."""

    async def _upload(
        self, files: dict[str, bytes], channel: str | None = None, thread_ts: str | None = None
    ) -> list[str]:
        """Uploads the files and completes them together: shared as one message (in the thread with
        `thread_ts`) in `channel`, or private to warroom without one. Returns their file IDs."""
        uploaded: list[dict[str, Any]] = []
        for name, data in files.items():
            target = await self._call("files.getUploadURLExternal", filename=name, length=len(data))
            await self._http("POST", str(target["upload_url"]), UPLOAD_STEP, data=data)
            uploaded.append({"id": str(target["file_id"]), "title": name})
        share: dict[str, Any] = {"channel_id": channel, "thread_ts": thread_ts} if channel else {}
        await self._call("files.completeUploadExternal", files=uploaded, **share)
        return [str(f["id"]) for f in uploaded]

    async def _download(self, file_id: str) -> bytes:
        """The bytes of a file warroom can see (`files:read`)."""
        info = await self._call("files.info", file=file_id)
        url = str((info.get("file") or {}).get("url_private_download") or "")
        if not url:
            raise SlackCallError("files.info", "file_not_found", 200, None)
        headers = {"Authorization": f"Bearer {self._client.token}"}
        return await self._http("GET", url, DOWNLOAD_STEP, headers=headers, expect_html=False)

    async def _http(
        self,
        method: str,
        url: str,
        step: str,
        *,
        data: bytes | None = None,
        headers: dict[str, str] | None = None,
        expect_html: bool = True,
    ) -> bytes:
        """One request outside the Web API (an upload or download URL), with the Web API client's session,
        proxy and TLS. The URL and headers carry credentials: neither ever appears in an error."""
        client = self._client
        session = client.session
        own = session is None or session.closed
        if own:
            session = aiohttp.ClientSession(trust_env=client.trust_env_in_session)
        assert session is not None
        sent = dict(headers or {})
        if data is not None:
            sent["Content-Type"] = "application/octet-stream"
        try:
            async with session.request(
                method,
                url,
                data=data,
                headers=sent,
                timeout=aiohttp.ClientTimeout(total=max(1.0, min(client.timeout, call_budget()))),
                proxy=client.proxy,
                ssl=client.ssl if client.ssl is not None else True,
            ) as response:
                if response.status != 200:
                    status = response.status
                    error = "ratelimited" if status == 429 else f"http_{status}"
                    raise SlackCallError(step, error, status, _retry_after(response.headers))
                body = await response.read()
                status = response.status
                if not expect_html and response.content_type == "text/html":
                    raise SlackCallError(step, SIGN_IN_PAGE, status, None)
                return body
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise ApplicationError(
                f"Slack unreachable during {step}: {type(exc).__name__}", type="SlackUnavailable"
            ) from None
        finally:
            if own:
                await session.close()
