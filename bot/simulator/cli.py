"""``python -m bot.simulator``: the simulator on its own, for operators who want to point the
bot at it, steered by flags (accounts and credits, failures, faults, image checks).

Several accounts: ``--token`` is the default one (its credits: ``--balance``); each
``--account TOKEN[:USD]`` adds another with its own credits (unlimited without ``:USD``) and its
own jobs, e.g. ``--account guild-a:2.5 --account guild-b``.
"""

from __future__ import annotations

import argparse
import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from bot.simulator import Fault, Simulator, SimulatorConfig
from bot.simulator.clips import make_clip

FAULT_HELP = (
    "fail the next calls whose path matches, as KEY=VALUE pairs separated by commas: "
    "kind=status|slow|malformed (default status), status=CODE (default 500), times=N "
    "(default 1), path=REGEX (default ^/v1/; no commas), method=GET|POST, retry_after=SECONDS, "
    "delay=SECONDS (slow). E.g. 'status=503,times=3,path=/status$' or "
    "'kind=malformed,path=/result'. Repeat the flag for several faults"
)


def _fault(text: str) -> Fault:
    try:
        return Fault.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r}: {exc}") from None


def _rate(text: str) -> float:
    try:
        rate = float(text)
    except ValueError:
        rate = -1.0
    if not 0 <= rate <= 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a share between 0 and 1")
    return rate


def _usd(text: str) -> float:
    try:
        usd = float(text)
    except ValueError:
        usd = -1.0
    if not usd >= 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not an amount of USD (0 or more)")
    return usd


@dataclass(frozen=True)
class ClipSpec:
    """``--clip SECONDS:WIDTHxHEIGHT:MB[:audio]``: a real MP4 of that length, size and weight."""

    seconds: float
    width: int
    height: int
    megabytes: float
    audio: bool


def _clip(text: str) -> ClipSpec:
    parts = text.split(":")
    try:
        seconds, size, megabytes = float(parts[0]), parts[1].lower(), float(parts[2])
        width, height = (int(side) for side in size.split("x"))
        audio = parts[3:] == ["audio"]
        if len(parts) not in (3, 4) or (len(parts) == 4 and not audio) or min(
                seconds, megabytes, width, height) <= 0:
            raise ValueError
    except (ValueError, IndexError):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not SECONDS:WIDTHxHEIGHT:MB[:audio], e.g. 5:1920x1080:25:audio"
        ) from None
    return ClipSpec(seconds, width, height, megabytes, audio)


def _account(text: str) -> tuple[str, float | None]:
    """``TOKEN`` or ``TOKEN:USD`` (the token may hold colons: the last one splits)."""
    token, colon, usd = text.rpartition(":")
    if not colon:
        token, usd = text, ""
    token = token.strip()
    if not token:
        raise argparse.ArgumentTypeError(f"{text!r}: the token is empty (TOKEN[:USD])")
    return token, (_usd(usd) if colon else None)


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bot.simulator",
        description="Serve a simulated RunComfy Model API. Point the bot at it with "
        "RUNCOMFY_BASE_URL=http://HOST:PORT and RUNCOMFY_API_TOKEN=<--token>; a server that "
        "brings its own key can use an --account token.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--token", default="sim-token",
                        help="bearer token of the default account")
    parser.add_argument("--account", type=_account, action="append", default=[],
                        metavar="TOKEN[:USD]",
                        help="another account: its bearer token and its credits in USD "
                        "(default: unlimited). It sees only its own jobs (another account's "
                        "request is 403, error 403001). Repeat the flag for several accounts")
    parser.add_argument("--workers", type=int, default=2, help="jobs that run at once")
    parser.add_argument("--queue-seconds", type=float, default=0.0,
                        help="least seconds a job waits in the queue")
    parser.add_argument("--run-seconds", type=float, default=20.0,
                        help="seconds a job runs")
    parser.add_argument("--video-bytes", type=int, default=None,
                        help="pad the output video to this many bytes")
    parser.add_argument("--clip", type=_clip, default=None,
                        metavar="SECONDS:WIDTHxHEIGHT:MB[:audio]",
                        help="serve a real MP4 of that length, picture size and weight (made at "
                        "start), e.g. 5:1920x1080:25:audio")
    parser.add_argument("--balance", type=_usd, default=None, metavar="USD",
                        help="the default account's credits: a submit that costs more is "
                        "refused (402, error 400002), a cancelled job gives its cost back "
                        "(default: unlimited)")
    parser.add_argument("--failure-rate", type=_rate, default=0.0, metavar="SHARE",
                        help="share of jobs that end failed, 0 to 1 (default 0)")
    parser.add_argument("--seed", type=int, default=None,
                        help="seed of the draw that picks failed jobs (default: random)")
    parser.add_argument("--fault", type=_fault, action="append", default=[], metavar="SPEC",
                        help=FAULT_HELP)
    parser.add_argument("--fetch-images", action="store_true",
                        help="download every image input and refuse one that breaks the "
                        "model's image rules (422), as RunComfy does")
    parser.add_argument("--alternate-vocabulary", action="store_true",
                        help="answer with the other words RunComfy may use: 'succeeded', "
                        "'failed' and 'canceled' in status, 'completed' and 'canceled' in "
                        "result")
    return parser


def config(argv: list[str] | None = None) -> tuple[SimulatorConfig, argparse.Namespace]:
    """The simulator's configuration from the command line (exits with usage on a bad one)."""
    arguments = parser()
    args = arguments.parse_args(argv)
    accounts: dict[str, float | None] = {}
    for token, balance in args.account:
        if token in accounts or token == args.token:
            arguments.error(f"argument --account: the token of account {len(accounts) + 1} "
                            "is given twice (or is --token)")
        accounts[token] = balance
    video_file = None
    if args.clip is not None:
        spec: ClipSpec = args.clip
        video_file = Path(tempfile.mkdtemp(prefix="simulator-")) / "clip.mp4"
        make_clip(video_file, seconds=spec.seconds, width=spec.width, height=spec.height,
                  audio=spec.audio, target_bytes=round(spec.megabytes * 1024 * 1024))
    return SimulatorConfig(
        token=args.token, workers=args.workers, queue_seconds=args.queue_seconds,
        run_seconds=args.run_seconds, video_bytes=args.video_bytes, balance_usd=args.balance,
        accounts=accounts, failure_rate=args.failure_rate, seed=args.seed,
        fetch_images=args.fetch_images, alternate_vocabulary=args.alternate_vocabulary,
        video_file=video_file,
    ), args


def main(argv: list[str] | None = None) -> None:
    settings, args = config(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    simulator = Simulator(settings)
    for fault in args.fault:
        simulator.inject(fault)
    web.run_app(simulator.app(), host=args.host, port=args.port)
