"""Report files from already-aggregated rows (lists of dicts, bounded): CSV, XLSX (openpyxl) and one
self-contained HTML file (jinja2 template, matplotlib charts inlined as SVG, a few lines of inline script
to sort and filter the tables; no CDN, no external file: it opens offline, prints, and reads the same with
script disabled).

The rows come from :mod:`flowspark.pipelines.report`: {report: {section: [row, ...]}} plus the extras
(tag_counts, dedup_stats, rejects_per_day, storage) and a meta dict.

Units. CSV and XLSX keep every number exact (the XLSX shows integers with thousands separators). The HTML
shows what a person reads: bytes in decimal units (1 kB = 1,000 B, 1 MB = 1,000,000 B, 1 GB = 10^9 B: the
unit AWS bills data in), durations in s / min / h / d, counts with thousands separators; each rounded
cell carries its exact value in its tooltip (title) and in data-v, which sorting reads.
"""

from __future__ import annotations

import csv
import datetime as dt
import decimal
import io
import math
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Optional

from flowspark.core import protocols
from flowspark.core.detections.base import SCANS, SEVERITY_RANK
from flowspark.core.reports import DIRECTIONS, EAST_WEST, INBOUND, OUTBOUND, PUBLIC_BOTH

Rows = list[dict[str, Any]]
Results = dict[str, dict[str, Rows]]


def _cell(v: Any) -> Any:
    """A value as a spreadsheet/CSV cell: timestamps as naive UTC, everything else as is."""
    if isinstance(v, dt.datetime) and v.tzinfo is not None:
        return v.astimezone(dt.timezone.utc).replace(tzinfo=None)
    if isinstance(v, (list, tuple, dict)):
        return str(v)
    return v


def write_csv(out: Path, results: Results) -> list[Path]:
    """One CSV per section: <out>/<report>_<section>.csv (header row, then the rows)."""
    paths = []
    for report, sections in results.items():
        for section, rows in sections.items():
            path = out / csv_name(report, section)
            with path.open("w", newline="", encoding="utf-8") as fh:
                if rows:
                    w = csv.DictWriter(fh, fieldnames=list(rows[0]))
                    w.writeheader()
                    w.writerows({k: _cell(v) for k, v in r.items()} for r in rows)
            paths.append(path)
    return paths


def csv_name(report: str, section: str) -> str:
    return f"{report}_{section}.csv"


def sheet_name(report: str, section: str) -> str:
    """The XLSX sheet of a section: <report>.<section>, cut to Excel's 31 characters."""
    return f"{report}.{section}"[:31]


def _xlsx_format(col: str, values: Sequence[Any]) -> Optional[str]:
    """Excel number format of a column: integers with thousands separators (not ids: ports, ASNs), floats
    with two decimals (four below 1), timestamps as date and time; None to leave Excel's default."""
    seen = [v for v in values if v is not None]
    if not seen:
        return None
    if all(isinstance(v, dt.datetime) for v in seen):
        return "yyyy-mm-dd hh:mm:ss"
    if any(isinstance(v, bool) or not isinstance(v, (int, float, decimal.Decimal)) for v in seen):
        return None
    if col in _IDS:
        return "0"
    if all(isinstance(v, int) for v in seen):
        return "#,##0"
    return "#,##0.0000" if all(abs(float(v)) < 1 for v in seen) else "#,##0.00"


def write_xlsx(path: Path, results: Results) -> Path:
    """One workbook, one sheet per section (sheet_name). Values exact; integers shown with thousands
    separators, timestamps as date and time, the header row frozen."""
    from openpyxl import Workbook
    from openpyxl.utils import get_column_letter

    wb = Workbook()
    wb.remove(wb.active)
    for report, sections in results.items():
        for section, rows in sections.items():
            ws = wb.create_sheet(sheet_name(report, section))
            if not rows:
                ws.append(["(no rows)"])
                continue
            cols = list(rows[0])
            ws.append(cols)
            for r in rows:
                ws.append([_cell(r[c]) for c in cols])
            ws.freeze_panes = "A2"
            for i, c in enumerate(cols, 1):
                letter = get_column_letter(i)
                number_format = _xlsx_format(c, [r[c] for r in rows])
                ws.column_dimensions[letter].width = max(10, min(40, len(c) + 2, 22 if number_format else 40))
                if number_format:
                    for (cell,) in ws.iter_rows(min_row=2, min_col=i, max_col=i):
                        cell.number_format = number_format
    wb.save(path)
    return path


# ---------------------------------------------------------------- units (the HTML's; files keep exact values)

BYTE_UNITS = ("B", "kB", "MB", "GB", "TB", "PB")  # decimal: each 1,000 times the one before
UNITS_NOTE = (
    "Bytes are in decimal units: 1 kB = 1,000 B, 1 MB = 1,000,000 B, 1 GB = 1,000,000,000 B (as AWS bills "
    "data). Durations in s, min, h, d. A rounded number shows its exact value when the pointer rests on it; "
    "the CSV and XLSX hold the exact values."
)


def human_bytes(n: Optional[float]) -> str:
    """Bytes in decimal units, three significant figures at most: 999 B, 61.7 B, 1.0 kB, 12.3 MB, 123 GB."""
    if n is None:
        return ""
    x = float(n)
    sign, x = ("-" if x < 0 else ""), abs(x)
    for i, unit in enumerate(BYTE_UNITS):
        if i:
            x /= 1000
        # whole bytes, but a fraction of a small average (bytes per record: 61.7 B); 1.0 kB to 99.9 kB; 100 kB
        one_decimal = x < 99.95 and (i > 0 or x != int(x))
        text = f"{x:.1f}" if one_decimal else f"{x:.0f}"
        if float(text) < 1000 or unit == BYTE_UNITS[-1]:
            return f"{sign}{text} {unit}"
    raise AssertionError("unreachable")


def human_duration(seconds: Optional[float]) -> str:
    """A duration in its two largest units, rounded to the smaller: 45 s, 1 min 30 s, 20 h 39 min, 2 d 3 h."""
    if seconds is None:
        return ""
    s = float(seconds)
    sign, s = ("-" if s < 0 else ""), abs(s)
    if round(s) < 60:
        return f"{sign}{s:.1f} s" if s < 9.95 and s != round(s) else f"{sign}{round(s)} s"
    # (the smaller unit in seconds, how many of it make the larger, names); a tier holds durations that
    # round to less than 60 min, 24 h, or any number of days
    for small, per, limit, names in (
        (1, 60, 3600, ("min", "s")),
        (60, 60, 1440, ("h", "min")),
        (3600, 24, None, ("d", "h")),
    ):
        total = round(s / small)  # in the smaller unit
        if limit is None or total < limit:
            hi, lo = divmod(total, per)
            return f"{sign}{hi} {names[0]}" + (f" {lo} {names[1]}" if lo else "")
    raise AssertionError("unreachable")


