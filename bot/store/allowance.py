"""What a member and a guild have used so far, for the rules checked before a job is paid for
(``bot.limits``): the member's jobs today, open and latest, the guild's spending (and the key it
pays with, when its own), and the operator's account's."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bot.store.database import Dialect, Tx
from bot.store.jobs import OPEN_STATES_SQL
from bot.store.keys import KEY_COLUMNS, StoredKey, stored_key
from bot.store.settings import SETTINGS_SQL, decode_settings

# Finished jobs count as the daily rollup has them (real cost, else the estimate; nothing when
# failed or cancelled), open ones at their estimate; and the server's own key, if any.
PURSE_SQL = f"""
    SELECT (SELECT COALESCE(SUM(cost_usd), 0) FROM usage_daily
            WHERE guild_id = ? AND day >= ? AND simulated = 0)
         + (SELECT COALESCE(SUM(COALESCE(cost_usd, estimated_usd, 0)), 0)
            FROM jobs INDEXED BY jobs_open
            WHERE state IN ({OPEN_STATES_SQL})
              AND guild_id = ? AND created_at >= ? AND simulated = 0),
           {", ".join(f"k.{column}" for column in KEY_COLUMNS.split(", "))}
    FROM (SELECT 1 AS one) AS guild LEFT JOIN guild_keys AS k ON k.guild_id = ?"""  # noqa: S608
_OPERATORS_OPEN = f"""FROM jobs INDEXED BY jobs_operators_open
            WHERE state IN ({OPEN_STATES_SQL}) AND created_at >= ? AND simulated = 0
              AND runcomfy_key IS NULL"""
# Today's and this month's, in one statement: the rollup of finished jobs, and open ones, each
# read once.
ACCOUNT_SQL = f"""
    SELECT made.today + held.today AS today, made.month + held.month AS month
    FROM (SELECT COALESCE(SUM(CASE WHEN day >= ? THEN cost_usd ELSE 0 END), 0) AS today,
                 COALESCE(SUM(cost_usd), 0) AS month
          FROM account_daily WHERE day >= ?) AS made,
         (SELECT COALESCE(SUM(CASE WHEN created_at >= ?
                                   THEN COALESCE(cost_usd, estimated_usd, 0) ELSE 0 END), 0)
                 AS today,
                 COALESCE(SUM(COALESCE(cost_usd, estimated_usd, 0)), 0) AS month
          {_OPERATORS_OPEN}) AS held"""  # noqa: S608
# The advisory lock every admission on the operator's key takes when the account has caps (no
# guild id is 0), on PostgreSQL, in ``account_spent_locked`` (migration 0010: ``ACCOUNT_SQL``
# after the lock, each with a snapshot of its own, in one round trip; the lock shared while
# the account is far from its caps, exclusive near them); SQLite's one writer is held already.
ACCOUNT_LOCK = 0
ACCOUNT_SOURCES: dict[Dialect, str] = {
    "sqlite": f"({ACCOUNT_SQL})",
    "postgresql": "account_spent_locked(?, ?, ?, ?, ?, ?, ?, ?)",
}
MEMBER_SQL = f"""
    SELECT SUM(CASE WHEN created_at >= ? AND state NOT IN ('failed', 'cancelled')
                    THEN 1 ELSE 0 END) AS today,
           SUM(CASE WHEN state IN ({OPEN_STATES_SQL}) THEN 1 ELSE 0 END) AS active,
           (SELECT created_at FROM jobs WHERE guild_id = ? AND user_id = ?
            ORDER BY created_at DESC LIMIT 1) AS last_at
    FROM jobs WHERE guild_id = ? AND user_id = ? AND created_at >= ?"""  # noqa: S608
# The member's use, the guild's purse and its stored settings (a row each, or one row with no
# setting), in one statement: everything the admission reads of the guild in one round trip.
HOLDINGS_SQL = f"""
    SELECT member.today, member.active, member.last_at, purse.*, settings.*
    FROM ({MEMBER_SQL}) AS member CROSS JOIN ({PURSE_SQL}) AS purse
    LEFT JOIN ({SETTINGS_SQL}) AS settings ON 1 = 1"""  # noqa: S608


@dataclass(frozen=True)
class MemberUse:
    today: int  # jobs since the start of the day, failed and cancelled ones aside
    active: int  # open jobs
    last_at: float | None  # when the latest job was asked for


@dataclass(frozen=True)
class Purse:
    spent: float  # USD spent (or reserved) since the month began
    key: StoredKey | None  # the server's own RunComfy key, as stored


@dataclass(frozen=True)
class Holdings:
    use: MemberUse
    purse: Purse
    settings: dict[str, Any]  # the guild's stored settings (``bot.store.settings``)


async def holdings(reader: Tx, guild_id: int, user_id: int, *, day_start: float, since: float,
                   month_day: str, month_start: float) -> Holdings:
    """The member's jobs (counted from ``since``: early enough for the day and any job still
    open; the latest at all), what the guild spent (or has reserved) since the month began
    (``month_day``: its ISO date, ``month_start``: its unix time), the key it pays with, if
    its own, and its settings: in one statement."""
    rows = await reader.fetch(HOLDINGS_SQL, day_start, guild_id, user_id, guild_id, user_id,
                              since, guild_id, month_day, guild_id, month_start, guild_id,
                              guild_id)
    first = rows[0]  # one row at least, always
    use = MemberUse(int(first[0] or 0), int(first[1] or 0),
                    None if first[2] is None else float(first[2]))
    purse = Purse(float(first[3]), stored_key(first, 4))
    settings = decode_settings((row[8], row[9]) for row in rows if row[8] is not None)
    return Holdings(use, purse, settings)


def account_fits(dialect: Dialect, *, day: str, day_start: float, month: str,
                 month_start: float, estimate: float, daily: float, monthly: float,
                 slack: float) -> tuple[str, tuple[float | str, ...]]:
    """A condition (SQL and its values) that holds while ``estimate`` more fits under the
    account's ``daily`` and ``monthly`` caps (0: none; one at least), give or take ``slack``,
    for the statement that writes the job down: the account held, its sums read and the job
    added at once."""
    caps = [(column, cap) for column, cap in (("today", daily), ("month", monthly)) if cap]
    where = " AND ".join(f"? - (? - {column}) <= ?" for column, _ in caps)
    values = [value for _, cap in caps for value in (estimate, cap, slack)]
    lock = (ACCOUNT_LOCK, estimate, daily, monthly) if dialect == "postgresql" else ()
    return (f"EXISTS (SELECT 1 FROM {ACCOUNT_SOURCES[dialect]} AS spent WHERE {where})",  # noqa: S608
            (day, month, day_start, month_start, *lock, *values))


async def account_spent(reader: Tx, *, day: str, day_start: float, month: str,
                        month_start: float) -> tuple[float, float]:
    """USD spent (or reserved) on the operator's account by every server today and this
    month (ISO dates, and their unix times): jobs on a server's own key are not the
    operator's."""
    row = await reader.fetchrow(ACCOUNT_SQL, day, month, day_start, month_start)
    return (float(row[0]), float(row[1])) if row else (0.0, 0.0)
