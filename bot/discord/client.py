"""The bot itself: the one place that builds the parts (the domain's and Discord's) from the
settings, wires them together and runs them."""

from __future__ import annotations

import asyncio
import gc
import hashlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import aiohttp
import discord
from discord.ext import commands, tasks

from bot.access import Access
from bot.catalog import Catalog
from bot.config import Settings
from bot.discord.buttons import JobButtons
from bot.discord.channel_work import ChannelWork
from bot.discord.delivery import Delivery
from bot.discord.errors import ErrorReporter
from bot.discord.languages import ServerLanguages, SpeakingTree
from bot.discord.poll_loop import PollLoop
from bot.discord.translator import CommandTranslator
from bot.downloads import Videos
from bot.fitting import Fitter
from bot.i18n import catalogs
from bot.jobs import Job
from bot.keys import KeyBox, KeyBoxError
from bot.limits import Limits
from bot.policy import PolicyStore
from bot.poller import Poller, PollSettings
from bot.pricing import PriceBook
from bot.runcomfy import RetryPolicy, RunComfyClient, Timeouts
from bot.server_keys import ServerKeys
from bot.service import JobService
from bot.store.access import ApprovedServers
from bot.store.connect import open_database
from bot.store.database import Database
from bot.store.jobs import JobStore
from bot.store.keys import GuildKeys
from bot.store.notices import NoticeStore

if TYPE_CHECKING:
    from aiohttp import web

    from bot.discord.ops import Ops

log = logging.getLogger(__name__)
EXTENSIONS = ("cogs.errors", "cogs.generate", "cogs.jobs", "cogs.animate", "cogs.settings",
              "cogs.usage", "cogs.creative")  # each a module or package with ``setup``
COMMANDS_HASH_KEY = "synced_commands_sha256"
PRICES_AT_START_SECONDS = 10.0  # how long start-up waits for RunComfy's prices


def utc_seconds() -> float:
    """Now, from discord.py's clock (which SimCord can drive in tests)."""
    return discord.utils.utcnow().timestamp()


@dataclass(frozen=True)
class Parts:
    """What the cogs use; made in ``setup_hook`` once the event loop runs."""

    db: Database
    store: JobStore
    runcomfy: RunComfyClient
    jobs: JobService
    poller: Poller
    poll_loop: PollLoop
    delivery: Delivery
    policies: PolicyStore
    limits: Limits
    notices: NoticeStore
    prices: PriceBook
    videos: Videos
    errors: ErrorReporter
    keys: ServerKeys


