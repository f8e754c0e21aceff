"""The dedup job: flow_records of a date range -> flows (or conversations), dedup_status_counts, dedup_stats.

read -> compact (core.dedup) -> replace the range -> check conservation (undo on a mismatch) -> summary.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass

from pyspark.sql import DataFrame, Observation, SparkSession
from pyspark.sql import functions as F

from flowspark.core import dedup
from flowspark.core.dates import in_dates
from flowspark.core.schema import EVENT_DATE
from flowspark.edges import tables
from flowspark.edges.config import Config
from flowspark.pipelines import flows
from flowspark.pipelines.common import ReconciliationError, one_row, utc_now

log = logging.getLogger("flowspark")


def check_key(key: Sequence[str]) -> list[str]:
    """A --key as a list of flow_records columns; ValueError naming the unknown ones."""
    return dedup.validate_key([k.strip() for k in key])


def check_window(window: str) -> None:
    """ValueError unless --window is 10m, 1h, 1d, none, ... (a window that divides a day)."""
    dedup.window_seconds(window)


def _all_null(records: DataFrame, columns: Sequence[str]) -> list[str]:
    """The columns (of `columns`) that hold no value at all in `records`: one small aggregate."""
    return _precount(records, columns)[1]


def _precount(records: DataFrame, columns: Sequence[str]) -> tuple[dict, list[str]]:
    """One aggregate over the input before compaction: its totals (input_totals: is there any traffic?)
    and the columns of `columns` that hold no value at all."""
    present = [c for c in columns if c in records.columns]
    row = records.select(*dedup.input_totals(), *dedup.value_counts(present)).first()
    counts = row.asDict() if row is not None else {}
    return counts, [c for c in present if not counts.get(c)]


@dataclass
class DedupSummary:
    lake: str
    window: str
    key: list[str]
    bidirectional: bool
    date_from: str | None
    date_to: str | None
    input_records: int = 0  # data records (log_status OK) in the range
    nodata: int = 0
    skipdata: int = 0
    output_rows: int = 0
    runts_accept: int = 0
    runts_reject: int = 0
    runts_other: int = 0
    multi_record_keys: int = 0
    records_in_multi_record_keys: int = 0
    input_packets: int = 0
    input_bytes: int = 0
    output_packets: int = 0
    output_bytes: int = 0
    output_records: int = 0
    input_delta_bytes: int = 0
    output_delta_bytes: int = 0
    seconds: float = 0.0
    nothing_to_do: str = ""  # why the job had nothing to do (an empty selection); not in dedup_stats

    @property
    def ratio(self) -> float:
        """The honest compression ratio: input records per output row."""
        return self.input_records / self.output_rows if self.output_rows else 0.0

    @property
    def notebook_ratio(self) -> float:
        """The seed notebook's figure: records in multi-record keys per multi-record key (runts left out)."""
        return self.records_in_multi_record_keys / self.multi_record_keys if self.multi_record_keys else 0.0

    def conserved(self) -> bool:
        return (self.output_records, self.output_packets, self.output_bytes) == (
            self.input_records,
            self.input_packets,
            self.input_bytes,
        )

    def text(self) -> str:
        runts = self.runts_accept + self.runts_reject + self.runts_other
        table = "conversations" if self.bidirectional else "flows"
        rng = f"{self.date_from or 'start'} .. {self.date_to or 'end'}"
        if self.nothing_to_do:
            return f"dedup {rng}: nothing to do: {self.nothing_to_do}; {table} left as it was"
        return "\n".join(
            [
                f"dedup {rng}, window {self.window}{', bidirectional' if self.bidirectional else ''}",
                f"  key            {', '.join(self.key)}",
                f"  input records  {self.input_records:,} data records (+ NODATA {self.nodata:,}, "
                f"SKIPDATA {self.skipdata:,} counted in dedup_status_counts)",
                f"  output rows    {self.output_rows:,} -> {table}",
                f"  ratio          {self.ratio:,.2f}x input records per output row "
                f"(the notebook's multi-record-only figure: {self.notebook_ratio:,.2f}x)",
                f"  runts          {runts:,} keys with one record (ACCEPT {self.runts_accept:,}, "
                f"REJECT {self.runts_reject:,}, other {self.runts_other:,})",
                f"  conservation   records {self.output_records:,}/{self.input_records:,}, packets "
                f"{self.output_packets:,}/{self.input_packets:,}, bytes {self.output_bytes:,}/{self.input_bytes:,}: "
                f"{'OK' if self.conserved() else 'MISMATCH'}",
                f"  delta bytes    flow_records {self.input_delta_bytes:,}, {table} {self.output_delta_bytes:,} "
                "(the files of the range)",
                f"  seconds        {self.seconds:.1f}",
            ]
        )


