"""The daily usage rollup, read for reports: a few rows per day however many jobs there were."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Literal

from bot.store.database import Database, Row

GroupBy = Literal["user", "model", "day"]
_KEYS: dict[GroupBy, str] = {"user": "user_id", "model": "command", "day": "day"}
_SUMS = ("SUM(jobs), SUM(seconds), SUM(cost_usd), SUM(failures), SUM(cancellations),"
         " SUM(unpriced), SUM(simulated * jobs)")


@dataclass(frozen=True)
class Line:
    key: str
    jobs: int
    seconds: float
    cost_usd: float
    failures: int
    cancellations: int
    unpriced: int
    simulated: int


@dataclass(frozen=True)
class UsageRows:
    lines: list[Line]
    cost_by_day: dict[str, dict[str, float]]  # day -> model -> USD


async def usage_rows(db: Database, guild_id: int, first: date, last: date, group_by: GroupBy,
                     user_id: int | None = None) -> UsageRows:
    """The guild's usage from ``first`` to ``last`` (inclusive; only ``user_id``'s when
    given), one line per ``group_by`` key, and the cost per day and model; read in one
    snapshot."""
    where = "guild_id = ? AND day BETWEEN ? AND ?"
    params: list[object] = [guild_id, first.isoformat(), last.isoformat()]
    if user_id is not None:
        where += " AND user_id = ?"
        params.append(user_id)
    key = _KEYS[group_by]
    order = "key" if group_by == "day" else "SUM(cost_usd) DESC, key"
    async with db.report() as reader:
        lines = [_line(row) for row in await reader.fetch(
            f"SELECT {key} AS key, {_SUMS} FROM usage_daily WHERE {where}"  # noqa: S608
            f" GROUP BY {key} ORDER BY {order}", *params)]
        by_day: dict[str, dict[str, float]] = {}
        for row in await reader.fetch(
            f"SELECT day, command, SUM(cost_usd) FROM usage_daily WHERE {where}"  # noqa: S608
            " GROUP BY day, command ORDER BY day", *params,
        ):
            by_day.setdefault(str(row[0]), {})[str(row[1])] = float(row[2])
    return UsageRows(lines, by_day)


def _line(row: Row) -> Line:
    return Line(str(row[0]), int(row[1]), float(row[2]), float(row[3]), int(row[4]),
                int(row[5]), int(row[6]), int(row[7]))
