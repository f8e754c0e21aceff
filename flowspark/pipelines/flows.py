"""flows kept by ingest: each claim's records merged into the windows they fall in, exactly once.

A claim's data records become rows of the flows shape (core.dedup.flow_rows) and are merged, in one
aggregation (core.dedup.merge_flows: sums, min, max and OR), with the rows flows already holds for the same
windows; the result replaces exactly those windows (overwrite with replaceWhere on event_date and
window_start) in one Delta commit made at most once per claim (txnAppId = the claim). So a day ingested in
one run and the same day in many runs (each bringing part of every hour), or with an object arriving a day
late, end in the same rows.

Concurrent runs that touch the same windows conflict (each read the windows it replaces) and the loser
builds its merge again from the table as it now is. The merge is checked after it committed, against the
table's own versions: the windows it replaced hold, at its commit, exactly what they held just before it
plus the claim's records, packets and bytes. A claim's flows commit is its point of no return: an undo
before it fences flows (an empty write with the claim's txnAppId, userMetadata '<claim> fence ...'), and a
claim whose real merge committed is completed, never undone.

What flows is (its window and key) is the table's: properties flowspark.window and flowspark.key, set when
ingest creates it from `[dedup]`; `flowspark dedup` rebuilds days of it from flow_records the same way.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from flowspark.core import dedup
from flowspark.core.schema import EVENT_DATE, record_schema
from flowspark.edges import hooks, tables
from flowspark.edges.config import Config
from flowspark.pipelines.common import ReconciliationError

log = logging.getLogger("flowspark")

WINDOW_PROPERTY, KEY_PROPERTY = "flowspark.window", "flowspark.key"
_ASSUMED_EMPTY = "flowspark: a column assumed empty holds a value"
RECORDS_PER_PARTITION = 250_000
FENCE = "fence"


@dataclass(frozen=True)
class FlowsDefinition:
    """What a flows table is: its window and its flow key."""

    window: str
    key: tuple[str, ...]

    @property
    def seconds(self) -> int | None:
        return dedup.window_seconds(self.window)

    def properties(self) -> dict[str, str]:
        return {WINDOW_PROPERTY: self.window, KEY_PROPERTY: ",".join(self.key)}


def definition(spark: SparkSession, cfg: Config, lake: str, table: str = tables.FLOWS) -> FlowsDefinition:
    """The table's definition (its properties), or the config's for a table not made yet (or made by a
    flowspark that set none: then the config is what made it)."""
    props = tables.properties(spark, lake, table)
    window = props.get(WINDOW_PROPERTY) or cfg.dedup.window
    key = tuple(props[KEY_PROPERTY].split(",")) if props.get(KEY_PROPERTY) else tuple(cfg.dedup.key)
    return FlowsDefinition(window, tuple(dedup.validate_key(list(key))))


_SCHEMAS: dict = {}


def flows_schema(spark: SparkSession, defn: FlowsDefinition):  # type: ignore[no-untyped-def]
    """The schema of a flows table of this definition (the merge of no records); worked out once per
    definition and process (building the plan costs ~2 s of driver time)."""
    if defn not in _SCHEMAS:
        empty = spark.createDataFrame([], record_schema())
        _SCHEMAS[defn] = empty.transform(dedup.compact(defn.window, list(defn.key))).schema
    return _SCHEMAS[defn]


def ensure_table(spark: SparkSession, lake: str, defn: FlowsDefinition, table: str = tables.FLOWS) -> None:
    """The flows table exists, partitioned by event_date, with the definition in its properties."""
    if not tables.exists(spark, lake, table):
        tables.create_with_properties(spark, lake, table, flows_schema(spark, defn), [EVENT_DATE], defn.properties())


def windows_predicate(windows: list[tuple[dt.date | None, dt.datetime | None]]) -> str:
    """SQL: the rows of these (event_date, window_start) windows (window_start null: no window in the day;
    event_date null: records with no start and no day in their object's name)."""
    by_day: dict[dt.date | None, list[dt.datetime | None]] = {}
    for day, start in windows:
        by_day.setdefault(day, []).append(start)
    parts = []
    for day, starts in sorted(by_day.items(), key=lambda kv: kv[0] or dt.date.min):
        timed = sorted(s for s in starts if s is not None)
        conds = []
        if timed:
            values = ", ".join(f"TIMESTAMP'{s.strftime('%Y-%m-%d %H:%M:%S')}+00:00'" for s in timed)
            conds.append(f"window_start IN ({values})")
        if any(s is None for s in starts):
            conds.append("window_start IS NULL")
        on_day = f"event_date = DATE'{day.isoformat()}'" if day else "event_date IS NULL"
        parts.append(f"({on_day} AND ({' OR '.join(conds)}))")
    return " OR ".join(parts) if parts else "false"


def _totals(df: DataFrame) -> tuple[int, int, int]:
    row = df.agg(F.sum("records"), F.sum("packets"), F.sum("bytes")).first()
    return tuple(int(v or 0) for v in row) if row is not None else (0, 0, 0)  # type: ignore[return-value]


def _nonnull(df: DataFrame, columns: list[str]) -> set[str]:
    """Which of `columns` hold a value in some row of df (one aggregate)."""
    present = [c for c in columns if c in df.columns]
    if not present:
        return set()
    row = df.select(*dedup.value_counts(present)).first()
    return {c for c in present if row is not None and row[c]}


@dataclass
class MergeResult:
    committed: bool  # this call made the claim's flows commit (False: an earlier attempt had)
    version: int  # the claim's commit in flows
    rows: int  # rows the windows hold after it (at that version)


def merge_claim(
    spark: SparkSession,
    lake: str,
    claim_id: str,
    token: str,
    records: DataFrame,
    windows: list[tuple[dt.date, dt.datetime | None]],
    nonnull: set[str],
    expected: tuple[int, int, int],
    defn: FlowsDefinition,
    storage: object = None,
) -> MergeResult:
    """Merge a claim's records (flow_records rows) into flows, at most once per claim, then check it.

    windows: the (event_date, window_start) the claim's data records fall in; nonnull: the key and carried
    columns that hold a value in some of them; expected: the claim's data records, packets and bytes."""
    ensure_table(spark, lake, defn)
    pred = windows_predicate(windows)
    keys = dedup.effective_key(list(defn.key))
    candidates = [c for c in [*keys, *dedup.CARRIED] if c not in dedup.AGGREGATES]
    existing_nonnull = _nonnull(tables.read(spark, lake, tables.FLOWS).where(pred), candidates) if windows else set()
    null = [c for c in candidates if c not in nonnull and c not in existing_nonnull]

    def build(null: list[str]) -> DataFrame:
        existing = tables.read(spark, lake, tables.FLOWS).where(pred)
        # (the concurrency tests hold two runs' merges inside their transactions at once: edges/hooks.py)
        held = hooks.inside_transaction(records, "merge", claim_id)
        new = held.transform(dedup.flow_rows(defn.window, list(defn.key)))
        rows = new.unionByName(existing.select(*new.columns))
        # columns assumed empty are not grouped on: a value there (a concurrent run's rows) fails the job
        guarded = rows.transform(dedup.null_guard(null, _ASSUMED_EMPTY))
        return guarded.transform(dedup.merge_flows(list(defn.key), null=null))

    # One shuffle partition per RECORDS_PER_PARTITION records: most keys hold one record, so the hash
    # tables grow with the records; a few big partitions spill (the old dedup sizing, per 16 MB of input).
    partitions = max(int(spark.conf.get("spark.sql.shuffle.partitions") or 1), -(-expected[0] // RECORDS_PER_PARTITION))
    conf = {"spark.sql.shuffle.partitions": str(partitions), "spark.sql.adaptive.coalescePartitions.enabled": "false"}

    def write(null: list[str]) -> bool:
        with tables.session_conf(spark, conf):
            return bool(
                tables.write_once(
                    lambda: build(null),
                    lake,
                    tables.FLOWS,
                    claim_id,
                    token,
                    replace_where=pred,
                    partition_by=[EVENT_DATE],
                    check=True,
                    storage=storage,  # type: ignore[arg-type]
                )
            )

    if not windows:  # no data record (only NODATA/SKIPDATA, or nothing): flows are not touched...
        # ...but the claim's commit still fences it: an empty write with its txnAppId
        made = bool(tables.write_once(lambda: build([]).limit(0), lake, tables.FLOWS, claim_id, token, check=True))
    else:
        try:
            made = write(null)
        except Exception as exc:  # noqa: BLE001 - only the guard's failure is handled; the rest re-raised
            if _ASSUMED_EMPTY not in str(exc):
                raise
            log.info("flows: a column assumed empty holds values; merging again grouping on every column")
            made = write([])
    return verify(spark, lake, claim_id, pred, expected, made, defn)


def verify(
    spark: SparkSession,
    lake: str,
    claim_id: str,
    pred: str,
    expected: tuple[int, int, int],
    made: bool,
    defn: FlowsDefinition | None = None,
) -> MergeResult:
    """The claim's flows commit (v) added exactly its records, packets and bytes to the windows it replaced:
    the windows at v = the windows at v - 1 + expected. Checked against the table's own versions, so it
    holds whoever made the commit and whatever commits came after. If not, and flow_records is kept, the
    windows may have been rebuilt since (`flowspark dedup`): then they must hold what flow_records holds
    for them. ReconciliationError otherwise."""
    found = tables.commit_of(spark, lake, tables.FLOWS, claim_id)
    if found is None:
        raise ReconciliationError(f"flows holds no commit of claim {claim_id} after its merge: rerun")
    version, meta, metrics = found
    if meta.split(" ")[1:2] == [FENCE]:
        raise ReconciliationError(f"claim {claim_id} was undone by another run while it merged flows: rerun")
    after = tables.read_version(spark, lake, tables.FLOWS, version).where(pred)
    before = _totals(tables.read_version(spark, lake, tables.FLOWS, version - 1).where(pred)) if version else (0, 0, 0)
    added = tuple(a - b for a, b in zip(_totals(after), before))
    if added != expected and not (defn is not None and _agrees_with_records(spark, lake, pred, defn)):
        raise ReconciliationError(
            f"flows did not conserve claim {claim_id}'s input: its commit (version {version}) added (records, "
            f"packets, bytes) {added}, the claim holds {expected}. Rebuild the days it touched from flow_records "
            "with `flowspark dedup --from D --to D`, then rerun (without flow_records: ingest the objects again "
            "into a new lake)"
        )
    return MergeResult(made, version, int(metrics.get("numOutputRows", 0)))


def _agrees_with_records(spark: SparkSession, lake: str, pred: str, defn: FlowsDefinition) -> bool:
    """The windows of `pred` hold, now, exactly the data records flow_records holds for them (merged_records)."""
    if not tables.exists(spark, lake, tables.FLOW_RECORDS):
        return False
    rows = merged_records(spark, lake, "true").transform(dedup.flow_rows(defn.window, list(defn.key))).where(pred)
    return _totals(tables.read(spark, lake, tables.FLOWS).where(pred)) == _totals(rows)


def days_predicate(days: list[dt.date]) -> str:
    """SQL: the rows of these event_date days."""
    if not days:
        return "false"
    return "event_date IN (" + ", ".join(f"DATE'{d.isoformat()}'" for d in days) + ")"


def merged_records(spark: SparkSession, lake: str, pred: str, also: str | None = None) -> DataFrame:
    """flow_records rows (matching `pred`) whose claim's records flows holds, or will hold when it is rebuilt
    from them: claims done, claims whose merge committed (not done yet: a crash, or a run finishing), rows of
    flowsparks before claims (no ingest_id), and `also`. A claim still on its way is left out: its own merge
    adds it later, so it is never counted twice."""
    from flowspark.pipelines import ledger

    if tables.exists(spark, lake, tables.INGESTED_FILES):
        done = ledger.ledger(spark, lake).where(F.col("state") == ledger.DONE).select(ledger.INGEST_ID).distinct()
    else:
        done = spark.createDataFrame([], f"{ledger.INGEST_ID} string")
    history = tables.history_metadata(spark, lake, tables.FLOWS) if tables.exists(spark, lake, tables.FLOWS) else []
    merged = {m.split(" ")[0] for m in history if m and m.split(" ")[1:2] != [FENCE]}
    wanted = sorted(merged | ({also} if also else set()))
    ids = spark.createDataFrame([(i,) for i in wanted], f"{ledger.INGEST_ID} string")
    records = tables.read(spark, lake, tables.FLOW_RECORDS).where(pred)
    if ledger.INGEST_ID not in records.columns:  # a lake written before claims: every row is in
        return records
    claims = done.unionByName(ids).distinct()
    known = records.join(F.broadcast(claims), ledger.INGEST_ID, "left_semi")
    return known.unionByName(records.where(F.col(ledger.INGEST_ID).isNull()))


def rebuild_days(
    spark: SparkSession,
    lake: str,
    claim_id: str,
    token: str,
    days: list[dt.date],
    defn: FlowsDefinition,
    storage: object = None,
) -> MergeResult:
    """A replacement claim's flows: the days its objects' old and new rows are in, compacted again from
    flow_records (merged_records: its own rows included), in one commit with its txnAppId; checked, when
    this call made it, against the records it read."""
    from pyspark.sql import Observation

    ensure_table(spark, lake, defn)
    pred = days_predicate(days)
    obs: list[Any] = []

    def build() -> DataFrame:
        o = Observation(f"rebuild-{claim_id}-{len(obs)}")
        obs.append(o)
        records = merged_records(spark, lake, pred, also=claim_id).observe(o, *dedup.input_totals())
        return records.transform(dedup.compact(defn.window, list(defn.key)))

    made = bool(
        tables.write_once(
            build, lake, tables.FLOWS, claim_id, token, replace_where=pred, partition_by=[EVENT_DATE], check=True,
            storage=storage,  # type: ignore[arg-type]
        )
    )  # fmt: skip
    found = tables.commit_of(spark, lake, tables.FLOWS, claim_id)
    if found is None:
        raise ReconciliationError(f"flows holds no commit of claim {claim_id} after its rebuild: rerun")
    version, _, metrics = found
    after = tables.read_version(spark, lake, tables.FLOWS, version).where(pred)
    if made:
        m = obs[-1].get
        expected = (int(m["in_records"]), int(m["in_packets"] or 0), int(m["in_bytes"] or 0))
        if _totals(after) != expected:
            raise ReconciliationError(
                f"flows of {days[0]}..{days[-1]} did not conserve flow_records when claim {claim_id} rebuilt them: "
                f"they hold (records, packets, bytes) {_totals(after)}, the records {expected}; rerun"
            )
    return MergeResult(made, version, int(metrics.get("numOutputRows", 0)))


def fence(spark: SparkSession, lake: str, claim_id: str, token: str, defn: FlowsDefinition) -> bool:
    """Before a claim is undone: an empty write with its txnAppId, so no attempt still running can merge it
    later. True if flows holds no real merge of the claim (the fence committed now, or an earlier undo's
    fence did); False if a real merge committed first: then the claim cannot be undone."""
    ensure_table(spark, lake, defn)
    empty = lambda: tables.read(spark, lake, tables.FLOWS).limit(0)  # noqa: E731
    if tables.write_once(empty, lake, tables.FLOWS, claim_id, f"{FENCE} {token}", check=True):
        return True
    found = tables.commit_of(spark, lake, tables.FLOWS, claim_id)
    return found is not None and found[1].split(" ")[1:2] == [FENCE]
