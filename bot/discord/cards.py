"""The public status card of a job (its Cancel button is in ``bot.discord.buttons``)."""

from __future__ import annotations

import discord

from bot.jobs import TERMINAL, Job, JobState
from bot.lineage import lineage_text
from bot.text import duration_text

PROMPT_SHOWN = 300
SIMULATED = " · simulated: no credits are spent"
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
        title += f" (#{job.queue_position + 1} in line)"
    embed = discord.Embed(title=title, colour=_COLOURS.get(state, discord.Colour.blurple()),
                          description=safe_text(job.prompt, PROMPT_SHOWN) or "*(no prompt)*")
    embed.add_field(name="Requested by", value=f"<@{job.user_id}>")
    if lineage := lineage_text(job.parent_id, job.origin):
        embed.add_field(name="From", value=lineage)  # "again of #12", "extends #12"
    embed.add_field(name="State", value=note or _state_text(job))
    if job.submitted_at is not None:
        if state in TERMINAL and job.elapsed is not None:
            embed.add_field(name="Time", value=duration_text(job.elapsed))
        else:
            embed.add_field(name="Started", value=f"<t:{int(job.submitted_at)}:R>")
    eta = eta_text(job)
    if eta:
        embed.add_field(name="ETA", value=eta)
    cost = _cost_text(job)
    if cost:
        embed.add_field(name="Cost", value=cost)
    embed.set_footer(text=f"Job #{job.id}" + (SIMULATED if job.simulated else ""))
    return embed


def eta_text(job: Job) -> str:
    """When a queued job likely starts, or a running one is likely ready, as Discord shows a
    relative time in each member's own clock ("in 40 seconds")."""
    if job.eta_at is None or job.state not in (JobState.QUEUED, JobState.RUNNING):
        return ""
    verb = "starts" if job.state is JobState.QUEUED else "ready"
    return f"{verb} <t:{int(job.eta_at)}:R>"


def _state_text(job: Job) -> str:
    if job.state is JobState.QUEUED:
        return "Queued" if job.queue_position is None else f"Queued, #{job.queue_position + 1}"
    if job.state is JobState.OUTCOME_UNKNOWN:
        return (f"{job.state.label}: {safe_text(job.error or '', 500)} A moderator can start it "
                f"again with `/retry job:{job.id}`.")
    if job.state in (JobState.FAILED, JobState.UNDELIVERABLE):
        return f"{job.state.label}: {safe_text(job.error or 'no reason given', 500)}"
    if job.state is JobState.DELIVERED:
        return "Done: posted below" if job.delivered_as == "file" else "Done: link below"
    return job.state.label


def _cost_text(job: Job) -> str:
    if job.cost_usd is not None:
        return f"${job.cost_usd:.2f}"
    if job.estimated_usd is not None and job.state not in (JobState.CANCELLED, JobState.FAILED):
        return f"about ${job.estimated_usd:.2f}"
    return ""
