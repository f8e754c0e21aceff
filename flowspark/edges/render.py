"""Report files from already-aggregated rows (lists of dicts, bounded): CSV, XLSX (openpyxl) and one
self-contained HTML file (jinja2 template, matplotlib charts inlined as SVG; no scripts, no CDN, no
external file: it opens offline and prints).

The rows come from :mod:`flowspark.pipelines.report`: {report: {section: [row, ...]}} plus the extras
(tag_counts, dedup_stats, rejects_per_day) and a meta dict.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from flowspark.core import protocols

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
            path = out / f"{report}_{section}.csv"
            with path.open("w", newline="", encoding="utf-8") as fh:
                if rows:
                    w = csv.DictWriter(fh, fieldnames=list(rows[0]))
                    w.writeheader()
                    w.writerows({k: _cell(v) for k, v in r.items()} for r in rows)
            paths.append(path)
    return paths


def write_xlsx(path: Path, results: Results) -> Path:
    """One workbook, one sheet per section (named <report>.<section>, cut to Excel's 31 characters)."""
    from openpyxl import Workbook
    from openpyxl.utils import get_column_letter

    wb = Workbook()
    wb.remove(wb.active)
    for report, sections in results.items():
        for section, rows in sections.items():
            ws = wb.create_sheet(f"{report}.{section}"[:31])
            if not rows:
                ws.append(["(no rows)"])
                continue
            cols = list(rows[0])
            ws.append(cols)
            for r in rows:
                ws.append([_cell(r[c]) for c in cols])
            ws.freeze_panes = "A2"
            for i, c in enumerate(cols, 1):
                ws.column_dimensions[get_column_letter(i)].width = max(10, min(40, len(c) + 2))
    wb.save(path)
    return path


# ---------------------------------------------------------------- HTML


# Numbers that are names, not quantities: no thousands separator
_PLAIN = {"asn", "port", "dstport", "srcport", "peer_port", "local_port", "protocol", "rank"}


def _fmt(v: Any, col: str = "") -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "yes" if v else ""
    if isinstance(v, int):
        return str(v) if col in _PLAIN else f"{v:,}"
    if isinstance(v, float):
        return f"{v:,.4f}" if abs(v) < 1 else f"{v:,.2f}"
    if isinstance(v, dt.datetime):
        return v.strftime("%Y-%m-%d %H:%M:%S")
    return str(v)


def _human_bytes(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(n) < 1000:
            return f"{n:,.1f} {unit}"
        n /= 1000
    return f"{n:,.1f} PB"


def _svg(fig: Any) -> str:
    import matplotlib.pyplot as plt

    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight")
    plt.close(fig)
    text = buf.getvalue()
    return text[text.find("<svg") :]


def _figure(width: float = 9, height: float = 3.2) -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(width, height))
    ax.spines[["top", "right"]].set_visible(False)
    return fig, ax


def _barh(labels: Sequence[str], values: Sequence[float], xlabel: str, colors: Sequence[str] | None = None) -> str:
    if not labels:
        return ""
    fig, ax = _figure(9, 0.3 * len(labels) + 0.8)
    ax.barh(list(range(len(labels)))[::-1], values, color=colors or "#3b6ea8")
    ax.set_yticks(list(range(len(labels)))[::-1], labels=labels, fontsize=8)
    ax.set_xlabel(xlabel)
    return _svg(fig)


def _chart_over_time(rows: Rows) -> str:
    if not rows:
        return ""
    series: dict[str, dict[dt.datetime, float]] = {}
    for r in rows:
        series.setdefault(f"{r['direction']} {r['action']}", {})[r["time"]] = r["bytes"] or 0
    fig, ax = _figure(9, 3.4)
    for label, points in sorted(series.items()):
        xs = sorted(points)
        ax.plot(xs, [points[x] for x in xs], marker=".", linewidth=1.2, label=label)
    ax.set_ylabel("bytes per hour")
    ax.legend(fontsize=7, ncol=4, loc="upper left", frameon=False)
    fig.autofmt_xdate()
    return _svg(fig)


def _chart_split(rows: Rows) -> str:
    if not rows:
        return ""
    import numpy as np

    dirs = sorted({r["direction"] for r in rows})
    actions = sorted({str(r["action"]) for r in rows})
    fig, axes = _figure(9, 3)
    fig.clf()
    for k, measure in enumerate(("flows", "bytes")):
        ax = fig.add_subplot(1, 2, k + 1)
        x = np.arange(len(dirs))
        width = 0.8 / max(len(actions), 1)
        for i, a in enumerate(actions):
            vals = [sum(r[measure] or 0 for r in rows if r["direction"] == d and str(r["action"]) == a) for d in dirs]
            ax.bar(x + i * width, vals, width, label=a)
        ax.set_xticks(x + width * (len(actions) - 1) / 2, labels=dirs, fontsize=8)
        ax.set_title(measure, fontsize=9)
        ax.spines[["top", "right"]].set_visible(False)
        if k == 0:
            ax.legend(fontsize=7, frameon=False)
    return _svg(fig)


def _chart_bars(rows: Rows, label: str, value: str, xlabel: str) -> str:
    return _barh([str(r[label]) for r in rows], [r[value] or 0 for r in rows], xlabel)


def _peer_label(r: dict[str, Any]) -> str:
    """A peer with its ASN organisation when the report has one (--asn-db)."""
    org = r.get("asn_org")
    return f"{r['peer']} ({org[:30]})" if org else str(r["peer"])


def _port_label(r: dict[str, Any]) -> str:
    return f"{protocols.name(int(r['protocol'])) if r.get('protocol') is not None else '?'}/{r.get('dstport')}"


_TEMPLATE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>flowspark report: {{ meta.range }}</title>
<style>
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 2em auto; max-width: 1100px;
       color: #222; padding: 0 1em; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; } h2 { border-bottom: 2px solid #3b6ea8; padding-bottom: 0.2em;
margin-top: 2em; } h3 { font-size: 1.05em; margin-top: 1.4em; }
.meta { color: #555; font-size: 0.9em; } .note { color: #555; font-size: 0.85em; font-style: italic; }
table { border-collapse: collapse; font-size: 0.8em; margin: 0.5em 0 1em; }
th, td { border: 1px solid #ccc; padding: 2px 6px; text-align: right; white-space: nowrap; }
th { background: #eef2f7; } td.t { text-align: left; }
.look { background: #fff6e0; border-left: 4px solid #e0a100; padding: 0.5em 1em; }
.look li { margin: 0.3em 0; } .flag { font-weight: bold; color: #a34000; }
nav a { margin-right: 1em; font-size: 0.9em; } svg { max-width: 100%; height: auto; }
</style></head><body>
<h1>flowspark report</h1>
<p class="meta">Lake {{ meta.lake }} &middot; flows {{ meta.range }} &middot; computed {{ meta.computed_at }}
 &middot; top {{ meta.top_n }}</p>
<nav>{% for id, title in toc %}<a href="#{{ id }}">{{ title }}</a>{% endfor %}</nav>

{% macro table(rows, cols=None, limit=50) -%}
{% if not rows %}<p class="note">no rows</p>{% else %}
{% set cols = cols or rows[0].keys()|reject("equalto", "computed_at")|list %}
<table><tr>{% for c in cols %}<th>{{ c }}</th>{% endfor %}</tr>
{% for r in rows[:limit] %}<tr>{% for c in cols %}{% set v = r[c] %}
<td{% if v is string %} class="t"{% endif %}>{{ fmt(v, c) }}</td>{% endfor %}</tr>
{% endfor %}</table>{% if rows|length > limit %}<p class="note">{{ rows|length - limit }} more rows in the CSV/XLSX
and the Delta table</p>{% endif %}{% endif %}
{%- endmacro %}

<h2 id="look">What to look at</h2>
{% if look %}<div class="look"><ul>
{% for r in look %}<li><span class="flag">{{ r.flags }}</span>: {{ r.direction }} {{ r.peer }} port {{ r.port }}
{% if r.asn_org %}(AS{{ r.asn }} {{ r.asn_org }}){% endif %}
{% if r.peer_aws_service %}(AWS {{ r.peer_aws_service }}){% endif %}
{% if r.beacon_local_resource %}from {{ r.beacon_local_resource }}{% endif %} &mdash; {{ r.evidence }}</li>{% endfor %}
</ul></div>{% elif has_hunt %}<p>No peer/port was flagged (scanning, credential access, beaconing,
exfiltration) with the configured thresholds.</p>{% else %}<p class="note">hunt report not run</p>{% endif %}

{% if ns %}
<h2 id="traffic">Traffic over time</h2>
<p class="note">Bytes per hour by direction (inbound/outbound: one side on the Internet; east_west: neither)
and action.</p>
{{ charts.over_time|safe }}
<h2 id="northsouth">North / south</h2>
{{ charts.split|safe }}
{{ table(ns.split) }}
<h3>Top Internet peers by bytes (ACCEPT, NTP sync and AWS prefixes left out)</h3>
{{ charts.peers|safe }}
{{ table(peers_bytes) }}
<h3>Top Internet peers by flows</h3>
{{ table(peers_flows) }}
{% endif %}

{% if runts %}
<h2 id="runts">Runts (single-record flows)</h2>
{{ charts.runts_action|safe }}
{{ table(runts.by_action) }}
<h3>By destination port</h3>
{{ charts.runts_port|safe }}
{{ table(runts.by_port) }}
<h3>By source network (/24, IPv6 /64)</h3>
{{ table(runts.by_source_network) }}
<h3>Top scanning sources</h3>
{{ table(runts.top_scanners) }}
{% endif %}

{% if talkers %}
<h2 id="talkers">Talkers and NAT cost</h2>
<h3>NAT cost by AWS service</h3>
{% for n in meta.notes %}<p class="note">{{ n }}</p>{% endfor %}
{% if talkers.nat_services is defined %}
<p>Processed: <b>{{ hbytes(nat_total.bytes) }}</b>, estimated data-processing cost
<b>${{ '%.2f'|format(nat_total.cost) }}</b>; S3/DynamoDB through gateway endpoints would save
<b>${{ '%.2f'|format(nat_total.saving) }}</b>.</p>
{{ charts.nat|safe }}
{{ table(talkers.nat_services, nat_cols) }}
<h3>Sources sending through the NAT</h3>
{{ table(talkers.nat_sources) }}
{% endif %}
<h3>Largest sources</h3>
{{ table(talkers.top_sources) }}
<h3>Largest destinations</h3>
{{ table(talkers.top_destinations) }}
{% endif %}

{% if hunt %}
<h2 id="hunt">Hunt: peer/port summaries</h2>
{{ table(hunt.peers, hunt_cols) }}
{% endif %}

<h2 id="lake">The lake</h2>
<h3>Tag counts</h3>
{% if extras.tag_counts is defined %}{{ charts.tags|safe }}{{ table(extras.tag_counts) }}
{% else %}<p class="note">no tag_counts table: run 'flowspark tag --lake ...'</p>{% endif %}
<h3>Compaction ratio (dedup runs)</h3>
{% if extras.dedup_stats is defined %}{{ table(extras.dedup_stats) }}
{% else %}<p class="note">no dedup_stats table</p>{% endif %}
<h3>Rejected lines per day of ingest</h3>
{% if extras.rejects_per_day %}{{ charts.rejects|safe }}{{ table(extras.rejects_per_day) }}
{% else %}<p class="note">no rejected lines</p>{% endif %}
<h3>Storage (from the Delta logs)</h3>
<p class="note">Each table's current snapshot: rows, files and bytes on storage. Bytes per record divides a
table's bytes by the flow_records rows of the same days (blank once 'flowspark maintain' has dropped them);
'flowspark stats --source ...' compares with the raw gzip.</p>
{{ table(extras.storage) }}
{% if extras.storage_days %}<h3>Storage per day (flows of the report's range)</h3>
{{ table(extras.storage_days, limit=62) }}{% endif %}
</body></html>
"""

HUNT_COLUMNS = [
    "flags",
    "peer",
    "asn",
    "asn_org",
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


def write_html(path: Path, results: Results, extras: dict[str, Rows], meta: dict[str, Any]) -> Path:
    """The one-file report: every section present in results, and the extras."""
    import jinja2

    ns, runts = results.get("north_south", {}), results.get("runts", {})
    talkers, hunt = results.get("talkers", {}), results.get("hunt", {})
    charts: dict[str, str] = {}
    peers = ns.get("top_peers", [])
    peers_bytes = [r for r in peers if r["rank_by"] == "bytes"]
    if ns:
        charts["over_time"] = _chart_over_time(ns.get("over_time", []))
        charts["split"] = _chart_split(ns.get("split", []))
        charts["peers"] = _barh([_peer_label(r) for r in peers_bytes], [r["bytes"] for r in peers_bytes], "bytes")
    if runts:
        charts["runts_action"] = _chart_bars(runts.get("by_action", []), "action", "runts", "single-record flows")
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
            "estimated cost, USD",
            ["#2e8b57" if r["gateway_endpoint"] else "#3b6ea8" for r in svc[:20]],
        )
    if "tag_counts" in extras:
        tc = extras["tag_counts"][:25]
        charts["tags"] = _chart_bars(tc, "tag", "records", "records")
    if extras.get("rejects_per_day"):
        rj = extras["rejects_per_day"]
        charts["rejects"] = _barh([str(r["day"]) for r in rj[-30:]], [r["rejects"] for r in rj[-30:]], "lines")
    # up to 5 peer/ports of each flag (rows come largest bytes first), so no kind crowds out the others
    look: Rows = []
    flagged = [r for r in hunt.get("peers", []) if r.get("flags")]
    for kind in ("exfiltration", "beaconing", "credential_access", "scanning"):
        look += [r for r in flagged if kind in r["flags"].split(",") and r not in look][:5]
    toc = [("look", "What to look at")]
    toc += [("traffic", "Traffic"), ("northsouth", "North/south")] if ns else []
    toc += [("runts", "Runts")] if runts else []
    toc += [("talkers", "Talkers and NAT")] if talkers else []
    toc += [("hunt", "Hunt")] if hunt else []
    toc += [("lake", "The lake")]
    # the NAT's id and resource are in the note above the table: not repeated on every row
    svc_rows = talkers.get("nat_services") or []
    nat_cols = [c for c in (svc_rows[0] if svc_rows else {}) if c not in ("nat", "nat_resource", "computed_at")]
    hunt_rows = hunt.get("peers", [])
    hunt_cols = [c for c in HUNT_COLUMNS if hunt_rows and c in hunt_rows[0]]
    env = jinja2.Environment(autoescape=True, undefined=jinja2.ChainableUndefined)
    html = env.from_string(_TEMPLATE).render(
        meta=meta,
        toc=toc,
        ns=ns,
        runts=runts,
        talkers=talkers,
        hunt=hunt,
        has_hunt=bool(hunt),
        hunt_cols=hunt_cols,
        nat_cols=nat_cols or None,
        look=look,
        peers_bytes=peers_bytes,
        peers_flows=[r for r in peers if r["rank_by"] == "flows"],
        nat_total=nat_total,
        charts=charts,
        extras=extras,
        fmt=_fmt,
        hbytes=_human_bytes,
    )
    path.write_text(html, encoding="utf-8")
    return path
