"""What an operator's Prometheus scrapes (``/metrics``): counters, gauges and histograms with
bounded labels (models, states, reasons, endpoints; never a guild or a user).

The domain reports through the hooks its parts are given (``JobStore.on_move``,
``RunComfyClient.observe``, ``JobService.refused``), Discord's side through ``Delivery``'s
(card edits) and a handler on discord.py's logger (its 429s, ``bot.discord.counted``); the
gauges read at scrape time (waiting jobs, shards, leases) get their functions from whoever owns
the values (``Gauge.set_function``). A process makes a ``Metrics`` only when it serves them
(``[ops] listen``): without, none of this, nor ``prometheus_client``, is loaded."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from bot.jobs import Job, JobState

LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
LAG_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1)
DELIVERY_BUCKETS = (0.5, 1, 2, 5, 10, 30, 60, 120, 300)

CARD_EDIT_OUTCOMES = ("ok", "not_found", "forbidden", "rate_limited", "error", "cancelled")
RATE_LIMIT_OUTCOMES = ("retried", "raised")


class Metrics:
    """One process's metrics, in a registry of its own (two bots in one test never share)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.jobs = Counter("rcvb_jobs", "Jobs that reached a state", ["model", "state"],
                            registry=r)
        self.refused = Counter("rcvb_admissions_refused", "Requests refused before any paid "
                               "call, by the rule that refused them", ["reason"], registry=r)
        self.runcomfy_calls = Counter("rcvb_runcomfy_calls", "Calls to RunComfy by endpoint and "
                                      "outcome", ["endpoint", "outcome"], registry=r)
        self.runcomfy_seconds = Histogram("rcvb_runcomfy_call_seconds", "RunComfy's answer time",
                                          ["endpoint"], buckets=LATENCY_BUCKETS, registry=r)
        self.delivery_seconds = Histogram("rcvb_delivery_seconds", "From RunComfy's finish to "
                                          "the video in its channel", buckets=DELIVERY_BUCKETS,
                                          registry=r)
        self.spend = Counter("rcvb_spend_usd", "USD spent (RunComfy's cost, else the estimate), "
                             "as the usage rollup counts it", ["model"], registry=r)
        self.loop_lag = Histogram("rcvb_event_loop_lag_seconds", "How late the event loop "
                                  "woke a task up", buckets=LAG_BUCKETS, registry=r)
        self.waiting = Gauge("rcvb_waiting_jobs", "Jobs this process is polling", registry=r)
        self.shards = Gauge("rcvb_shards", "Shards this process serves", registry=r)
        self.leases = Gauge("rcvb_leases", "Open jobs this process holds the lease of (as of "
                            "its last claim, once a poll interval)", registry=r)
        self.card_edits = Counter("rcvb_card_edits", f"Edits of job cards, by outcome "
                                  f"({', '.join(CARD_EDIT_OUTCOMES)})", ["outcome"], registry=r)
        self.discord_rate_limits = Counter(
            "rcvb_discord_rate_limits", "429s from Discord's HTTP API: retried (discord.py "
            "waited) or raised (the wait was too long)", ["outcome"], registry=r)
        self.discord_global_rate_limits = Counter(
            "rcvb_discord_global_rate_limits", "Of those 429s, the ones for the bot's global "
            "limit", registry=r)
        for outcome in CARD_EDIT_OUTCOMES:  # exported at 0 from the start: rate() sees the first
            self.card_edits.labels(outcome)
        for outcome in RATE_LIMIT_OUTCOMES:
            self.discord_rate_limits.labels(outcome)

    def job_moved(self, job: Job) -> None:
        self.jobs.labels(job.command, job.state.value).inc()
        if job.state.is_terminal and job.state not in (JobState.FAILED, JobState.CANCELLED) \
                and not job.simulated:
            self.spend.labels(job.command).inc(job.cost_usd or job.estimated_usd or 0.0)
        if job.state is JobState.DELIVERED and job.finished_at is not None:
            self.delivery_seconds.observe(max(job.updated_at - job.finished_at, 0.0))

    def runcomfy_call(self, endpoint: str, outcome: str, seconds: float) -> None:
        self.runcomfy_calls.labels(endpoint, outcome).inc()
        self.runcomfy_seconds.labels(endpoint).observe(seconds)

    def refusal(self, reason: str) -> None:
        self.refused.labels(reason).inc()

    def card_edited(self, outcome: str) -> None:
        self.card_edits.labels(outcome).inc()

    def text(self) -> bytes:
        """The exposition format, for ``/metrics``."""
        return generate_latest(self.registry)
