"""`python -m sandbox`: run the sandbox until interrupted (for trying the bot by hand)."""

from __future__ import annotations

import argparse
import asyncio

from sandbox.server import SandboxServer


async def serve(args: argparse.Namespace) -> None:
    async with SandboxServer(
        args.token,
        args.signing_secret,
        ingress_url=args.ingress_url,
        host=args.host,
        port=args.port,
        default_tz=args.tz,
        rate_limit_per_channel=args.rate_limit,
    ) as sb:
        print(f"sandbox Slack at {sb.url} (SLACK_API_URL={sb.api_url})", flush=True)
        await asyncio.Event().wait()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m sandbox", description=__doc__)
    parser.add_argument("--token", default="xoxb-sandbox")
    parser.add_argument("--signing-secret", default="sandbox-signing-secret")
    parser.add_argument("--ingress-url", default=None)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--tz", default="UTC")
    parser.add_argument("--rate-limit", action="store_true")
    try:
        asyncio.run(serve(parser.parse_args(argv)))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
