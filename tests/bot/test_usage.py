"""The usage CSV as a moderator's spreadsheet reads it."""

from __future__ import annotations

import csv
import io
from datetime import date

from bot.usage import Line, Period, Report, to_csv


def test_a_member_name_that_looks_like_a_formula_stays_text() -> None:
    """A nickname such as ``=HYPERLINK(...)`` must not run when the CSV is opened."""
    lines = [Line(str(n), 1, 5.0, 0.25, 0, 0, 0, 0) for n in range(5)]
    report = Report(Period(date(2026, 11, 1), date(2026, 11, 30), "this month"), "user",
                    lines, Line("total", 5, 25.0, 1.25, 0, 0, 0, 0), {})
    names = ['=HYPERLINK("https://evil.example","x")', "+1", "-2", "@SUM(A1)", "Ada"]
    rows = list(csv.reader(io.StringIO(to_csv(report, lambda key: names[int(key)]).decode())))
    assert [row[0] for row in rows[1:]] == [
        '\'=HYPERLINK("https://evil.example","x")', "'+1", "'-2", "'@SUM(A1)", "Ada", "total"]
