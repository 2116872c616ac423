"""``/usage`` reports (moderators: the server; anyone: ``/usage me``) and ``/quota``."""

from __future__ import annotations

import asyncio
import io
from typing import cast

import discord
from discord import app_commands
from discord.ext import commands

from bot.discord.client import VideoBot
from bot.i18n import N_, _, in_source, money, ngettext, number
from bot.limits import set_by
from bot.text import duration_text, hours_text
from bot.usage import GroupBy, Line, PeriodName, Report, UsageReports, chart_png, period, to_csv

SHOWN = 10
# "by user": what a report's lines are, in its title (the choices' names are translated apart).
_BY = {"user": N_("user"), "model": N_("model"), "day": N_("day")}


class Usage(commands.Cog):
    usage = app_commands.Group(name="usage", description="What the videos cost", guild_only=True)

    def __init__(self, bot: VideoBot) -> None:
        self.bot = bot
        self.reports = UsageReports(bot.parts.db)

    @usage.command(name="server", description="This server's usage (Manage Server).")
    @app_commands.describe(period_="Which days", group_by="One line per user, model or day",
                           start="First day of a custom period (YYYY-MM-DD)",
                           end="Last day of a custom period (YYYY-MM-DD)")
    @app_commands.rename(period_="period")
    @app_commands.checks.has_permissions(manage_guild=True)
    async def server(self, interaction: discord.Interaction, period_: PeriodName = "30 days",
                     group_by: GroupBy = "user", start: str | None = None,
                     end: str | None = None) -> None:
        assert interaction.guild_id is not None
        span = period(period_, self.bot.clock(), start, end)
        await interaction.response.defer(ephemeral=True, thinking=True)
        report = await self.reports.report(interaction.guild_id, span, group_by)
        await self._send(interaction, report, _("Server usage"))

    @usage.command(name="me", description="Your own usage.")
    @app_commands.rename(period_="period")
    async def me(self, interaction: discord.Interaction, period_: PeriodName = "30 days",
                 start: str | None = None, end: str | None = None) -> None:
        assert interaction.guild_id is not None
        span = period(period_, self.bot.clock(), start, end)
        await interaction.response.defer(ephemeral=True, thinking=True)
        report = await self.reports.report(interaction.guild_id, span, "model",
                                           user_id=interaction.user.id)
        await self._send(interaction, report, _("Your usage"))

    async def _send(self, interaction: discord.Interaction, report: Report, title: str) -> None:
        guild = interaction.guild

        def name(user_id: str) -> str:
            member = guild.get_member(int(user_id)) if guild else None
            return member.display_name if member else user_id

        chart = await asyncio.to_thread(chart_png, report)
        embed = discord.Embed(title=_("{title}: {period}, by {group}", title=title,
                                      period=report.period.label, group=_(_BY[report.group_by])),
                              description=summary(report.total),
                              colour=discord.Colour.blurple())
        for line in report.lines[:SHOWN]:
            label = f"<@{line.key}>" if report.group_by == "user" else line.key
            embed.add_field(name="\u200b", value=_("{what}: {summary}", what=label,
                                                           summary=summary(line)), inline=False)
        if len(report.lines) > SHOWN:
            embed.set_footer(text=ngettext("{n} more line in the CSV", "{n} more lines in the CSV",
                                           len(report.lines) - SHOWN))
        embed.set_image(url="attachment://usage.png")
        stem = f"usage-{report.period.first}-{report.period.last}"
        await interaction.edit_original_response(embed=embed, attachments=[
            discord.File(io.BytesIO(to_csv(report, name)), filename=f"{stem}.csv"),
            discord.File(io.BytesIO(chart), filename="usage.png"),
        ])

    @app_commands.command(name="quota", description="What you can still make here.")
    @app_commands.guild_only()
    async def quota(self, interaction: discord.Interaction) -> None:
        assert interaction.guild_id is not None
        await interaction.response.defer(ephemeral=True, thinking=True)  # it reads the store
        member = interaction.user
        roles = frozenset(r.id for r in member.roles) if isinstance(member, discord.Member) \
            else frozenset()
        standing = await self.bot.parts.limits.standing(interaction.guild_id, member.id,
                                                        roles=roles)
        policy, now = standing.policy, self.bot.clock()
        lines = []
        if policy.tier is not None:
            lines.append(_("Your limits are the <@&{role}> tier's.", role=policy.tier))
        if policy.daily_quota:
            lines.append(ngettext(
                "Today: {used} of {n} video{set_by} (resets in {reset}).",
                "Today: {used} of {n} videos{set_by} (resets in {reset}).", policy.daily_quota,
                used=number(standing.today), set_by=set_by(policy, "daily_quota"),
                reset=hours_text(standing.day_resets_at - now)))
        else:
            lines.append(ngettext("Today: {n} video (no daily quota).",
                                  "Today: {n} videos (no daily quota).", standing.today))
        if policy.max_concurrent:
            lines.append(_("In progress: {active} of {limit}{set_by}.",
                           active=number(standing.active), limit=number(policy.max_concurrent),
                           set_by=set_by(policy, "max_concurrent")))
        wait = (standing.next_allowed_at or 0) - now
        if wait > 0:
            lines.append(_("Next video in {wait} (cooldown).", wait=duration_text(wait)))
        left = standing.budget_left
        if left is not None:
            lines.append(_("Server budget: {left} left of {budget}{set_by} this month.",
                           left=money(left), budget=money(policy.monthly_budget_usd),
                           set_by=set_by(policy, "monthly_budget_usd")))
        await interaction.edit_original_response(content="\n".join(lines),
                                                 allowed_mentions=discord.AllowedMentions.none())


def summary(line: Line) -> str:
    """``2 jobs · 5 s of video · $0.63 · 1 failed · 0 cancelled`` (and the jobs without a known
    price, and the simulated ones, when there are)."""
    seconds = f"{line.seconds:g}" if in_source() else number(line.seconds)
    parts = [ngettext("{n} job", "{n} jobs", line.jobs),
             _("{seconds} s of video", seconds=seconds), money(line.cost_usd),
             ngettext("{n} failed", "{n} failed", line.failures),
             ngettext("{n} cancelled", "{n} cancelled", line.cancellations)]
    if line.unpriced:
        parts.append(ngettext("{n} without a known price", "{n} without a known price",
                              line.unpriced))
    if line.simulated:
        parts.append(ngettext("{n} simulated", "{n} simulated", line.simulated))
    return " · ".join(parts)


async def setup(bot: commands.Bot) -> None:
    await bot.add_cog(Usage(cast(VideoBot, bot)))
