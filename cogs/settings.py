"""``/settings``: what moderators (Manage Server) can change for their server."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Literal, cast

import discord
from discord import app_commands
from discord.ext import commands

from bot.blocklist import MAX_RULES
from bot.discord.client import VideoBot
from bot.discord.forms import Form, Report
from bot.errors import UserError
from bot.i18n import LANGUAGES, _, money, ngettext, number, units
from bot.limits import set_by
from bot.policy import MAX_TIERS, BlockRule, Policy, Tier

SERVER_LANGUAGE = "server"  # /settings language: the server's own Discord language


def _toggle(values: tuple[int, ...] | tuple[str, ...], item: Any, on: bool) -> list[Any]:
    kept = [v for v in values if v != item]
    return [*kept, item] if on else kept


@app_commands.default_permissions(manage_guild=True)  # what Discord shows; checked below too
@app_commands.guild_only()
class Settings(commands.GroupCog, group_name="settings",
               group_description="Server settings for videos (Manage Server)"):
    def __init__(self, bot: VideoBot) -> None:
        self.bot = bot
        super().__init__()

    async def interaction_check(self, interaction: discord.Interaction) -> bool:
        """Checked here, on the server: Discord's default permissions can be changed."""
        if interaction.guild_id is None:
            raise app_commands.NoPrivateMessage()
        if not interaction.permissions.manage_guild:
            raise app_commands.MissingPermissions(["manage_guild"])
        opens_form = interaction.command is not None and \
            interaction.command.name == "runcomfy-key" and not _removing(interaction)
        if interaction.type is discord.InteractionType.application_command and not opens_form:
            # Answer Discord first: every subcommand reads or writes the guild's settings,
            # and a write waits for the guild's lock (held while a job is admitted).
            await interaction.response.defer(ephemeral=True, thinking=True)
        return True

    async def _update(self, interaction: discord.Interaction,
                      change: Callable[[Policy], dict[str, Any]]) -> Policy:
        """Change settings from their current values (atomically: see ``PolicyStore.update``)."""
        assert interaction.guild_id is not None
        return await self.bot.parts.policies.update(interaction.guild_id, interaction.user.id,
                                                    change)

    async def _policy(self, interaction: discord.Interaction) -> Policy:
        assert interaction.guild_id is not None
        return await self.bot.parts.policies.get(interaction.guild_id)

    async def _done(self, interaction: discord.Interaction, text: str) -> None:
        await interaction.edit_original_response(content=text,
                                                 allowed_mentions=discord.AllowedMentions.none())

    async def model_names(self, interaction: discord.Interaction,
                          current: str) -> list[app_commands.Choice[str]]:
        return [app_commands.Choice(name=f"{m.command} ({m.name})", value=m.command)
                for m in self.bot.catalog if current.lower() in m.command][:25]

    @app_commands.command(name="show", description="Show this server's video settings.")
    async def show(self, interaction: discord.Interaction) -> None:
        assert interaction.guild_id is not None
        embed = describe(await self._policy(interaction), self.bot)
        ending = await self.bot.parts.keys.ending(interaction.guild_id)
        embed.add_field(name=_("RunComfy key"), value=_("this server's own, ending {ending}",
                                                        ending=ending[1:])
                        if ending else _("the bot's"), inline=False)
        await interaction.edit_original_response(embed=embed)

    @app_commands.command(name="runcomfy-key",
                          description="Make and pay for this server's videos with its own "
                          "RunComfy key (or remove it).")
    @app_commands.describe(remove="Remove the server's key: videos use the bot's again")
    async def runcomfy_key(self, interaction: discord.Interaction, remove: bool = False) -> None:
        assert interaction.guild_id is not None
        keys = self.bot.parts.keys
        if remove:
            gone = await keys.remove(interaction.guild_id, interaction.user.id)
            await self._done(interaction, _("This server has no RunComfy key of its own.")
                             if gone is None else _("This server's RunComfy key (ending "
                                                    "{ending}) is removed; new videos use the "
                                                    "bot's.", ending=gone[1:]))
            return
        await interaction.response.send_modal(KeyModal(self._set_key,
                                                       self.bot.parts.errors.report))

    async def _set_key(self, interaction: discord.Interaction, key: str) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)  # RunComfy is asked
        assert interaction.guild_id is not None
        ending = await self.bot.parts.keys.set(interaction.guild_id, interaction.user.id, key)
        await self._done(interaction, _("This server's RunComfy key (ending {ending}) is set: "
                                        "its new videos are made and paid with it.",
                                        ending=ending[1:]))

    @app_commands.command(name="model", description="Turn a model on or off for this server.")
    @app_commands.describe(model="The model's slash command", enabled="On or off")
    @app_commands.autocomplete(model=model_names)
    async def model(self, interaction: discord.Interaction, model: str, enabled: bool) -> None:
        commands_ = [m.command for m in self.bot.catalog]
        if model not in commands_:
            raise UserError(_("There is no model `{model}`.", model=model))

        def change(policy: Policy) -> dict[str, Any]:
            chosen = _toggle(tuple(policy.enabled_models or commands_), model, enabled)
            if not chosen:
                raise UserError(_("At least one model must stay on."))
            return {"enabled_models": [] if set(chosen) == set(commands_) else sorted(chosen)}

        await self._update(interaction, change)
        await self._done(interaction, _("`{model}` is now on.", model=model) if enabled else
                         _("`{model}` is now off.", model=model))

    @app_commands.command(name="role", description="Allow a role to make videos (none: all).")
    async def role(self, interaction: discord.Interaction, role: discord.Role,
                   allowed: bool) -> None:
        await self._update(interaction, lambda policy: {
            "allowed_roles": _toggle(policy.allowed_roles, role.id, allowed)})
        await self._done(interaction, _(
            "{role} may make videos (when no role is listed, everyone may).", role=role.mention)
            if allowed else _("{role} no longer may make videos (when no role is listed, "
                              "everyone may).", role=role.mention))

    @app_commands.command(name="channel",
                          description="Allow videos in a channel (none listed: everywhere).")
    async def channel(self, interaction: discord.Interaction, channel: discord.TextChannel,
                      allowed: bool) -> None:
        await self._update(interaction, lambda policy: {
            "allowed_channels": _toggle(policy.allowed_channels, channel.id, allowed)})
        await self._done(interaction, _(
            "Videos are allowed in {channel} (when no channel is listed, everywhere).",
            channel=channel.mention) if allowed else _(
            "Videos are not allowed in {channel} (when no channel is listed, everywhere).",
            channel=channel.mention))

    @app_commands.command(name="block", description="Stop (or let again) a member making videos.")
    async def block(self, interaction: discord.Interaction, member: discord.Member,
                    blocked: bool) -> None:
        await self._update(interaction, lambda policy: {
            "blocked_users": _toggle(policy.blocked_users, member.id, blocked)})
        await self._done(interaction, _("{member} is blocked.", member=member.mention)
                         if blocked else _("{member} is unblocked.", member=member.mention))

    @app_commands.command(name="blocklist",
                          description="Add or remove a word or regular expression for prompts.")
    @app_commands.describe(pattern="A word, or a regular expression with regex:true")
    async def blocklist(self, interaction: discord.Interaction, action: Literal["add", "remove"],
                        pattern: app_commands.Range[str, 1, 200], regex: bool = False) -> None:
        rule = BlockRule.parse(pattern.strip(), regex)  # refused here, not at the next prompt

        def change(policy: Policy) -> dict[str, Any]:
            rules = [r for r in policy.prompt_blocklist if r != rule]
            if action == "add":
                if len(rules) >= MAX_RULES:
                    raise UserError(ngettext(
                        "The prompt blocklist holds at most {n} rule; remove one first.",
                        "The prompt blocklist holds at most {n} rules; remove one first.",
                        MAX_RULES))
                rules.append(rule)
            elif len(rules) == len(policy.prompt_blocklist):
                raise UserError(_("`{rule}` is not on the blocklist.", rule=rule.label))
            return {"prompt_blocklist": [r.model_dump() for r in rules]}

        await self._update(interaction, change)
        await self._done(interaction, _("`{rule}` added to the prompt blocklist.",
                                        rule=rule.label) if action == "add" else
                         _("`{rule}` removed from the prompt blocklist.", rule=rule.label))

    @app_commands.command(name="limits", description="Quota, concurrency, cooldown and budget "
                          "(0 means no limit).")
    @app_commands.describe(daily_quota="Videos per member per UTC day",
                           max_concurrent="Videos a member may have in progress at once",
                           cooldown_seconds="Seconds between two videos of a member",
                           monthly_budget_usd="What the server may spend per month, in USD")
    async def limits(self, interaction: discord.Interaction,
                     daily_quota: app_commands.Range[int, 0, 10_000] | None = None,
                     max_concurrent: app_commands.Range[int, 0, 100] | None = None,
                     cooldown_seconds: app_commands.Range[int, 0, 86_400] | None = None,
                     monthly_budget_usd: app_commands.Range[float, 0, 1_000_000] | None = None,
                     ) -> None:
        given = {"daily_quota": daily_quota, "max_concurrent": max_concurrent,
                 "cooldown_seconds": cooldown_seconds, "monthly_budget_usd": monthly_budget_usd}
        changes = {k: v for k, v in given.items() if v is not None}
        if not changes:
            raise UserError(_("Give at least one of the limits to change."))
        policy = await self._update(interaction, lambda _policy: changes)
        await interaction.edit_original_response(
            embed=describe(self.bot.parts.policies.ceilings.bound(policy), self.bot))

    @app_commands.command(name="tier", description="A role's own limits (0 means no limit), "
                          "instead of the server's; still under the bot's ceilings.")
    @app_commands.describe(role="The role", daily_quota="Videos per member per UTC day",
                           max_concurrent="Videos a member may have in progress at once",
                           cooldown_seconds="Seconds between two videos of a member",
                           remove="Remove the role's tier instead")
    async def tier(self, interaction: discord.Interaction, role: discord.Role,
                   daily_quota: app_commands.Range[int, 0, 10_000] = 0,
                   max_concurrent: app_commands.Range[int, 0, 100] = 0,
                   cooldown_seconds: app_commands.Range[int, 0, 86_400] = 0,
                   remove: bool = False) -> None:
        tier = Tier(role_id=role.id, daily_quota=daily_quota, max_concurrent=max_concurrent,
                    cooldown_seconds=cooldown_seconds)

        def change(policy: Policy) -> dict[str, Any]:
            others = [t for t in policy.tiers if t.role_id != role.id]
            if remove and len(others) == len(policy.tiers):
                raise UserError(_("{role} has no tier.", role=role.mention))
            if not remove and len(others) >= MAX_TIERS:
                raise UserError(ngettext("A server has at most {n} tier; remove one first.",
                                         "A server has at most {n} tiers; remove one first.",
                                         MAX_TIERS))
            return {"tiers": [t.model_dump() for t in (others if remove else [*others, tier])]}

        policy = await self._update(interaction, change)
        await interaction.edit_original_response(
            content=_("{role} has no tier now.", role=role.mention) if remove else
            _("{role}'s tier: {tier}.", role=role.mention, tier=tier_text(tier)),
            embed=describe(self.bot.parts.policies.ceilings.bound(policy), self.bot),
            allowed_mentions=discord.AllowedMentions.none())

    @app_commands.command(name="default-model",
                          description="The model of the Animate form and of mentions.")
    @app_commands.autocomplete(model=model_names)
    async def default_model(self, interaction: discord.Interaction, model: str) -> None:
        found = [m for m in self.bot.catalog if m.command == model]
        if not found or found[0].kind != "image-to-video":
            raise UserError(_("`{model}` is not a model that animates images.", model=model))
        await self._update(interaction, lambda _policy: {"default_model": model})
        await self._done(interaction, _("The default model is now `{model}`.", model=model))

    @app_commands.command(name="language",
                          description="The language of this server's cards, videos and notices.")
    @app_commands.describe(language="Unless you choose one, the server's own Discord language")
    @app_commands.choices(language=[
        *(app_commands.Choice(name=name, value=code) for code, name in LANGUAGES.items()),
        app_commands.Choice(name="The server's Discord language", value=SERVER_LANGUAGE)])
    async def language(self, interaction: discord.Interaction,
                       language: app_commands.Choice[str]) -> None:
        assert interaction.guild_id is not None
        chosen = None if language.value == SERVER_LANGUAGE else language.value
        await self._update(interaction, lambda _policy: {"language": chosen})
        self.bot.languages.forget(interaction.guild_id)
        if chosen is None:
            await self._done(interaction, _("Cards, videos and notices here now follow the "
                                            "server's Discord language."))
        else:
            await self._done(interaction, _("Cards, videos and notices here are now in {name}.",
                                            name=language.name))

    @app_commands.command(name="audit", description="Who changed which setting, and when.")
    async def audit(self, interaction: discord.Interaction) -> None:
        assert interaction.guild_id is not None
        changes = await self.bot.parts.policies.audit(interaction.guild_id)
        # The setting's key and its values are as stored (the key is the setting's name).
        lines = [f"<t:{int(c.at)}:f> <@{c.user_id}> `{c.key}`: {c.old or _('(default)')} → "
                 f"{c.new}" for c in changes] or [_("No changes yet.")]
        await interaction.edit_original_response(
            embed=discord.Embed(title=_("Settings changes"),
                                description="\n".join(lines)[:4000]))


