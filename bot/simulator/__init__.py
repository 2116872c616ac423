"""A RunComfy Model API simulator: ``python -m bot.simulator --port 8765``."""

from bot.simulator.app import SAMPLE_VIDEO, Call, Simulator, SimulatorConfig, pad_video
from bot.simulator.faults import Fault
from bot.simulator.queue import JobState, Plan

__all__ = [
    "SAMPLE_VIDEO",
    "Call",
    "Fault",
    "JobState",
    "Plan",
    "Simulator",
    "SimulatorConfig",
    "pad_video",
]