def human_count(n: Optional[float]) -> str:
    """A count with thousands separators (a fraction with two decimals)."""
    if n is None:
        return ""
    if isinstance(n, int) or float(n) == int(n):
        return f"{int(n):,}"
    return f"{float(n):,.2f}"


def human_usd(x: Optional[float]) -> str:
    if x is None:
        return ""
    x = float(x)
    return f"${x:,.2f}" if x == 0 or abs(x) >= 0.01 else f"${x:.4f}"


def human_percent(share: Optional[float]) -> str:
    """A share (0..1) as a percentage: 12.3 %, 0.42 %."""
    if share is None:
        return ""
    p = float(share) * 100
    return f"{p:.2f} %" if abs(p) < 1 else f"{p:.1f} %"


# Numbers that are names, not quantities: no thousands separator
_IDS = {"asn", "port", "dstport", "srcport", "peer_port", "local_port", "protocol", "rank"}


def column_unit(col: str) -> str:
    """What a numeric column holds, from its name: id, bytes, duration (seconds), minutes, usd, percent or
    number."""
    words = col.split("_")
    if col in _IDS:
        return "id"
    if "bytes" in words:
        return "bytes"
    if col.endswith("_s") or col == "seconds":
        return "duration"
    if col.endswith("_minutes"):
        return "minutes"
    if col.endswith("_usd"):
        return "usd"
    if col.startswith("share"):
        return "percent"
    return "number"


_HUMAN: dict[str, Callable[[Any], str]] = {
    "bytes": human_bytes,
    "duration": human_duration,
    "minutes": lambda v: human_duration(float(v) * 60),
    "usd": human_usd,
    "percent": human_percent,
}


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float, decimal.Decimal)) and not isinstance(v, bool)


def _exact(v: Any, unit: str) -> str:
    if unit == "bytes":
        return f"{human_count(v)} bytes"
    if unit == "duration":
        return f"{human_count(v)} s"
    if unit == "minutes":
        return f"{v} min"
    return str(v)


class Cell:
    """One table cell: its text, alignment class (n: number, right; t: text, left), sort key and tooltip."""

    __slots__ = ("text", "align", "sort", "title")

    def __init__(self, text: str, align: str, sort: Any = None, title: Optional[str] = None):
        self.text, self.align, self.sort, self.title = text, align, sort, title


def cell(v: Any, col: str = "", align: Optional[str] = None) -> Cell:
    """A value as a human reads it, with its exact value as tooltip and sort key when it is rounded."""
    if v is None:
        return Cell("", align or "t", "")
    if isinstance(v, bool):
        return Cell("yes" if v else "", align or "t", int(v))
    if col == "protocol" and isinstance(v, int):
        return Cell(protocols.name(v), align or "t", v, f"protocol {v}")
    if _is_number(v):
        unit = column_unit(col)
        if unit == "id":
            return Cell(str(v), align or "n", v)
        if unit in _HUMAN:
            return Cell(_HUMAN[unit](v), align or "n", v, _exact(v, unit))
        if isinstance(v, int):
            return Cell(f"{v:,}", align or "n", v)
        f = float(v)
        if not math.isfinite(f):
            return Cell(str(f), align or "n", "")
        # two decimals (0.90, 1.11, 203.83); a small non-zero value keeps two significant figures (0.0042)
        text = f"{f:.{1 - math.floor(math.log10(abs(f)))}f}" if 0 < abs(f) < 0.01 else f"{f:,.2f}"
        return Cell(text, align or "n", f, None if float(text.replace(",", "")) == f else repr(f))
    if isinstance(v, dt.datetime):
        return Cell(v.strftime("%Y-%m-%d %H:%M"), align or "t", v.isoformat(), v.isoformat(sep=" "))
    if isinstance(v, dt.date):
        return Cell(v.isoformat(), align or "t", v.isoformat())
    return Cell(str(v), align or "t", None)


def column_align(values: Sequence[Any], col: str = "") -> str:
    """n (right) when every value of the column is a number (protocol, shown by name, is text), else t."""
    seen = [v for v in values if v is not None]
    if col == "protocol" or not seen:
        return "t"
    return "n" if all(_is_number(v) for v in seen) else "t"


# The evidence sentences (flowspark.core.reports.hunt) carry exact numbers: "2,395,650,000 bytes",
# "over 74360 s". The HTML shows them in the same units as the tables; the row's tooltip keeps the text.
_BYTES_RE = re.compile(r"(?<![\w.,])(\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)? bytes\b")
_SECONDS_RE = re.compile(r"(?<![\w.,])(\d+(?:\.\d+)?) s\b")


def human_evidence(text: Optional[str]) -> str:
    """An evidence sentence with its byte counts and seconds in human units."""
    if not text:
        return ""
    out = _BYTES_RE.sub(lambda m: human_bytes(float(m.group(0).split()[0].replace(",", ""))), text)
    return _SECONDS_RE.sub(lambda m: human_duration(float(m.group(1))), out)


# ---------------------------------------------------------------- glossary

# One line for each direction label the reports write (flowspark.core.reports.direction), and the words
# built on them. What "public" means is flowspark.core.addresses' address_class.
DIRECTION_GLOSSARY: dict[str, str] = {
    INBOUND: "only the source address is public: packets from the Internet to an address of ours "
    "(requests of Internet clients, and the answers Internet servers send back to us).",
    OUTBOUND: "only the destination address is public: packets from an address of ours to the Internet.",
    EAST_WEST: "neither address is public (private RFC 1918, shared 100.64.0.0/10, link-local, unique-local "
    "fc00::/7, loopback, multicast, reserved, or not an address at all): traffic that stays inside.",
    PUBLIC_BOTH: "both addresses are public. Counted in the split and the traffic over time, left out of "
    "north/south, the top peers and the hunt.",
    "north/south": "inbound and outbound together: exactly one side public. The north/south tables and the "
    "top peers keep ACCEPTed flows only, leave out NTP time sync and, unless configured otherwise, peers "
    "inside AWS's published prefixes.",
}
GLOSSARY_NOTES = (
    "Public: a globally routable unicast address, in none of the special-purpose blocks of RFC 6890 (IPv6: "
    "inside 2000::/3 and not documentation or benchmarking; an IPv4-mapped or NAT64 address takes its IPv4 "
    "address's class).",
    "In the hunt, direction says who opened the connection: inbound, the Internet peer is the client; "
    "outbound, our side is. Its port is the server's port.",
    "A flow is one flow key (addresses, ports, protocol, interface, action) in one time window; records are "
    "the flow log lines it holds. A runt is a flow of a single record.",
)


# ---------------------------------------------------------------- charts


