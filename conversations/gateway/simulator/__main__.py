"""Run the simulator as a standalone server: `python -m conversations.gateway.simulator`."""

from __future__ import annotations

import argparse

import uvicorn

from .app import Simulator


def main(argv: list[str] | None = None) -> None:
    """Parse the command line and serve until interrupted."""
    parser = argparse.ArgumentParser(description="Offline OpenAI-compatible Responses gateway.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--api-key", default=None, help="require this Bearer key (default: none)")
    parser.add_argument("--pace", type=float, default=40.0, help="tokens per second (0 = instant)")
    parser.add_argument("--first-token-delay", type=float, default=0.3, help="seconds")
    parser.add_argument(
        "--emission-log", default=None, help="append when each text delta went out (benchmarks)"
    )
    parser.add_argument(
        "--relay",
        action="store_true",
        help="answer as a stateless relay to chat completions (see FAULTS.md)",
    )
    args = parser.parse_args(argv)
    app = Simulator(
        api_key=args.api_key,
        tokens_per_second=args.pace,
        first_token_delay=args.first_token_delay,
        emission_log=args.emission_log,
        relay=args.relay,
    )
    print(f"Simulated Responses API at http://{args.host}:{args.port}/v1")
    uvicorn.run(app, host=args.host, port=args.port, log_level="info", lifespan="on")


if __name__ == "__main__":
    main()