class VideoBot(commands.AutoShardedBot):
    def __init__(self, settings: Settings, catalog: Catalog, runcomfy_token: str, *,
                 database_url: str | None = None, run_jobs: bool = True,
                 clock: Callable[[], float] = utc_seconds, key_box: KeyBox | None = None
                 ) -> None:
        """``database_url`` (PostgreSQL, from ``DATABASE_URL``) instead of the SQLite file of
        ``bot.database``; ``run_jobs=False`` (for ``python -m bot sync``) leaves the jobs to
        the running bot."""
        # No voice in this bot: discord.py's "PyNaCl is not installed" and "davey is not
        # installed" warnings are noise. These two flags are what discord.py checks to warn
        # once (when a client is made); nothing else.
        discord.VoiceClient.warn_nacl = False
        discord.VoiceClient.warn_dave = False
        intents = discord.Intents.none()
        intents.guilds = True
        intents.guild_messages = True  # mentions carry their content without the privileged intent
        intents.message_content = settings.bot.message_content_intent
        shards = settings.bot.shards
        sharding: dict[str, Any] = {} if shards is None else {
            "shard_count": shards.count, "shard_ids": sorted(shards.ids)}
        # No message cache (discord.py keeps the last 1,000 by default): the bot reads no
        # message from it (a reply's message comes in the gateway's event, or is fetched), and
        # with the guild messages intent it would hold every server's chatter.
        super().__init__(command_prefix=commands.when_mentioned, intents=intents,
                         allowed_mentions=discord.AllowedMentions.none(), help_command=None,
                         tree_cls=SpeakingTree, max_messages=None, **sharding)
        self.shards_served = shards
        self.settings = settings
        self.catalog = catalog
        self.clock = clock
        self.run_jobs = run_jobs
        self._runcomfy_token = runcomfy_token
        self._key_box = key_box  # BOT_SECRET_KEY's: servers' own RunComfy keys
        self._database = database_url or settings.bot.database
        self._parts: Parts | None = None
        self._http_session: aiohttp.ClientSession | None = None
        self._simulator: web.AppRunner | None = None
        self._first_prices: asyncio.Task[None] | None = None
        self._daily_prices = tasks.loop(hours=24)(self._refresh_prices_daily)
        self.buttons = JobButtons()  # the cogs register what each button does
        self._released = False
        self._fitter: Fitter | None = None
        self._ops: Ops | None = None
        self.catalogs = catalogs()  # the message catalogs, compiled once per process

    @property
    def parts(self) -> Parts:
        if self._parts is None:
            raise RuntimeError("the bot has not been set up yet")
        return self._parts

    def http_session(self) -> aiohttp.ClientSession:
        """The one aiohttp session for RunComfy and video downloads."""
        if self._http_session is None or self._http_session.closed:
            self._http_session = aiohttp.ClientSession()
        return self._http_session

    async def on_ready(self) -> None:
        """Every shard's guilds are in: what the process holds now lives as long as it does,
        and frozen, the collector no longer walks it at each full collection (with 5,000 guilds
        a command's CPU went from 2.3-2.6 x the minimal bot's to 2.0-2.1 x: bench/README.md).
        What was frozen at an earlier ready (a session Discord started anew rebuilds the
        guilds) is let go first, so a cycle frozen then is collected now."""
        gc.unfreeze()
        gc.collect()
        gc.freeze()

    def _connected(self) -> bool:
        """Every shard of this process connected to Discord's gateway."""
        return self.is_ready() and bool(self.shards) and not any(
            info.is_closed() for info in self.shards.values())

    def model_name(self, job: Job) -> str:
        model = self.catalog.by_id(job.model_id)
        return job.model_id if model is None else model.name

    @property
    def simulated(self) -> bool:
        return self.settings.simulation.enabled

    async def _start_simulator(self) -> str:
        """Serve the RunComfy simulator on 127.0.0.1 inside this process; its base URL."""
        from aiohttp import web  # only a simulating bot serves HTTP (and makes videos)

        from bot.simulator import Simulator, SimulatorConfig

        sim = self.settings.simulation
        simulator = Simulator(SimulatorConfig(
            token=self._runcomfy_token, workers=sim.workers, queue_seconds=sim.queue_seconds,
            run_seconds=sim.run_seconds, close_connections=True, clock=self.clock),
            catalog=self.catalog)
        self._simulator = web.AppRunner(simulator.app(), access_log=None)
        await self._simulator.setup()
        await web.TCPSite(self._simulator, "127.0.0.1", 0).start()
        host, port = self._simulator.addresses[0][:2]
        log.info("simulation mode: RunComfy is simulated at http://%s:%d", host, port)
        return f"http://{host}:{port}"

    async def setup_hook(self) -> None:
        s = self.settings
        db = await open_database(self._database, clock=self.clock)
        log.info("store: %s %s (schema %d)", db.dialect, db.where, await db.schema_version())
        store = JobStore(db, clock=self.clock, shards=self.shards_served,
                         lease_seconds=s.jobs.lease_seconds)
        base_url = await self._start_simulator() if self.simulated else s.runcomfy.base_url
        runcomfy = RunComfyClient(
            self._runcomfy_token, base_url, session=self.http_session(),
            retry=RetryPolicy(attempts=s.runcomfy.retry_attempts,
                              base_delay=s.runcomfy.retry_base_delay,
                              max_delay=s.runcomfy.retry_max_delay),
            timeouts=Timeouts(submit=s.runcomfy.submit_timeout, read=s.runcomfy.request_timeout),
        )
        policies = PolicyStore(db, s.limits, self.clock, s.ceilings)
        keys = ServerKeys(GuildKeys(db), policies.settings, self._key_box, runcomfy,
                          self.catalog, self.clock)
        try:
            await keys.check_secret()
        except KeyBoxError:  # the bot stops: nothing may hold the process open
            await db.close()
            raise
        videos = Videos(self.http_session, int(s.jobs.max_download_mb * 1024 * 1024))
        self._fitter = Fitter(s.delivery.encode_workers, s.delivery.encode_time_limit)
        delivery = Delivery(self, self.buttons, videos, self._fitter, self.model_name,
                            await store.nonce_tag())
        notices = NoticeStore(db, self.clock)
        self.languages = ServerLanguages(self, policies)
        channels = ChannelWork(store, notices, delivery, retry_seconds=s.jobs.poll_interval,
                               card_edit_interval=s.jobs.card_edit_interval,
                               language_of=self.languages.of)
        poller = Poller(self.catalog, store, runcomfy, channels, PollSettings(
            interval=s.jobs.poll_interval, max_concurrent=s.jobs.max_concurrent_polls,
            timeout_seconds=s.jobs.timeout_minutes * 60, strategy=s.jobs.poll_strategy,
        ), clock=self.clock, keys=keys)
        limits = Limits(db, policies, self.clock, s.account)
        prices = PriceBook(self.catalog, s.prices)
        access = Access(s.access.servers, s.access.approved, ApprovedServers(db), keys.has_key)
        jobs = JobService(self.catalog, store, runcomfy, limits, prices, poller.notify,
                          clock=self.clock, simulated=self.simulated, access=access, keys=keys)
        poll_loop = PollLoop(poller)
        if s.ops.listen and self.run_jobs:
            # Its HTTP server and the metrics (prometheus_client): only for a process serving
            # them; started once the bot is set up.
            from bot.discord.ops import Ops
            from bot.metrics import Metrics

            metrics = Metrics()
            store.on_move = metrics.job_moved
            runcomfy.observe = metrics.runcomfy_call
            jobs.refused = metrics.refusal
            delivery.on_card_edit = metrics.card_edited
            metrics.waiting.set_function(lambda: poller.kept()["waiting"])
            metrics.shards.set_function(lambda: len(self.shards))
            metrics.leases.set_function(lambda: store.leases)
            self._ops = Ops(s.ops.listen, metrics, self._connected, db, poll_loop)
        self._parts = Parts(db, store, runcomfy, jobs, poller, poll_loop, delivery, policies,
                            limits, notices, prices, videos, ErrorReporter(notices), keys)
        if self.run_jobs:
            await self._read_prices()
        self.add_dynamic_items(self.buttons.item)  # they work across restarts
        await self.tree.set_translator(CommandTranslator(self.catalogs, self.catalog))
        for extension in EXTENSIONS:
            await self.load_extension(extension)
        if self.run_jobs:
            if self.shards_served is None or self.shards_served.syncs_commands:
                await self.sync_commands()
            await self._parts.poll_loop.start()
            if self._ops is not None:
                await self._ops.start()

    async def _read_prices(self) -> None:
        """RunComfy's published prices: read now (start-up waits for them a little, so the
        first videos are budgeted at them, and goes on without them), then daily."""
        self._first_prices = asyncio.create_task(self._refresh_prices())
        await asyncio.wait({self._first_prices}, timeout=PRICES_AT_START_SECONDS)
        self._daily_prices.start()

    async def _refresh_prices(self) -> None:
        await self.parts.prices.refresh(self.parts.runcomfy)

    async def _refresh_prices_daily(self) -> None:
        if not self._daily_prices.current_loop:  # the first run is the start-up read
            return
        try:
            await self._refresh_prices()
        except Exception:  # an error the task loop does not retry would stop it for good
            log.exception("RunComfy's prices could not be refreshed; trying again tomorrow")

    async def sync_commands(self, *, force: bool = False) -> bool:
        """Sync the application commands if they changed since the last sync (done by one
        process: the one with shard 0)."""
        translator = self.tree.translator
        payload = [command.to_dict(self.tree) if translator is None
                   else await command.get_translated_payload(self.tree, translator)
                   for command in self.tree.get_commands()]
        digest = hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()
        if not force and await self.parts.store.get_meta(COMMANDS_HASH_KEY) == digest:
            log.info("application commands unchanged; not syncing")
            return False
        synced = await self.tree.sync()
        await self.parts.store.set_meta(COMMANDS_HASH_KEY, digest)
        log.info("synced %d application commands", len(synced))
        return True

    async def release(self) -> None:
        """Stop: the poller first, then wait for the submits under way to be recorded (none is
        cut between sending and recording), give up this process's leases (another process,
        or the next life of this one, takes its jobs at once), and close the database, the
        HTTP session and the simulator."""
        if self._released:
            return
        self._released = True
        self._daily_prices.cancel()
        if self._first_prices is not None:
            self._first_prices.cancel()
        if self._ops is not None:
            await self._ops.stop()
        if self._parts is not None:
            parts = self._parts
            await parts.poll_loop.stop()
            left = await parts.jobs.drain(self.settings.runcomfy.submit_timeout + 5)
            if left:
                log.warning("%d submits were still under way at the stop", left)
            try:
                released = await parts.store.release()
            except Exception as exc:  # the database is gone (a crash): the leases run out
                log.warning("leases not released (%s); they run out in %g s",
                            type(exc).__name__, self.settings.jobs.lease_seconds)
            else:
                log.info("stopped; %d jobs released to the next process", released)
            await parts.db.close()
        if self._fitter is not None:
            await self._fitter.close()
        if self._http_session is not None:
            await self._http_session.close()
        if self._simulator is not None:
            await self._simulator.cleanup()

    async def close(self) -> None:
        await self.release()
        await super().close()