def _svg(fig: Any) -> str:
    import matplotlib.pyplot as plt

    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight")
    plt.close(fig)
    text = buf.getvalue()
    return text[text.find("<svg") :]


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _figure(width: float = 9, height: float = 3.2) -> Any:
    fig, ax = _plt().subplots(figsize=(width, height))
    ax.spines[["top", "right"]].set_visible(False)
    return fig, ax


def _axis_formatter(fmt: Callable[[float], str]) -> Any:
    """Tick labels in human units (never matplotlib's 1e9 offset or scientific notation)."""
    from matplotlib.ticker import FuncFormatter

    return FuncFormatter(lambda v, _pos: fmt(v).replace(".0 ", " "))  # 10 MB, not 10.0 MB, on an axis


_UNIT_FMT: dict[str, Callable[[float], str]] = {
    "bytes": human_bytes,
    "count": human_count,
    "usd": human_usd,
}


def _barh(
    labels: Sequence[str],
    values: Sequence[float],
    xlabel: str,
    colors: Sequence[str] | None = None,
    unit: str = "count",
) -> str:
    """Horizontal bars, each labelled with its value in human units; a log scale when the values span
    more than a factor 1,000 (the small bars stay visible)."""
    if not labels:
        return ""
    fmt = _UNIT_FMT[unit]
    fig, ax = _figure(9, 0.3 * len(labels) + 0.8)
    bars = ax.barh(list(range(len(labels)))[::-1], values, color=colors or "#3b6ea8")
    ax.set_yticks(list(range(len(labels)))[::-1], labels=labels, fontsize=8)
    positive = [v for v in values if v and v > 0]
    if positive and max(positive) > 1000 * min(positive):
        ax.set_xscale("log")
        xlabel += " (log scale)"
    ax.xaxis.set_major_formatter(_axis_formatter(fmt))
    ax.bar_label(bars, labels=[fmt(v) if v else "" for v in values], fontsize=7, padding=2)
    ax.set_xlabel(xlabel)
    ax.margins(x=0.12)
    return _svg(fig)


def _ordered_directions(present: set[str]) -> list[str]:
    return [d for d in DIRECTIONS if d in present] + sorted(present - set(DIRECTIONS))


_ACTION_COLORS = {"ACCEPT": "#3b6ea8", "REJECT": "#c0392b"}


def _chart_over_time(rows: Rows) -> str:
    """Bytes per hour: one small chart per direction (one line per action), on one shared log scale, so
    no series sits on another and REJECT's small numbers show next to ACCEPT's."""
    if not rows:
        return ""
    import matplotlib.dates as mdates

    plt = _plt()
    dirs = _ordered_directions({str(r["direction"]) for r in rows})
    cols = 2 if len(dirs) > 1 else 1
    nrows = math.ceil(len(dirs) / cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(9, 2.1 * nrows + 0.5), sharex=True, sharey=True, squeeze=False)
    for ax in axes.flat[len(dirs) :]:
        ax.set_visible(False)
    handles: dict[str, Any] = {}
    for ax, d in zip(axes.flat, dirs):
        series: dict[str, dict[dt.datetime, float]] = {}
        for r in rows:
            if r["direction"] == d and (r["bytes"] or 0) > 0:
                series.setdefault(str(r["action"]), {})[r["time"]] = r["bytes"]
        for action, points in sorted(series.items()):
            xs = sorted(points)
            (line,) = ax.plot(
                xs,
                [points[x] for x in xs],
                marker=".",
                markersize=3,
                linewidth=1.1,
                label=action,
                color=_ACTION_COLORS.get(action),
            )
            handles.setdefault(action, line)
        ax.set_yscale("log")
        ax.yaxis.set_major_formatter(_axis_formatter(human_bytes))
        ax.yaxis.set_minor_formatter(_axis_formatter(lambda _v: ""))
        ax.set_title(d, fontsize=9, loc="left")
        ax.spines[["top", "right"]].set_visible(False)
        ax.tick_params(labelsize=7)
        ax.grid(axis="y", linewidth=0.3, alpha=0.5)
        locator = mdates.AutoDateLocator(maxticks=6)
        ax.xaxis.set_major_locator(locator)
        ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator, show_offset=False))
    fig.supylabel("bytes per hour (log scale)", fontsize=8)
    fig.tight_layout(rect=(0, 0, 1, 0.95))
    if handles:
        fig.legend(
            list(handles.values()), list(handles), loc="upper right", ncol=len(handles), fontsize=7, frameon=False
        )
    return _svg(fig)


def _chart_split(rows: Rows) -> str:
    """Flows and bytes by direction and action, grouped bars on a log scale, each bar labelled."""
    if not rows:
        return ""
    import numpy as np

    plt = _plt()
    dirs = _ordered_directions({str(r["direction"]) for r in rows})
    actions = sorted({str(r["action"]) for r in rows})
    fig = plt.figure(figsize=(9, 3.2))
    for k, (measure, fmt) in enumerate((("flows", human_count), ("bytes", human_bytes))):
        ax = fig.add_subplot(1, 2, k + 1)
        x = np.arange(len(dirs))
        width = 0.8 / max(len(actions), 1)
        smallest = math.inf
        for i, a in enumerate(actions):
            vals = [sum(r[measure] or 0 for r in rows if r["direction"] == d and str(r["action"]) == a) for d in dirs]
            bars = ax.bar(x + i * width, vals, width, label=a, color=_ACTION_COLORS.get(a))
            ax.bar_label(bars, labels=[fmt(v) if v else "" for v in vals], fontsize=6, padding=1)
            smallest = min([smallest, *[v for v in vals if v > 0]])
        ax.set_yscale("log")
        # the axis starts a power of ten below the smallest bar: every bar shows, none from an empty decade
        ax.set_ylim(bottom=10 ** (math.floor(math.log10(smallest)) - 1) if math.isfinite(smallest) else 0.8)
        ax.yaxis.set_major_formatter(_axis_formatter(fmt))
        ax.yaxis.set_minor_formatter(_axis_formatter(lambda _v: ""))
        ax.set_xticks(x + width * (len(actions) - 1) / 2, labels=dirs, fontsize=8)
        ax.set_title(f"{measure} (log scale)", fontsize=9)
        ax.tick_params(axis="y", labelsize=7)
        ax.spines[["top", "right"]].set_visible(False)
        ax.margins(y=0.15)
        if k == 0:
            ax.legend(fontsize=7, frameon=False)
    fig.tight_layout()
    return _svg(fig)


def _peer_label(r: dict[str, Any]) -> str:
    """A peer with its ASN organisation when the report has one (--asn-db)."""
    org = r.get("asn_org")
    return f"{r['peer']} ({org[:30]})" if org else str(r["peer"])


def _port_label(r: dict[str, Any]) -> str:
    return f"{protocols.name(int(r['protocol'])) if r.get('protocol') is not None else '?'}/{r.get('dstport')}"


# ---------------------------------------------------------------- tables


