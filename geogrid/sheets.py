"""Reports as spreadsheets: XLSX for Excel and WPS, and CSV (UTF-8 with a BOM).

Headers are Chinese by default, English with ``language="en"``. Counts are numbers,
rates are numbers shown as percentages. Text that a spreadsheet would run as a formula
(starting with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return — an area name
typed by a planner, an alert quoting a file) is written as text: in XLSX a cell typed as
a string with the quote prefix set, in CSV with a leading ``'``. Reports never carry
reporters' contacts, so neither do these files.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

import openpyxl
import pandas as pd
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter

from geogrid.errors import InputError
from geogrid.reports import COLUMNS, Report
from geogrid.workdays import SHANGHAI

LANGUAGES = ("zh_CN", "en")
#: Text starting with one of these is run as a formula by Excel, WPS or LibreOffice.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")

HEADERS = {
    "code": ("单位编码", "Code"),
    "name": ("名称", "Name"),
    "received": ("收件数", "Received"),
    "accept_due": ("应受理数", "Due to be accepted"),
    "accepted_on_time": ("按时受理数", "Accepted on time"),
    "accept_on_time_rate": ("按时受理率", "On-time acceptance"),
    "resolve_due": ("应办结数", "Due to be resolved"),
    "resolved_on_time": ("按时办结数", "Resolved on time"),
    "resolve_on_time_rate": ("按时办结率", "On-time resolution"),
    "overdue_now": ("当前超期数", "Overdue now"),
    "resolved": ("办结数", "Resolved"),
    "median_resolve_days": ("办结用时中位数(工作日)", "Median working days to resolve"),
    "escalations": ("升级次数", "Escalations"),
    "evaluated": ("评价数", "Evaluated"),
    "satisfied": ("满意数", "Satisfied"),
    "satisfaction_rate": ("满意率", "Satisfaction"),
    "reopened": ("重新办理数", "Reopened"),
    "repeat_locations": ("重复点位件数", "Repeat locations"),
    "rejected": ("不予受理数", "Rejected"),
    "score": ("得分", "Score"),
    "rank": ("排名", "Rank"),
    "in_generation": ("备注", "Note"),
}
ALERT_HEADERS = {
    "kind": ("类别", "Kind"),
    "message": ("说明", "Message"),
    "incident_id": ("事件编号", "Incident"),
    "code": ("网格编码", "Grid code"),
    "reported_at": ("上报时间", "Reported at"),
}
_WORDS = {
    "daily": ("日报", "Daily report"),
    "weekly": ("周报", "Weekly report"),
    "monthly": ("月报(月评比)", "Monthly report"),
    "county": ("区县", "county"),
    "township": ("街道/乡镇", "township"),
    "community": ("社区/村", "community"),
    "grid": ("网格", "grid"),
    "recorded": ("按上报时网格归属", "as recorded"),
    "current": ("按现行网格重新归属", "re-attributed to current grids"),
    "calendar_not_covered": ("工作日历未覆盖", "calendar not covered"),
    "deadline_alert": ("无法计算时限", "no deadline"),
    "awaiting_placement": ("待定位(网格外)", "awaiting placement"),
    "unmapped_grid": ("无继承网格", "grid without successor"),
    "total": ("合计", "Total"),
    "gone": ("当前版本无此单位", "not in the current generation"),
    "units": ("单位", "Units"),
    "alerts": ("提醒", "Alerts"),
    "category": ("类别", "category"),
    "generation": ("网格版本", "generation"),
    "as_of": ("统计时间", "as of"),
}
_RATES = ("accept_on_time_rate", "resolve_on_time_rate", "satisfaction_rate")
_DECIMALS = ("median_resolve_days", "score")
_FORMATS = {**dict.fromkeys(_RATES, "0.0%"), **dict.fromkeys(_DECIMALS, "0.00")}


def write_report_xlsx(report: Report, path: str | Path, *, language: str = "zh_CN") -> None:
    """Write the report as an XLSX workbook: the units, then a sheet of alerts."""
    lang = _language(language)
    workbook = openpyxl.Workbook(write_only=True)
    units = workbook.create_sheet(_word("units", lang))
    headers = [HEADERS[column][lang] for column in COLUMNS]
    formats = [_FORMATS.get(column) for column in COLUMNS]
    _sheet(units, title(report, language), headers, _unit_rows(report, lang), formats)
    alerts = workbook.create_sheet(_word("alerts", lang))
    headers = [pair[lang] for pair in ALERT_HEADERS.values()]
    formats = [None, None, None, None, "yyyy-mm-dd hh:mm"]
    _sheet(alerts, title(report, language), headers, _alert_rows(report, lang), formats)
    workbook.save(path)


def write_report_csv(report: Report, path: str | Path, *, language: str = "zh_CN") -> None:
    """Write the units and the totals as CSV, UTF-8 with a BOM so that Excel reads Chinese."""
    lang = _language(language)
    with Path(path).open("w", encoding="utf-8-sig", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow([_csv_cell(HEADERS[column][lang], None) for column in COLUMNS])
        for row in _unit_rows(report, lang):
            writer.writerow(
                [_csv_cell(value, column) for value, column in zip(row, COLUMNS, strict=True)]
            )


def title(report: Report, language: str = "zh_CN") -> str:
    """The title line: kind, period, level, the category if just one, attribution, generation."""
    lang = _language(language)
    parts = [f"{_word(report.kind, lang)} {report.period.label}", _word(report.level, lang)]
    if report.category is not None:
        name = (report.category.name_zh, report.category.name_en)[lang]
        parts.append(f"{_word('category', lang)} {name}")
    parts += [
        _word(report.attribution, lang),
        f"{_word('generation', lang)} {report.generation}",
        f"{_word('as_of', lang)} {_local(report.now):%Y-%m-%d %H:%M}",
    ]
    return " · ".join(parts)


# -- rows ------------------------------------------------------------------------------------


def _unit_rows(report: Report, lang: int) -> Iterable[list[Any]]:
    table = report.table
    gone = _word("gone", lang)
    for record in table.itertuples(index=False):
        values = dict(zip(table.columns, record, strict=True))
        values["in_generation"] = "" if values["in_generation"] else gone
        yield [_plain(values[column]) for column in COLUMNS]
    totals = {**report.totals, "code": _word("total", lang), "name": "", "score": None}
    totals.update(rank=None, in_generation="")
    yield [_plain(totals.get(column)) for column in COLUMNS]


def _alert_rows(report: Report, lang: int) -> Iterable[list[Any]]:
    for alert in report.alerts:
        when = _local(alert.reported_at).replace(tzinfo=None) if alert.reported_at else None
        yield [_word(alert.kind, lang), alert.message, alert.incident_id, alert.code, when]


# -- XLSX --------------------------------------------------------------------------------------


def _sheet(
    worksheet: Any,
    heading: str,
    headers: list[str],
    rows: Iterable[list[Any]],
    formats: list[str | None],
) -> None:
    """A title row, a bold header row frozen with the first two columns, then the rows."""
    widths = [_width(header) for header in headers]
    bold = Font(bold=True)
    first = WriteOnlyCell(worksheet, value=_text(heading))
    first.font = Font(bold=True, size=13)
    lines = [[_header_cell(worksheet, header, bold) for header in headers]]
    for row in rows:
        lines.append([_xlsx_value(worksheet, v, f) for v, f in zip(row, formats, strict=True)])
        widths = [max(w, _width(value)) for w, value in zip(widths, row, strict=True)]
    # Panes and column widths must be set before the first row of a write-only sheet.
    worksheet.freeze_panes = "C3"
    for number, width in enumerate(widths, start=1):
        worksheet.column_dimensions[get_column_letter(number)].width = min(width + 2, 60)
    worksheet.append([first])
    for line in lines:
        worksheet.append(line)


def _header_cell(worksheet: Any, header: str, font: Font) -> Any:
    cell = WriteOnlyCell(worksheet, value=header)
    cell.font = font
    return cell


def _xlsx_value(worksheet: Any, value: Any, number_format: str | None) -> Any:
    """The value itself, or a cell when it needs a number format or must stay text."""
    if isinstance(value, str):
        value = _text(value)
        if not value.startswith(FORMULA_STARTS):
            return value
        # Typed as a string and marked "text as typed": never evaluated, even once edited.
        cell = WriteOnlyCell(worksheet, value=value)
        cell.data_type = "s"
        cell.quotePrefix = True
        return cell
    if number_format is None or not isinstance(value, float | datetime):
        return value
    cell = WriteOnlyCell(worksheet, value=value)
    cell.number_format = number_format
    return cell


def _width(value: Any) -> int:
    if value is None:
        return 0
    if not isinstance(value, str):
        return 10  # numbers, as formatted, and dates
    # CJK characters take two columns.
    return min(sum(2 if ord(ch) > 0x2E7F else 1 for ch in value[:80]), 80)


# -- CSV ---------------------------------------------------------------------------------------


def _csv_cell(value: Any, column: str | None) -> str:
    if value is None:
        return ""
    if column in _RATES and isinstance(value, float):
        return f"{value:.2%}"
    if column in _DECIMALS and isinstance(value, float):
        return f"{value:.2f}"
    text = str(value)
    return "'" + text if isinstance(value, str) and text.startswith(FORMULA_STARTS) else text


# -- helpers -----------------------------------------------------------------------------------


def _language(language: str) -> int:
    if language not in LANGUAGES:
        raise InputError(f"language is zh_CN or en, not {language!r}", field="language")
    return LANGUAGES.index(language)


def _word(key: str, lang: int) -> str:
    return _WORDS.get(key, (key, key))[lang]


def _text(value: str) -> str:
    # Control characters cannot be stored in XLSX at all.
    return ILLEGAL_CHARACTERS_RE.sub("", value)


def _local(moment: datetime) -> datetime:
    return moment.astimezone(SHANGHAI)


def _plain(value: Any) -> Any:
    if value is None or value is pd.NA:
        return None
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and value != value:
        return None
    return value
