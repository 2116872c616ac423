"""The public status card of a job (its Cancel button is in ``bot.discord.buttons``)."""

from __future__ import annotations

import discord

from bot.i18n import N_, _, money, said
from bot.jobs import TERMINAL, Job, JobState
from bot.lineage import lineage_text
from bot.text import duration_text

PROMPT_SHOWN = 300
SIMULATED = N_("simulated: no credits are spent")
_COLOURS = {
    JobState.DELIVERED: discord.Colour.green(),
    JobState.FAILED: discord.Colour.red(),
    JobState.TIMED_OUT: discord.Colour.red(),
    JobState.OUTCOME_UNKNOWN: discord.Colour.orange(),
    JobState.UNDELIVERABLE: discord.Colour.red(),
    JobState.CANCELLED: discord.Colour.light_grey(),
}


def safe_text(text: str, limit: int) -> str:
    """Text a member typed, shown as plain text: markdown escaped, mentions defused, cut short."""
    shown = text if len(text) <= limit else text[: limit - 1].rstrip() + "…"
    shown = discord.utils.escape_markdown(shown)
    return discord.utils.escape_mentions(shown)


def render_card(job: Job, model_name: str, note: str | None = None) -> discord.Embed:
    """``note``: what the bot is doing with the job right now, shown as its state."""
    state = job.state
    title = f"{model_name} · {state.label}"
    if state is JobState.QUEUED and job.queue_position is not None:
        title += " " + _("(#{place} in line)", place=job.queue_position + 1)
    embed = discord.Embed(title=title, colour=_COLOURS.get(state, discord.Colour.blurple()),
                          description=safe_text(job.prompt, PROMPT_SHOWN) or _("*(no prompt)*"))
    embed.add_field(name=_("Requested by"), value=f"<@{job.user_id}>")
    if lineage := lineage_text(job.parent_id, job.origin):
        embed.add_field(name=_("From"), value=lineage)  # "again of #12", "extends #12"
    embed.add_field(name=_("State"), value=note or _state_text(job))
    if job.submitted_at is not None:
        if state in TERMINAL and job.elapsed is not None:
            embed.add_field(name=_("Time"), value=duration_text(job.elapsed))
        else:
            embed.add_field(name=_("Started"), value=f"<t:{int(job.submitted_at)}:R>")
    eta = eta_text(job)
    if eta:
        embed.add_field(name=_("ETA"), value=eta)
    cost = _cost_text(job)
    if cost:
        embed.add_field(name=_("Cost"), value=cost)
    # "Job #12" stays as it is in every language: a restart finds the card by it.
    embed.set_footer(text=f"Job #{job.id}" + (" · " + _(SIMULATED) if job.simulated else ""))
    return embed


def eta_text(job: Job) -> str:
    """When a queued job likely starts, or a running one is likely ready, as Discord shows a
    relative time in each member's own clock ("in 40 seconds")."""
    if job.eta_at is None or job.state not in (JobState.QUEUED, JobState.RUNNING):
        return ""
    when = f"<t:{int(job.eta_at)}:R>"
    return _("starts {when}", when=when) if job.state is JobState.QUEUED else _(
        "ready {when}", when=when)


def _state_text(job: Job) -> str:
    if job.state is JobState.QUEUED:
        return job.state.label if job.queue_position is None else _(
            "Queued, #{place}", place=job.queue_position + 1)
    if job.state is JobState.OUTCOME_UNKNOWN:
        return _("{state}: {reason} A moderator can start it again with `/retry job:{job}`.",
                 state=job.state.label, reason=safe_text(said(job.error or ""), 500), job=job.id)
    if job.state in (JobState.FAILED, JobState.UNDELIVERABLE):
        return _("{state}: {reason}", state=job.state.label,
                 reason=safe_text(said(job.error) if job.error else _("no reason given"), 500))
    if job.state is JobState.DELIVERED:
        return _("Done: posted below") if job.delivered_as == "file" else _("Done: link below")
    return job.state.label


def _cost_text(job: Job) -> str:
    if job.cost_usd is not None:
        return money(job.cost_usd)
    if job.estimated_usd is not None and job.state not in (JobState.CANCELLED, JobState.FAILED):
        return _("about {cost}", cost=money(job.estimated_usd))
    return ""