def _header(col: str) -> Any:
    """A column name as in the CSV, with break opportunities after its underscores (long names wrap)."""
    from markupsafe import Markup, escape

    return Markup("_<wbr>").join(escape(part) for part in col.split("_"))


def table_model(
    rows: Rows,
    cols: Optional[Sequence[str]] = None,
    limit: int = 50,
    more: str = "",
    wrap: Sequence[str] = (),
    human: Optional[dict[str, Callable[[Any], str]]] = None,
) -> dict[str, Any]:
    """What the template's table shows: columns (name, alignment), the first `limit` rows as Cells, and the
    note for the rows left out ("N more rows in ..."; `more` names where they are). `wrap`: text columns
    that wrap (long sentences) rather than widen the table (other text columns with values over 32 characters
    wrap in a narrower column); `human`: a text column's display function (the
    exact text stays in the tooltip)."""
    if not rows:
        return {"cols": [], "rows": [], "more": "", "wrap": (), "long": (), "why": []}
    cols = list(cols or [c for c in rows[0] if c != "computed_at"])
    aligns = {c: column_align([r.get(c) for r in rows], c) for c in cols}
    body = []
    for r in rows[:limit]:
        line = []
        for c in cols:
            v = r.get(c)
            if human and c in human and v is not None:
                shown = human[c](v)
                line.append(Cell(shown, aligns[c], str(v), str(v) if shown != str(v) else None))
            else:
                line.append(cell(v, c, aligns[c]))
        body.append(line)
    left = len(rows) - limit
    note = f"{left:,} more row{'s' if left != 1 else ''} {more or 'not shown'}" if left > 0 else ""
    # other text columns with long values (resource labels) wrap too, in a narrower column
    long = tuple(
        c for c in cols if aligns[c] == "t" and c not in wrap and any(len(x.text) > 32 for x in _column(body, cols, c))
    )
    return {
        "cols": [(c, aligns[c]) for c in cols],
        "rows": body,
        "more": note,
        "wrap": tuple(wrap),
        "long": long,
        "why": [],
    }


def _column(body: list[list[Cell]], cols: Sequence[str], col: str) -> list[Cell]:
    i = list(cols).index(col)
    return [line[i] for line in body]


def _where_more(report: str, section: str, meta: dict[str, Any], xlsx: str) -> str:
    """Where the rows a table leaves out are: the files this run wrote (meta['formats'] when the job says
    which) and the Delta table."""
    formats = meta.get("formats")
    places = []
    if formats is None or "csv" in formats:
        places.append(csv_name(report, section))
    if formats is None or "xlsx" in formats:
        places.append(f"{xlsx} (sheet {sheet_name(report, section)})")
    places.append(f"the Delta table reports/{report}/{section} of the lake")
    text = "in " + ", ".join(places[:-1]) + (" and " if len(places) > 1 else "") + places[-1]
    if formats is not None and not {"csv", "xlsx"} & set(formats):
        text += " (--format csv,xlsx writes them to files)"
    return text


_SCRIPT = """
(function () {
  document.documentElement.className += " js";
  var each = function (list, f) { Array.prototype.forEach.call(list, f); };
  var key = function (td) { var v = td.getAttribute("data-v"); return v === null ? td.textContent : v; };
  var num = function (s) { return s !== "" && isFinite(s) ? parseFloat(s) : null; };
  var cmp = function (a, b) {
    var x = num(a), y = num(b);
    if (x !== null && y !== null) return x - y;
    if (a === "" || b === "") return a === "" ? (b === "" ? 0 : 1) : -1;
    return a.localeCompare(b, undefined, { numeric: true });  // 10.0.0.9 before 10.0.0.10
  };
  each(document.querySelectorAll("table.data"), function (t) {
    var body = t.tBodies[0], heads = t.tHead.rows[0].cells;
    each(heads, function (th, i) {
      var sort = function () {
        var was = th.getAttribute("aria-sort");
        var desc = was ? was === "ascending" : th.classList.contains("n");
        each(heads, function (h) { h.removeAttribute("aria-sort"); });
        th.setAttribute("aria-sort", desc ? "descending" : "ascending");
        var rows = Array.prototype.slice.call(body.rows);
        rows.sort(function (a, b) { var r = cmp(key(a.cells[i]), key(b.cells[i])); return desc ? -r : r; });
        each(rows, function (r) { body.appendChild(r); });
      };
      th.tabIndex = 0;
      th.addEventListener("click", sort);
      th.addEventListener("keydown", function (e) { if (e.key === "Enter") sort(); });
    });
    if (body.rows.length <= 10) return;
    var box = document.createElement("input"), n = document.createElement("span");
    box.type = "search"; box.placeholder = "filter rows"; box.className = "filter"; n.className = "count";
    box.addEventListener("input", function () {
      var q = box.value.toLowerCase(), shown = 0;
      each(body.rows, function (r) {
        r.hidden = q !== "" && r.textContent.toLowerCase().indexOf(q) < 0;
        shown += r.hidden ? 0 : 1;
      });
      n.textContent = q ? shown + " of " + body.rows.length + " rows" : "";
    });
    var wrap = t.parentNode;
    wrap.parentNode.insertBefore(box, wrap);
    wrap.parentNode.insertBefore(n, wrap);
  });
})();
"""

_TEMPLATE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>flowspark report: {{ meta.range }}</title>
<style>
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 2em auto; max-width: 1600px;
       color: #222; padding: 0 1.5em; line-height: 1.35; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; } h2 { border-bottom: 2px solid #3b6ea8; padding-bottom: 0.2em;
