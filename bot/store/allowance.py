"""What a member and a guild have used so far, for the rules checked before a job is paid for
(``bot.limits``): the member's jobs today, open and latest, and the guild's spending."""

from __future__ import annotations

from dataclasses import dataclass

from bot.store.database import Tx
from bot.store.jobs import OPEN_STATES_SQL

# Finished jobs count as the daily rollup has them (real cost, else the estimate; nothing when
# failed or cancelled), open ones at their estimate.
SPENT_SQL = f"""
    SELECT (SELECT COALESCE(SUM(cost_usd), 0) FROM usage_daily
            WHERE guild_id = ? AND day >= ? AND simulated = 0)
         + (SELECT COALESCE(SUM(COALESCE(cost_usd, estimated_usd, 0)), 0)
            FROM jobs INDEXED BY jobs_open
            WHERE state IN ({OPEN_STATES_SQL})
              AND guild_id = ? AND created_at >= ? AND simulated = 0)"""  # noqa: S608
_OPERATORS_OPEN = f"""FROM jobs INDEXED BY jobs_open
            WHERE state IN ({OPEN_STATES_SQL}) AND created_at >= ? AND simulated = 0
              AND runcomfy_key IS NULL"""
# Today's and this month's, in one statement: the rollup of finished jobs, and open ones.
ACCOUNT_SQL = f"""
    SELECT (SELECT COALESCE(SUM(CASE WHEN day >= ? THEN cost_usd ELSE 0 END), 0)
            FROM account_daily WHERE day >= ?)
         + (SELECT COALESCE(SUM(CASE WHEN created_at >= ?
                                     THEN COALESCE(cost_usd, estimated_usd, 0) ELSE 0 END), 0)
            {_OPERATORS_OPEN}),
           (SELECT COALESCE(SUM(cost_usd), 0) FROM account_daily WHERE day >= ?)
         + (SELECT COALESCE(SUM(COALESCE(cost_usd, estimated_usd, 0)), 0) {_OPERATORS_OPEN})"""  # noqa: S608
# The advisory lock every admission takes, after its guild's, when the account has caps: no
# guild id is 0.
ACCOUNT_LOCK = 0
MEMBER_SQL = f"""
    SELECT SUM(CASE WHEN created_at >= ? AND state NOT IN ('failed', 'cancelled')
                    THEN 1 ELSE 0 END),
           SUM(CASE WHEN state IN ({OPEN_STATES_SQL}) THEN 1 ELSE 0 END),
           MAX(created_at)
    FROM jobs WHERE guild_id = ? AND user_id = ? AND created_at >= ?"""  # noqa: S608


@dataclass(frozen=True)
class MemberUse:
    today: int  # jobs since the start of the day, failed and cancelled ones aside
    active: int  # open jobs
    last_at: float | None  # when the latest job was asked for


async def member_use(reader: Tx, guild_id: int, user_id: int, *, day_start: float,
                     since: float) -> MemberUse:
    """The member's jobs from ``since`` (early enough for the day, the cooldown and any job
    still open), counted as of ``day_start``."""
    row = await reader.fetchrow(MEMBER_SQL, day_start, guild_id, user_id, since)
    if row is None:
        return MemberUse(0, 0, None)
    return MemberUse(int(row[0] or 0), int(row[1] or 0),
                     None if row[2] is None else float(row[2]))


async def guild_spent(reader: Tx, guild_id: int, *, month_day: str, month_start: float) -> float:
    """USD the guild spent (or has reserved) since the month began (``month_day``: its
    ISO date, ``month_start``: its unix time)."""
    row = await reader.fetchrow(SPENT_SQL, guild_id, month_day, guild_id, month_start)
    return float(row[0]) if row else 0.0


async def account_spent(reader: Tx, *, day: str, day_start: float, month: str,
                        month_start: float) -> tuple[float, float]:
    """USD spent (or reserved) on the operator's account by every server today and this
    month (ISO dates, and their unix times): jobs on a server's own key are not the
    operator's."""
    row = await reader.fetchrow(ACCOUNT_SQL, day, month, day_start, month_start, month,
                                month_start)
    return (float(row[0]), float(row[1])) if row else (0.0, 0.0)
