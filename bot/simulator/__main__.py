"""Run the RunComfy simulator on its own, for operators who want to point the bot at it."""

from __future__ import annotations

import argparse
import logging

from aiohttp import web

from bot.simulator import Simulator, SimulatorConfig


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bot.simulator",
        description="Serve a simulated RunComfy Model API. Point the bot at it with "
        "RUNCOMFY_BASE_URL=http://HOST:PORT and RUNCOMFY_API_TOKEN=<--token>.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--token", default="sim-token", help="bearer token it accepts")
    parser.add_argument("--workers", type=int, default=2, help="jobs that run at once")
    parser.add_argument("--queue-seconds", type=float, default=0.0)
    parser.add_argument("--run-seconds", type=float, default=20.0)
    parser.add_argument("--video-bytes", type=int, default=None,
                        help="pad the output video to this many bytes")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    simulator = Simulator(SimulatorConfig(
        token=args.token, workers=args.workers, queue_seconds=args.queue_seconds,
        run_seconds=args.run_seconds, video_bytes=args.video_bytes,
    ))
    web.run_app(simulator.app(), host=args.host, port=args.port)


if __name__ == "__main__":
    main()