margin-top: 2em; } h3 { font-size: 1.05em; margin-top: 1.4em; }
p, .look, .glossary { max-width: 62em; }
.meta { color: #555; font-size: 0.9em; } .note { color: #555; font-size: 0.85em; font-style: italic; }
.tbl { max-width: 100%; overflow-x: auto; margin: 0.5em 0 0.3em; }
table { border-collapse: collapse; font-size: 0.8em; }
th, td { border: 1px solid #ccc; padding: 2px 6px; white-space: nowrap; vertical-align: top; }
th { background: #eef2f7; white-space: normal; min-width: 3em; vertical-align: bottom; font-weight: 600; }
.t { text-align: left; } .n { text-align: right; font-variant-numeric: tabular-nums; }
td.wrap { white-space: normal; min-width: 26em; max-width: 48em; }
td.long { white-space: normal; min-width: 12em; max-width: 20em; }
tbody tr:nth-child(even) { background: #fafbfc; }
.jsonly { display: none; } .js .jsonly { display: inline; }
.js table.data th { cursor: pointer; } .js table.data th:hover { background: #dde5f0; }
th[aria-sort=ascending]::after { content: " \\25B2"; font-size: 0.8em; }
th[aria-sort=descending]::after { content: " \\25BC"; font-size: 0.8em; }
input.filter { display: block; font: inherit; font-size: 0.8em; padding: 1px 4px; margin-top: 0.5em; width: 16em; }
span.count { font-size: 0.8em; color: #555; }
.look { background: #fff6e0; border-left: 4px solid #e0a100; padding: 0.5em 1em; }
.look li { margin: 0.3em 0; } .flag { font-weight: bold; color: #a34000; }
.glossary { font-size: 0.85em; background: #f4f6f9; padding: 0.4em 1em; border-left: 4px solid #3b6ea8; }
.glossary dl { display: grid; grid-template-columns: max-content 1fr; gap: 0.15em 1em; margin: 0.4em 0; }
.glossary dt { font-family: monospace; font-weight: bold; } .glossary dd { margin: 0; }
.glossary p { margin: 0.3em 0; }
nav a { margin-right: 1em; font-size: 0.9em; } svg { display: block; max-width: 100%; height: auto; }
@media print { .tbl { overflow: visible; } input.filter, span.count { display: none; } td.wrap { min-width: 0; } }
</style></head><body>
<h1>flowspark report</h1>
<p class="meta">Lake {{ meta.lake }} &middot; flows {{ meta.range }} &middot; computed {{ meta.computed_at }}
 &middot; top {{ meta.top_n }}</p>
<nav>{% for id, title in toc %}<a href="#{{ id }}">{{ title }}</a>{% endfor %}</nav>

{% macro table(m) -%}
{% if not m.rows %}<p class="note">no rows</p>{% else %}
<div class="tbl"><table class="data">
<thead><tr>{% for c, a in m.cols %}<th class="{{ a }}" scope="col">{{ header(c) }}</th>{% endfor %}</tr></thead>
<tbody>
{% for line in m.rows %}<tr>{% for x in line %}{% set c = m.cols[loop.index0][0] %}<td class="{{ x.align }}
{%- if c in m.wrap %} wrap{% elif c in m.long %} long{% endif %}"
{%- if x.sort is not none %} data-v="{{ x.sort }}"{% endif %}
{%- if x.title %} title="{{ x.title }}"{% endif %}>{{ x.text }}</td>{% endfor %}</tr>
{% endfor %}</tbody></table></div>
{% if m.more %}<p class="note">{{ m.more }}</p>{% endif %}{% endif %}
{% for w in m.why %}<p class="note">Blank or left out: {{ w.columns|join(", ") }}: {{ w.why }}.</p>{% endfor %}
{%- endmacro %}

<div class="glossary" id="reading"><p><b>Reading this report.</b> {{ units_note }}
<span class="jsonly">Click a column's name to sort the rows shown, type in the box above a table to filter
them.</span></p>
<dl>{% for word, text in glossary %}<dt>{{ word }}</dt><dd>{{ text }}</dd>{% endfor %}</dl>
{% for text in glossary_notes %}<p>{{ text }}</p>{% endfor %}</div>

<h2 id="look">What to look at</h2>
{% if intel_look or findings_look or scan_look %}<div class="look"><ul>
{% for r in findings_look %}<li><span class="flag">{{ r.severity }} {{ r.detection|replace("_", " ") }}</span>
({{ r.technique }} {{ r.technique_name }}): {{ r.local or "" }}{% if r.resource %} ({{ r.resource }}){% endif %}
{% if r.local and r.peer %}and {% endif %}{{ r.peer or "" }}{% if r.country_name %} [{{ r.country_name }}]{% endif %}
&mdash; {{ r.evidence }};
{{ minute(r.first_seen) }} to {{ minute(r.last_seen) }}{% if r.days > 1 %} ({{ r.days }} days){% endif %}
<span class="note">finding {{ r.finding_id }}</span></li>{% endfor %}
{% for s in scan_look %}<li><span class="flag">{{ s.detection|replace("_", " ") }}: {{ "{:,}".format(s.total) }}
finding(s)</span> ({{ s.by_severity }}; the Internet's background scanning, in the findings table) &mdash; e.g.
{% for r in s.examples %}{{ r.severity }}: {{ r.evidence }}{% if not loop.last %}; {% endif %}{% endfor %}</li>
{% endfor %}
{% for r in intel_look %}<li><span class="flag">on the {{ r.list_name }} list</span>: {{ r.local }}
{% if r.resource %}({{ r.resource }}){% endif %} and {{ r.listed }}
({{ r.cidr }}{% if r.label %}, {{ r.label }}{% endif %}){% if r.country_name %} [{{ r.country_name }}]{% endif %}
&mdash; {{ r.flows }} flows ({{ r.accepted_flows }} accepted), {{ hbytes(r.bytes_to_listed) }} to it,
{{ hbytes(r.bytes_from_listed) }} from it, {{ minute(r.first_seen) }} to {{ minute(r.last_seen) }}; list version
{{ r.version }}, loaded {{ minute(r.loaded_at) }}</li>{% endfor %}
</ul></div>{% elif has_findings %}<p>No open finding in this range.</p>{% else %}<p class="note">The detections
have not run on this lake: run <code>flowspark findings</code> (or <code>flowspark run</code>, whose default steps
include it).</p>{% endif %}

{% if ns %}
<h2 id="traffic">Traffic over time</h2>
<p class="note">Bytes per hour, one chart per direction (see Reading this report), a line per action; the
charts share one log scale, so a small series (REJECT) shows beside a large one.</p>
{{ charts.over_time|safe }}
<h2 id="northsouth">North / south</h2>
<p class="note">Every flow by direction and action (log scale; each bar carries its value).</p>
{{ charts.split|safe }}
{{ table(t.split) }}
<h3>Top Internet peers by bytes (ACCEPT, NTP sync and AWS prefixes left out)</h3>
{{ charts.peers|safe }}
{{ table(t.peers_bytes) }}
<h3>Top Internet peers by flows</h3>
{{ table(t.peers_flows) }}
{% endif %}

{% if runts %}
<h2 id="runts">Runts (single-record flows)</h2>
{{ charts.runts_action|safe }}
{{ table(t.runts_by_action) }}
<h3>By destination port</h3>
{{ charts.runts_port|safe }}
{{ table(t.runts_by_port) }}
<h3>By source network (/24, IPv6 /64)</h3>
{{ table(t.runts_by_source_network) }}
<h3>Top scanning sources</h3>
{{ table(t.runts_top_scanners) }}
{% endif %}

{% if talkers %}
<h2 id="talkers">Talkers and NAT cost</h2>
<h3>NAT cost by AWS service</h3>
{% for n in meta.notes if not n.startswith(network_notes) %}<p class="note">{{ n }}</p>{% endfor %}
{% if talkers.nat_services is defined %}
<p>Processed: <b title="{{ '{:,}'.format(nat_total.bytes) }} bytes">{{ hbytes(nat_total.bytes) }}</b>, estimated
data-processing cost <b>${{ '%.2f'|format(nat_total.cost) }}</b>; S3/DynamoDB through gateway endpoints would
save <b>${{ '%.2f'|format(nat_total.saving) }}</b>.</p>
{{ charts.nat|safe }}
{{ table(t.nat_services) }}
<h3>Sources sending through the NAT</h3>
{{ table(t.nat_sources) }}
{% endif %}
<h3>Largest sources</h3>
{{ table(t.top_sources) }}
<h3>Largest destinations</h3>
{{ table(t.top_destinations) }}
{% endif %}

{% if hunt %}
<h2 id="hunt">Hunt: peer/port summaries</h2>
<p class="note">Flagged peer/ports first, then the largest by bytes. The summary says why a row is there;
the same rows with every evidence column follow it (that table scrolls sideways when the page is narrow).</p>
{{ table(t.hunt_summary) }}
<h3>Hunt: all evidence columns</h3>
{{ table(t.hunt_all) }}
{% if hunt_empty %}<p class="note">Empty in every row, left out: {{ hunt_empty|join(", ") }}.</p>{% endif %}
{% endif %}

{% if network %}
<h2 id="network">Network: rejects, network ACLs, encryption, Transit Gateway, cross-AZ</h2>
<p class="note">From fields the flow log records carry (reject-reason v8, encryption-status v10, the Transit
Gateway drop counters v6, az-id v4 and next-hop-az-id v11, flow-direction v5): a section is empty when the
flow logs' format leaves its field out.</p>
<h3>This range beside the previous period</h3>
{% for n in meta.notes if n.startswith("previous period") %}<p class="note">{{ n }}</p>{% endfor %}
<p class="note">The same measures over the same number of days just before the range; previous is blank when
the lake holds no flow of those days (not 0), change_share when previous is blank or 0.</p>
{{ table(t.period) }}
<h3>Rejected traffic by cause</h3>
{{ charts.reject_causes|safe }}
{{ table(t.reject_causes) }}
<h3>Top rejected (source, destination, port)</h3>
{{ table(t.top_rejected) }}
<h3>Rejected records per hour</h3>
{{ charts.rejected_over_time|safe }}
<p class="note">Per cause and hour: {{ t.rejected_over_time_where }}.</p>
<h3>Security group or network ACL: accepted traffic whose response was rejected</h3>
<p class="note">Security groups are stateful: the response to traffic they let in is always let out. A
REJECT of the response on the same interface is a network ACL's rule (AWS's flow log examples read the same
pair this way).</p>
{{ table(t.nacl_drops) }}
<h3>Encryption status (accepted traffic)</h3>
{{ charts.encryption|safe }}
{{ table(t.encryption) }}
<h3>Cleartext traffic by interface and port</h3>
{{ table(t.cleartext) }}
<h3>Transit Gateway drops</h3>
{{ charts.tgw_drops|safe }}
{{ table(t.tgw_drops) }}
<h3>Cross-AZ transfer</h3>
{% for n in meta.notes if n.startswith("cross-AZ") %}<p class="note">{{ n }}</p>{% endfor %}
{{ charts.cross_az|safe }}
{{ table(t.cross_az_pairs) }}
<h3>Interfaces sending the most across AZs</h3>
{{ table(t.cross_az) }}
<h3>Top conversations (address pairs, both directions)</h3>
<p class="note">As recorded: traffic between two of your own interfaces is recorded, and counted, at both.</p>
{{ table(t.conversations) }}
<h3>Breakdown by account, VPC, subnet, AZ and interface</h3>
<p class="note">source: where the value comes from: the records' own fields (v3+), the interfaces snapshot
('flowspark interfaces') for a VPC or subnet the records lack, or unknown.</p>
{{ table(t.breakdown) }}
<h3>Protocol mix</h3>
{{ charts.protocols|safe }}
{{ table(t.protocols) }}
<h3>Contacts with addresses on intel lists</h3>
{% for n in meta.notes if n.startswith("intel list") %}<p class="note flag">{{ n }}</p>{% endfor %}
{% if network.intel_contacts is defined %}{{ table(t.intel_contacts) }}
{% else %}<p class="note">no intel list in the lake: 'flowspark intel load --lake ... --name NAME --file LIST'
</p>{% endif %}
<h3>Data quality per day</h3>
<p class="note">From the ledger: objects read, objects read in part or not at all, record lines, rejected
lines, NODATA and SKIPDATA records (each object counted on the first day of its records), late objects (S3
got them after the end of the last day of their records and the grace below: a report of that day made
before then missed them) and the longest delivery delay after that end.</p>
{% for n in meta.notes if n.startswith("late objects") %}<p class="note">{{ n }}</p>{% endfor %}
{{ table(t.data_quality) }}
{% endif %}

<h2 id="lake">The lake</h2>
<h3>Tag counts</h3>
{% if extras.tag_counts is defined %}{{ charts.tags|safe }}{{ table(t.tag_counts) }}
{% else %}<p class="note">no tag_counts table: run 'flowspark tag --lake ...'</p>{% endif %}
<h3>Compaction ratio (dedup runs)</h3>
{% if extras.dedup_stats is defined %}{{ table(t.dedup_stats) }}
{% else %}<p class="note">no dedup_stats table</p>{% endif %}
<h3>Rejected lines per day of ingest</h3>
{% if extras.rejects_per_day %}{{ charts.rejects|safe }}{{ table(t.rejects_per_day) }}
{% else %}<p class="note">no rejected lines</p>{% endif %}
<h3>Storage (from the Delta logs)</h3>
<p class="note">Each table's current snapshot: rows, files and bytes on storage. Bytes per record divides a
table's bytes by the flow_records rows of the same days (blank once 'flowspark maintain' has dropped them);
'flowspark stats --source ...' compares with the raw gzip.</p>
{{ table(t.storage) }}
{% if extras.storage_days %}<h3>Storage per day (flows of the report's range)</h3>
{{ table(t.storage_days) }}{% endif %}
<script>{{ script|safe }}</script>
</body></html>
"""

HUNT_COLUMNS = [
    "flags",
    "peer",
    "asn",
    "asn_org",
    "country",
    "country_name",
    "peer_aws_service",
    "direction",
    "protocol",
    "port",
    "flows",
    "records",
    "bytes",
    "bytes_out",
    "local_addresses",
    "accepted_flows",
    "rejected_flows",
    "packets_per_record",
    "size_cv",
    "beacon_local",
    "beacon_local_resource",
    "beacon_intervals",
    "beacon_median_interval_s",
    "beacon_dispersion",
    "peak_hour_bytes_out",
    "baseline_hour_bytes_out",
    "evidence",
]
# The hunt's summary: what a row is and why it is there; the evidence sentence wraps.
HUNT_SUMMARY_COLUMNS = [
    "flags",
    "peer",
    "asn_org",
    "country",
    "peer_aws_service",
    "direction",
    "protocol",
    "port",
    "flows",
    "bytes",
    "bytes_out",
    "evidence",
]


NETWORK_SECTIONS = (
    "reject_causes",
    "top_rejected",
    "rejected_over_time",
    "nacl_drops",
    "encryption",
    "cleartext",
    "tgw_drops",
    "cross_az",
    "cross_az_pairs",
    "conversations",
    "breakdown",
    "protocols",
    "data_quality",
    "intel_contacts",
)


# How the network report's notes start: shown in its own section, not among the talkers' notes.
NETWORK_NOTES = ("cross-AZ", "intel list", "late objects", "previous period")


PERIOD_COLUMNS = ("measure", "current", "previous", "change", "change_share")


def _period_model(rows: Rows) -> dict[str, Any]:
    """The network report's period section as a table: each row's figures in its measure's unit (bytes for
    the byte measures, counts for the others), change_share as a signed percentage."""
    model = table_model(rows, PERIOD_COLUMNS)
    if not rows:
        return model
    model["cols"] = [(c, "t" if c == "measure" else "n") for c in PERIOD_COLUMNS]
    body = []
    for r in rows:
        unit = str(r.get("measure"))  # rejected_bytes -> bytes, flows -> a count
        share = r.get("change_share")
        shown = Cell(
            ("+" if share is not None and share > 0 else "") + human_percent(share),
            "n",
            "" if share is None else share,
            None if share is None else repr(share),
        )
        figures = [cell(r.get(c), unit, "n") for c in PERIOD_COLUMNS[1:4]]
        body.append([cell(r.get("measure"), "measure", "t"), *figures, shown])
    model["rows"] = body
    return model


def _sum_by(rows: Rows, label: str, value: str) -> tuple[list[str], list[float]]:
    """Totals of `value` per `label`, largest first (the chart of a section whose rows split a label)."""
    totals: dict[str, float] = {}
    for r in rows:
        key = str(r.get(label))
        totals[key] = totals.get(key, 0) + (r.get(value) or 0)
    ordered = sorted(totals.items(), key=lambda kv: -kv[1])
    return [k for k, _ in ordered], [v for _, v in ordered]


def _network_charts(network: dict[str, Rows]) -> dict[str, str]:
    charts: dict[str, str] = {}
    causes = network.get("reject_causes", [])
    if causes:
        labels = [str(r["cause"]) for r in causes]
        charts["reject_causes"] = _barh(labels, [r["records"] or 0 for r in causes], "records")
    over = network.get("rejected_over_time", [])
    if over:
        labels, values = _sum_by(over, "time", "records")
        pairs = sorted(zip(labels, values))[-48:]  # the last two days' hours, in time order
        charts["rejected_over_time"] = _barh([k[:16] for k, _ in pairs], [v for _, v in pairs], "rejected records")
    enc = network.get("encryption", [])
    if enc:
        charts["encryption"] = _barh(
            [f"{r['encryption_status']}: {r['meaning']}" for r in enc],
            [r["bytes"] or 0 for r in enc],
            "bytes (red: cleartext)",
            ["#c0392b" if r["encryption_status"] == 0 else "#3b6ea8" for r in enc],
            unit="bytes",
        )
    drops = network.get("tgw_drops", [])
    if drops:
        labels, values = _sum_by(drops, "cause", "packets_lost")
        charts["tgw_drops"] = _barh(labels, values, "packets lost")
    pairs_az = network.get("cross_az_pairs", [])
    if pairs_az:
        charts["cross_az"] = _barh(
            [f"{r['az_id']} -> {r['next_hop_az_id']}" for r in pairs_az[:20]],
            [r["bytes"] or 0 for r in pairs_az[:20]],
            "bytes",
            unit="bytes",
        )
    protos = network.get("protocols", [])
    if protos:
        top = protos[:12]
        names, sizes = [str(r["name"]) for r in top], [r["bytes"] or 0 for r in top]
        charts["protocols"] = _barh(names, sizes, "bytes", unit="bytes")
    return charts


_SEVERITIES = sorted(SEVERITY_RANK, key=lambda s: -SEVERITY_RANK[s])


def _scan_look(found: Rows, counts: Rows) -> Rows:
    """One line per scanning detection: how many findings per severity and up to three examples."""
    out = []
    for name in SCANS:
        per = {r["severity"]: r["count"] for r in counts if r["detection"] == name}
        if not per:
            continue
        text = ", ".join(f"{per[s]:,} {s}" for s in _SEVERITIES if s in per)
        examples = [r for r in found if r["detection"] == name][:3]
        out.append({"detection": name, "total": sum(per.values()), "by_severity": text, "examples": examples})
    return out


def _intel_look(contacts: Rows, n: int = 10) -> Rows:
    """One line per listed address (a scanner on a list touches many of ours): the local address, or how
    many; flows, accepted, bytes each way, first and last seen; accepted contacts first, then the most flows."""
    by: dict[tuple[Any, Any], dict[str, Any]] = {}
    for r in contacts:
        g = by.setdefault(
            (r["list_name"], r["listed"]),
            {**r, "locals": set(), "flows": 0, "accepted_flows": 0, "bytes_to_listed": 0, "bytes_from_listed": 0},
        )
        g["locals"].add((r["local"], r.get("resource")))
        for k in ("flows", "accepted_flows", "bytes_to_listed", "bytes_from_listed"):
            g[k] += r[k] or 0
        g["first_seen"] = min(x for x in (g["first_seen"], r["first_seen"]) if x is not None)
        g["last_seen"] = max(x for x in (g["last_seen"], r["last_seen"]) if x is not None)
    out = []
    for g in by.values():
        (local, resource), count = sorted(g["locals"], key=str)[0], len(g["locals"])
        g["local"], g["resource"] = (local, resource) if count == 1 else (f"{count} of our addresses", None)
        out.append(g)
    return sorted(out, key=lambda g: (-g["accepted_flows"], -g["flows"], str(g["listed"])))[:n]


def write_html(path: Path, results: Results, extras: dict[str, Rows], meta: dict[str, Any]) -> Path:
    """The one-file report: every section present in results, and the extras."""
    import jinja2

    ns, runts = results.get("north_south", {}), results.get("runts", {})
    talkers, hunt = results.get("talkers", {}), results.get("hunt", {})
    network = results.get("network", {})
    charts: dict[str, str] = {}
    peers = ns.get("top_peers", [])
    peers_bytes = [r for r in peers if r["rank_by"] == "bytes"]
    if ns:
        charts["over_time"] = _chart_over_time(ns.get("over_time", []))
        charts["split"] = _chart_split(ns.get("split", []))
        charts["peers"] = _barh(
            [_peer_label(r) for r in peers_bytes], [r["bytes"] for r in peers_bytes], "bytes", unit="bytes"
        )
    if runts:
        by_action = runts.get("by_action", [])
        charts["runts_action"] = _barh(
            [str(r["action"]) for r in by_action], [r["runts"] or 0 for r in by_action], "single-record flows"
        )
        by_port = runts.get("by_port", [])
        charts["runts_port"] = _barh([_port_label(r) for r in by_port], [r["runts"] for r in by_port], "runts")
    nat_total = {"bytes": 0, "cost": 0.0, "saving": 0.0}
    if "nat_services" in talkers:
        svc = talkers["nat_services"]
        nat_total = {
            "bytes": sum(r["bytes"] or 0 for r in svc),
            "cost": sum(r["cost_usd"] or 0 for r in svc),
            "saving": sum(r["saving_usd"] or 0 for r in svc),
        }
        charts["nat"] = _barh(
            [f"{r['aws_service']} {r['aws_region'] or ''}".strip() for r in svc[:20]],
            [r["cost_usd"] or 0 for r in svc[:20]],
            "estimated cost, USD (green: a gateway endpoint would make it free)",
            ["#2e8b57" if r["gateway_endpoint"] else "#3b6ea8" for r in svc[:20]],
            unit="usd",
        )
    if "tag_counts" in extras:
        tc = extras["tag_counts"][:25]
        charts["tags"] = _barh([str(r["tag"]) for r in tc], [r["records"] or 0 for r in tc], "records")
    if extras.get("rejects_per_day"):
        rj = extras["rejects_per_day"]
        charts["rejects"] = _barh([str(r["day"]) for r in rj[-30:]], [r["rejects"] for r in rj[-30:]], "lines")
    if network:
        charts.update(_network_charts(network))
    # addresses on an intel list first: accepted contacts, then the most flows
    intel_look = _intel_look(network.get("intel_contacts", []))
    toc = [("reading", "Reading this report"), ("look", "What to look at")]
    toc += [("traffic", "Traffic"), ("northsouth", "North/south")] if ns else []
    toc += [("runts", "Runts")] if runts else []
    toc += [("talkers", "Talkers and NAT")] if talkers else []
    toc += [("hunt", "Hunt")] if hunt else []
    toc += [("network", "Network")] if network else []
    toc += [("lake", "The lake")]

    xlsx = Path(path).with_suffix(".xlsx").name

    column_notes = meta.get("column_notes") or {}

    def model(
        report: str, section: str, rows: Rows, cols: Optional[Sequence[str]] = None, why: bool = True, **kw: Any
    ) -> Any:
        """A section's table; why: with the section's notes on blank columns (once per section: on the
        last of its tables)."""
        m = table_model(rows, cols, more=_where_more(report, section, meta, xlsx), **kw)
        m["why"] = column_notes.get(f"{report}/{section}", []) if why else []
        return m

    # the NAT's id and resource are in the note above the table: not repeated on every row
    svc_rows = talkers.get("nat_services") or []
    nat_cols = [c for c in (svc_rows[0] if svc_rows else {}) if c not in ("nat", "nat_resource", "computed_at")]
    hunt_rows = hunt.get("peers", [])
    present = set(hunt_rows[0]) if hunt_rows else set()
    # a column that no row fills (no --asn-db, no AWS peer, no beacon) is left out of both hunt tables (the
    # note under the second says which); the second repeats the key, its evidence sentence is the summary's
    filled = {c for c in present if any(r.get(c) not in (None, "") for r in hunt_rows)}
    summary_cols = [c for c in HUNT_SUMMARY_COLUMNS if c in filled]
    detail_cols = [c for c in HUNT_COLUMNS if c in filled and c != "evidence"]
    explained = {c for w in (meta.get("column_notes") or {}).get("hunt/peers", []) for c in w["columns"]}
    hunt_empty = [c for c in HUNT_COLUMNS if c in present and c not in filled and c not in explained]
    no_rank_by = [c for c in (peers[0] if peers else {}) if c not in ("rank_by", "computed_at")]
    evidence = {"evidence": human_evidence}
    t = {
        "split": model("north_south", "split", ns.get("split", [])),
        "peers_bytes": model("north_south", "top_peers", peers_bytes, no_rank_by, why=False),
        "peers_flows": model("north_south", "top_peers", [r for r in peers if r["rank_by"] == "flows"], no_rank_by),
        "nat_services": model("talkers", "nat_services", svc_rows, nat_cols or None),
        "nat_sources": model("talkers", "nat_sources", talkers.get("nat_sources", [])),
        "top_sources": model("talkers", "top_sources", talkers.get("top_sources", [])),
        "top_destinations": model("talkers", "top_destinations", talkers.get("top_destinations", [])),
        "hunt_summary": model("hunt", "peers", hunt_rows, summary_cols, why=False, wrap=("evidence",), human=evidence),
        "hunt_all": model("hunt", "peers", hunt_rows, detail_cols),
        "tag_counts": table_model(extras.get("tag_counts", []), more="in the lake's tag_counts table"),
        "dedup_stats": table_model(extras.get("dedup_stats", []), more="in the lake's dedup_stats table"),
        "rejects_per_day": table_model(extras.get("rejects_per_day", []), more="in the lake's flow_rejects table"),
        "storage": table_model(extras.get("storage", [])),
        "storage_days": table_model(extras.get("storage_days", []), limit=62, more="not shown ('flowspark stats')"),
    }
    for section in ("by_action", "by_port", "by_source_network", "top_scanners"):
        t[f"runts_{section}"] = model("runts", section, runts.get(section, []))
    for section in NETWORK_SECTIONS:
        limit = 200 if section == "breakdown" else 50
        t[section] = model("network", section, network.get(section, []), limit=limit)
    t["period"] = _period_model(network.get("period", []))
    t["period"]["why"] = column_notes.get("network/period", [])
    t["rejected_over_time_where"] = _where_more("network", "rejected_over_time", meta, xlsx)
    env = jinja2.Environment(autoescape=True, undefined=jinja2.ChainableUndefined)
    html = env.from_string(_TEMPLATE).render(
        meta=meta,
        toc=toc,
        ns=ns,
        runts=runts,
        talkers=talkers,
        hunt=hunt,
        network=network,
        network_notes=NETWORK_NOTES,
        has_hunt=bool(hunt),
        has_findings="findings" in extras,
        intel_look=intel_look,
        findings_look=[r for r in extras.get("findings", []) if r["detection"] not in SCANS],
        scan_look=_scan_look(extras.get("findings", []), extras.get("finding_counts", [])),
        minute=lambda t: t.strftime("%Y-%m-%d %H:%M UTC") if t else "",
        hunt_empty=hunt_empty,
        nat_total=nat_total,
        charts=charts,
        extras=extras,
        t=t,
        header=_header,
        evidence=human_evidence,
        hbytes=human_bytes,
        units_note=UNITS_NOTE,
        glossary=list(DIRECTION_GLOSSARY.items()),
        glossary_notes=GLOSSARY_NOTES,
        script=_SCRIPT,
    )
    path.write_text(html, encoding="utf-8")
    return path