def _removing(interaction: discord.Interaction) -> bool:
    return getattr(interaction.namespace, "remove", False) is True


class KeyModal(Form):
    """One text input; the key is checked with RunComfy, then kept sealed (never shown)."""

    def __init__(self, submit: Callable[[discord.Interaction, str], Awaitable[None]],
                 report: Report) -> None:
        # Made in the member's interaction, so in their language.
        super().__init__(title=_("This server's RunComfy key"), timeout=600, report=report)
        self.key: discord.ui.TextInput[KeyModal] = discord.ui.TextInput(
            label=_("RunComfy API key"), placeholder=_("From your RunComfy account's API page"),
            min_length=8, max_length=512, custom_id="key")
        self.add_item(self.key)
        self.submit = submit

    async def submitted(self, interaction: discord.Interaction) -> None:
        await self.submit(interaction, self.key.value)


def describe(policy: Policy, bot: VideoBot) -> discord.Embed:
    def listing(items: list[str]) -> str:
        return ", ".join(items) if items else _("any")

    def limit(value: int, unlimited: str) -> str:
        return number(value) if value else unlimited

    default = policy.default_model or bot.settings.bot.default_model
    embed = discord.Embed(title=_("Video settings"), colour=discord.Colour.blurple())
    embed.add_field(name=_("Models"), value=listing([f"`{m}`" for m in policy.enabled_models]))
    embed.add_field(name=_("Default model"), value=f"`{default}`")
    embed.add_field(name=_("Roles"), value=listing([f"<@&{r}>" for r in policy.allowed_roles]))
    embed.add_field(name=_("Channels"),
                    value=listing([f"<#{c}>" for c in policy.allowed_channels]))
    embed.add_field(name=_("Blocked members"),
                    value=", ".join(f"<@{u}>" for u in policy.blocked_users) or _("none"))
    embed.add_field(name=_("Prompt blocklist"),
                    value=", ".join(f"`{r.label}`" for r in policy.prompt_blocklist)
                    or _("none"))
    embed.add_field(name=_("Daily quota"), value=limit(policy.daily_quota, _("none"))
                    + set_by(policy, "daily_quota"))
    embed.add_field(name=_("At once"), value=limit(policy.max_concurrent, _("no limit"))
                    + set_by(policy, "max_concurrent"))
    embed.add_field(name=_("Cooldown"), value=(units((policy.cooldown_seconds, "second"))
                    if policy.cooldown_seconds else _("none"))
                    + set_by(policy, "cooldown_seconds"))
    budget = money(policy.monthly_budget_usd) if policy.monthly_budget_usd else _("none")
    embed.add_field(name=_("Monthly budget"), value=budget + set_by(policy, "monthly_budget_usd"))
    embed.add_field(name=_("Role tiers"), value="\n".join(tier_text(t) for t in policy.tiers)
                    or _("none"), inline=False)
    return embed


def tier_text(tier: Tier) -> str:
    """``<@&role>: 5 a day, no limit at once, cooldown 30 s``."""
    daily = _("{count} a day", count=number(tier.daily_quota)) if tier.daily_quota else _(
        "no limit a day")
    at_once = _("{count} at once", count=number(tier.max_concurrent)) \
        if tier.max_concurrent else _("no limit at once")
    return _("<@&{role}>: {daily}, {at_once}, cooldown {cooldown}", role=tier.role_id,
             daily=daily, at_once=at_once,
             cooldown=units((tier.cooldown_seconds, "second")))


async def setup(bot: commands.Bot) -> None:
    await bot.add_cog(Settings(cast(VideoBot, bot)))
