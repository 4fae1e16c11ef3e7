import json, time, aiohttp
from urllib.parse import urlencode
from sandbox.signing import signed_headers, signature
from tests.conftest import Stack, SIGNING_SECRET

async def test_probe(stack: Stack) -> None:
    async with aiohttp.ClientSession() as http:
        body = json.dumps({"token": "x", "challenge": "abc123", "type": "url_verification"}).encode()
        for name, headers in [
            ("challenge-signed", signed_headers(SIGNING_SECRET, body, content_type="application/json")),
            ("challenge-unsigned", {"Content-Type": "application/json"}),
            ("garbage-ts", {"Content-Type": "application/json", "X-Slack-Request-Timestamp": "abc", "X-Slack-Signature": "v0=00"}),
        ]:
            async with http.post(stack.ingress_url, data=body, headers=headers) as r:
                print(name, r.status, r.headers.get("Content-Type"), await r.text())
        async with http.get(stack.ingress_url.replace("/slack/events", "/healthz")) as r:
            print("health", r.status, await r.text())
        big = b"text=" + b"a" * (1024 * 1024)
        async with http.post(stack.ingress_url, data=big, headers=signed_headers(SIGNING_SECRET, big)) as r:
            print("big", r.status, await r.text())
        async with http.post(stack.ingress_url, data=b"x", headers={"Content-Type": "text/plain"}) as r:
            print("plain", r.status, await r.text())
        async with http.post(stack.ingress_url, data=b"x=1", headers={"Content-Type": "application/x-www-form-urlencoded"}) as r:
            print("nosig", r.status, await r.text())