# Compaction keeps one hash-table entry per distinct flow, and most flows are distinct (80-96% of keys
# hold one record), so the hash tables grow with the input. With Spark's default 128 MB input splits and
# 4 shuffle partitions they outgrew a 2 GB driver and spilled to disk: 10 M records took 34 s to a no-op
# sink, against 14 s with 16 MB splits and one shuffle partition per 16 MB of input (measured, no spill).
DEDUP_SPLIT_BYTES = 16 * 1024 * 1024


def dedup_conf(cfg: Config, input_bytes: int) -> dict[str, str]:
    """SQL confs for a compaction over `input_bytes` of flow_records: small splits, enough partitions."""
    partitions = max(cfg.spark.shuffle_partitions, -(-input_bytes // DEDUP_SPLIT_BYTES))
    return {
        "spark.sql.files.maxPartitionBytes": str(DEDUP_SPLIT_BYTES),
        "spark.sql.shuffle.partitions": str(partitions),
        # Adaptive execution would coalesce those partitions back into a few big (spilling) ones.
        "spark.sql.adaptive.coalescePartitions.enabled": "false",
    }


def _stored_totals(spark: SparkSession, lake: str, table: str, date_from, date_to) -> tuple[int, int, int, int]:
    """(rows, records, packets, bytes) of the range as the table holds it after the write."""
    rows = in_dates(tables.read(spark, lake, table), date_from, date_to)
    if table == tables.CONVERSATIONS:
        packets = F.col("request_packets") + F.col("response_packets")
        size = F.col("request_bytes") + F.col("response_bytes")
    else:
        packets, size = F.col("packets"), F.col("bytes")
    r = rows.agg(F.count(F.lit(1)), F.sum("records"), F.sum(packets), F.sum(size)).first()
    return (0, 0, 0, 0) if r is None else tuple(int(v or 0) for v in r)  # type: ignore[return-value]


def _range_predicate(date_from: dt.date | None, date_to: dt.date | None) -> str:
    conds = [f"event_date >= DATE'{date_from.isoformat()}'"] if date_from else []
    conds += [f"event_date <= DATE'{date_to.isoformat()}'"] if date_to else []
    return " AND ".join(conds) or "true"


def _upgrade(spark: SparkSession, lake: str, table: str, out: DataFrame) -> None:
    """Columns the output has and an existing table lacks (a lake written by an older flowspark) are
    added first, so that replacing one range keeps the other days (their rows get nulls there)."""
    if tables.exists(spark, lake, table):
        tables.add_columns(spark, lake, table, {f.name: f.dataType.simpleString() for f in out.schema.fields})


def run_dedup(
    spark: SparkSession,
    cfg: Config,
    lake: str,
    date_from: dt.date | None = None,
    date_to: dt.date | None = None,
    window: str | None = None,
    key: list[str] | None = None,
    bidirectional: bool = False,
    table: str | None = None,
) -> DedupSummary:
    """Compact the flow_records of [date_from, date_to] (every date when both are None) into flows (or
    conversations, or another table), replacing exactly that range of event_date there. Ends at once,
    writing nothing, when the range holds no records (summary.nothing_to_do says why).

    flows is what ingest keeps (pipelines/flows.py): its window and key are the table's, and a rebuild of
    its days reads the records of claims it holds (flows.merged_records), never those of a claim still on
    its way. Another window or key goes to another table (`table`)."""
    t0 = time.time()
    table = table or (tables.CONVERSATIONS if bidirectional else tables.FLOWS)
    if not tables.exists(spark, lake, tables.FLOW_RECORDS) and tables.exists(spark, lake, tables.FLOWS):
        raise ValueError(
            "this lake keeps no flow_records ([storage] keep_records = false): ingest keeps flows itself, and "
            "there are no records to compact again"
        )
    if table == tables.FLOWS and tables.exists(spark, lake, tables.FLOWS):
        defn = flows.definition(spark, cfg, lake)
        asked = (window or defn.window, tuple(dedup.validate_key(key or list(defn.key))))
        if asked != (defn.window, defn.key):
            raise ValueError(
                f"flows holds {defn.window} windows keyed by {','.join(defn.key)} (ingest keeps it so); "
                f"compact with window {asked[0]} and key {','.join(asked[1])} into another table: --table NAME"
            )
        window, key = defn.window, list(defn.key)
    window = window or cfg.dedup.window
    key = dedup.validate_key(key or list(cfg.dedup.key))
    dedup.window_seconds(window)
    summary = DedupSummary(
        lake=lake,
        window=window,
        key=key,
        bidirectional=bidirectional,
        date_from=date_from.isoformat() if date_from else None,
        date_to=date_to.isoformat() if date_to else None,
    )
    if table == tables.FLOWS:
        records = flows.merged_records(spark, lake, _range_predicate(date_from, date_to))
    else:
        records = in_dates(tables.read(spark, lake, tables.FLOW_RECORDS), date_from, date_to)
    empty = (
        f"{tables.FLOW_RECORDS} has no records dated {summary.date_from or 'start'} .. {summary.date_to or 'end'}"
        if date_from or date_to
        else f"{tables.FLOW_RECORDS} is empty: run ingest first"
    )
    # The shuffle is sized by the files of the range (from the Delta log), not by the whole table.
    summary.input_delta_bytes = tables.size_bytes_of_dates(
        spark, lake, tables.FLOW_RECORDS, EVENT_DATE, date_from, date_to
    )
    if not summary.input_delta_bytes:
        return _nothing_to_do(summary, empty, t0)
    with tables.session_conf(spark, dedup_conf(cfg, summary.input_delta_bytes)):
        # Observation.get waits for metrics that a query with an empty input may never report (Spark
        # prunes empty relations, and the observing node with them): observe only when there is traffic.
        totals_in, null = _precount(records, [] if bidirectional else [*dedup.IDENTITY, *dedup.CARRIED])
        traffic = bool(totals_in.get("in_records"))
        if not traffic and not (totals_in.get("nodata") or totals_in.get("skipdata")):
            return _nothing_to_do(summary, empty, t0)  # only empty files in the range
        obs_in, obs_out = Observation("dedup_in"), Observation("dedup_out")
        # No traffic (only NODATA/SKIPDATA rows): the range's flows are replaced by none, statuses counted.
        source = records.observe(obs_in, *dedup.input_totals()) if traffic else records
        if bidirectional:
            out = source.transform(dedup.bidirectional(window))
            for_totals = out.withColumn("packets", F.col("request_packets") + F.col("response_packets")).withColumn(
                "bytes", F.col("request_bytes") + F.col("response_bytes")
            )
        else:
            out = source.transform(dedup.compact(window, key, null=null))
            for_totals = out
        observed_out = for_totals.observe(obs_out, *dedup.output_totals()) if traffic else for_totals
        if bidirectional:
            observed_out = observed_out.drop("packets", "bytes")
        if not bidirectional:  # a table this makes: its window and key in its properties
            flows.ensure_table(spark, lake, flows.FlowsDefinition(window, tuple(key)), table)
        _upgrade(spark, lake, table, out)
        before = tables.version(spark, lake, table)
        tables.replace_dates(
            observed_out, lake, table, EVENT_DATE, date_from, date_to, partition_by=[EVENT_DATE], storage=cfg.storage
        )
        if traffic:
            mi, mo = obs_in.get, obs_out.get
        else:
            mi, mo = totals_in, {}
        summary.input_records, summary.nodata, summary.skipdata = (
            int(mi["in_records"]),
            int(mi["nodata"]),
            int(mi["skipdata"]),
        )
        summary.input_packets, summary.input_bytes = int(mi["in_packets"] or 0), int(mi["in_bytes"] or 0)
        summary.output_rows, summary.output_records = int(mo.get("out_rows") or 0), int(mo.get("out_records") or 0)
        summary.output_packets = int(mo.get("out_packets") or 0)
        summary.output_bytes = int(mo.get("out_bytes") or 0)
        for k in ("runts_accept", "runts_reject", "runts_other", "multi_record_keys", "records_in_multi_record_keys"):
            setattr(summary, k, int(mo.get(k) or 0))
        # Delta commits nothing when an empty output replaces an empty range: then nothing was written.
        committed = tables.version(spark, lake, table) != before
        written = int(tables.last_operation_metrics(spark, lake, table).get("numOutputRows", 0)) if committed else 0
        # What the table now holds for the range: rows of other days cannot hold records of these days
        # (a row's event_date is its records'), so the range's totals are the whole check.
        stored = _stored_totals(spark, lake, table, date_from, date_to)
        expected = (summary.output_rows, summary.input_records, summary.input_packets, summary.input_bytes)
        if not summary.conserved() or written != summary.output_rows or stored != expected:
            tables.undo_to(spark, lake, table, before)  # leave the table as it was, then fail loudly
            raise ReconciliationError(
                f"dedup did not conserve the input: {summary.text()}\n  Delta wrote {written} rows; the range "
                f"now holds (rows, records, packets, bytes) {stored}, expected {expected}"
            )
        tables.replace_dates(
            records.transform(dedup.status_counts(window)),
            lake,
            tables.DEDUP_STATUS_COUNTS,
            EVENT_DATE,
            date_from,
            date_to,
            partition_by=None,
        )
    summary.output_delta_bytes = tables.size_bytes_of_dates(spark, lake, table, EVENT_DATE, date_from, date_to)
    summary.seconds = time.time() - t0
    stats = {k: v for k, v in asdict(summary).items() if k not in ("key", "nothing_to_do")}
    stats.update(
        key=",".join(key),
        ratio=summary.ratio,
        notebook_ratio=summary.notebook_ratio,
        computed_at=utc_now(),
    )
    tables.append(one_row(spark, stats), lake, tables.DEDUP_STATS)
    return summary


def _nothing_to_do(summary: DedupSummary, why: str, t0: float) -> DedupSummary:
    summary.nothing_to_do = why
    summary.seconds = time.time() - t0
    log.info("dedup: nothing to do: %s", why)
    return summary
