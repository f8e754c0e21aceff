"""flowspark tag, lake mode: transforms (chispa), the broadcast join, and lake mode == single-file mode.

One ingest for the whole module: every sample text log (tagmapper-*, flowlogs-reader, AWS doc
examples) plus an edge-case file is copied into one source folder and ingested once.
"""

from __future__ import annotations

import datetime as dt
import shutil
from collections import Counter
from pathlib import Path

import pytest
from chispa import assert_df_equality
from pyspark.sql import functions as F
from tagmapper_cases import CASES, case_paths

from flowspark.core.schema import DEFAULT_FORMAT_STRING
from flowspark.core.tags import (
    UNTAGGED,
    input_counts,
    parse_lookup,
    port_protocol_counts,
    report_text,
    sorted_port_rows,
    sorted_tag_rows,
    tag_counts,
    tag_records,
    taggable,
)
from flowspark.edges import tables
from flowspark.pipelines.tag import (
    lookup_frame,
    read_lookup,
    run_tag_lake,
    tag_files,
)

D = dt.date(2021, 5, 4)

# ------------------------------------------------------------------------ transforms (inline data)


def test_tag_records_broadcast_left_join(spark):
    lookup = lookup_frame(spark, parse_lookup("25,tcp,sv_P1\n23,TCP,sv_P1\n68,udp,sv_P2\n68,udp,other\n"))
    records = spark.createDataFrame(
        [(25, 6, 10), (25, 6, 10), (23, 6, 5), (68, 17, 1), (68, 6, 2), (80, 6, 3)],
        "dstport int, protocol int, bytes long",
    )
    expected = spark.createDataFrame(
        [
            (25, 6, 10, "sv_P1"),
            (25, 6, 10, "sv_P1"),  # duplicates kept: the lookup has unique keys (first row wins)
            (23, 6, 5, "sv_P1"),
            (68, 17, 1, "sv_P2"),
            (68, 6, 2, UNTAGGED),  # same port, other protocol
            (80, 6, 3, UNTAGGED),
        ],
        "dstport int, protocol int, bytes long, tag string",
    )
    assert_df_equality(records.transform(tag_records(lookup)), expected, ignore_row_order=True, ignore_nullable=True)


def test_counts_per_date_port_protocol_and_tag(spark):
    lookup = lookup_frame(spark, parse_lookup("25,tcp,mail\n53,udp,dns\n53,tcp,dns\n"))
    d2 = dt.date(2021, 5, 5)
    records = spark.createDataFrame(
        [
            (D, 25, 6, 100, "OK"),
            (D, 25, 6, 50, "OK"),
            (D, 53, 17, 10, None),  # no log-status: a data record
            (D, 53, 6, 20, "OK"),
            (D, 9999, 6, 7, "OK"),
            (D, None, None, None, "NODATA"),
            (D, None, 6, 1, "OK"),  # no dstport: skipped
            (d2, 25, 6, 1, "OK"),
        ],
        "event_date date, dstport int, protocol int, bytes long, log_status string",
    )
    counts = port_protocol_counts(taggable(records).transform(tag_records(lookup)))
    expected = spark.createDataFrame(
        [
            (D, 25, 6, "tcp", "mail", 2, 150, None),
            (D, 53, 17, "udp", "dns", 1, 10, None),
            (D, 53, 6, "tcp", "dns", 1, 20, None),
            (D, 9999, 6, "tcp", UNTAGGED, 1, 7, None),
            (d2, 25, 6, "tcp", "mail", 1, 1, None),
        ],
        "event_date date, dstport int, protocol int, protocol_name string, tag string, records long, "
        "bytes long, flows long",
    )
    assert_df_equality(counts, expected, ignore_row_order=True, ignore_nullable=True)
    expected_tags = spark.createDataFrame(
        [
            (D, "mail", 2, 150, None),
            (D, "dns", 2, 30, None),
            (D, UNTAGGED, 1, 7, None),
            (d2, "mail", 1, 1, None),
        ],
        "event_date date, tag string, records long, bytes long, flows long",
    )
    assert_df_equality(tag_counts(counts), expected_tags, ignore_row_order=True, ignore_nullable=True)
    got = records.agg(*input_counts(records)).first()
    assert (got["records"], got["nodata"], got["skipped"]) == (8, 1, 1)


# ------------------------------------------------------------------------ one ingest of every sample

EDGE_LOOKUP = "443,tcp,https\n22,tcp,ssh\n53,udp,dns\n0,253,lab\n80,tcp,http\n"
_R = b"2 123456789012 eni-a 10.0.0.1 10.0.0.2 "
EDGE_LINES = [
    _R + b"49152 +443 6 1 100 1620140761 1620140821 ACCEPT OK",  # '+443' is 443 to Spark's cast
    _R + b"49152 0022 6 1 100 1620140761 1620140821 ACCEPT OK",
    _R + b"49152 65536 6 1 100 1620140761 1620140821 ACCEPT OK",
    _R + b"49152 1e3 6 1 100 1620140761 1620140821 ACCEPT OK",
    _R + b"49152 80 -1 1 100 1620140761 1620140821 ACCEPT OK",
    _R + b"49152 80 6 99999999999999999999 100 1620140761 1620140821 ACCEPT OK",
    _R + b"2147483648 80 6 1 100 1620140761 1620140821 ACCEPT OK",
    b"2 123456789012 eni-a - - - - 300 - - 1620140761 1620140821 - NODATA",  # no range check off data rows
    b"2\t123456789012\teni-a\t10.0.0.1\t10.0.0.2\t49152\t53\t17\t1\t100\t1620140761\t1620140821\tACCEPT\tOK",
    _R + b"49152 22\x0b 6 1 100 1620140761 1620140821 ACCEPT OK",  # the cast trims control characters
    _R + b"49152 80 6 1 100 1620140761 1620140821 accept OK",
    _R + b"49152 80 6 1 100 1620140761 1620140821 ACCEPT ok",
    b"2 123456789012 eni-\xe9 10.0.0.1 10.0.0.2 49152 80 6 1 100 1620140761 1620140821 ACCEPT OK",
    b"2   123456789012  eni-a 10.0.0.1 10.0.0.2 49152 80 6 1 100 1620140761 1620140821 ACCEPT OK   ",
    _R + b"49152 80 6 1 100 1620140761 1620140821 ACCEPT OK extra",
    b"\r",
    b"2 123456789012 eni-a - - - - - - - 1620140761 1620140821 - OK",
    _R + b"49152 80 6 1 - 1620140761 1620140821 ACCEPT OK",
    _R + b"49152 0 253 1 100 1620140761 1620140821 ACCEPT OK",
    b"- 123456789012 eni-a 10.0.0.1 10.0.0.2 49152 80 6 1 100 1620140761 1620140821 ACCEPT -",
    DEFAULT_FORMAT_STRING.encode(),  # a header line in the middle of a file is a malformed record
    _R + b"49152 80 6 -5 100 1620140761 1620140821 ACCEPT OK",
    _R + b"49152 443 6 1 100 1620140761000 1620140821000 ACCEPT OK",
    _R + b"49152 \xef\xbb\xbf443 6 1 100 1620140761 1620140821 ACCEPT OK",
    b"5 123456789012 eni-a 10.0.0.1 10.0.0.2 49152 443 6 1 100 1620140761 1620140821 ACCEPT OK",
]


@pytest.fixture(scope="module")
def sample_lake(spark, cfg, samples, tmp_path_factory):
    """(lake, {case: (copied log paths, lookup path)}) with every sample ingested once."""
    from flowspark.pipelines.ingest import run_ingest

    root = tmp_path_factory.mktemp("tag_lake")
    src = root / "src"
    src.mkdir()
    cases: dict[str, tuple[list[str], Path]] = {}

    def copy(path: Path, prefix: str) -> str:
        # ingest reads .log/.log.gz by default: the samples' .txt and .csv logs get a .log name
        name = path.name
        if name.endswith(".gz") and not name.endswith(".log.gz"):
            name = name[: -len(".gz")] + ".log.gz"
        elif not name.endswith((".log", ".log.gz")):
            name += ".log"
        target = src / f"{prefix}__{name}"
        if not target.exists():
            shutil.copyfile(path, target)
        return str(target)

    for case in CASES:
        logs, lookup = case_paths(samples, case)
        cases[case] = ([copy(Path(p), CASES[case][0]) for p in logs], lookup)
    default_lookup = Path(__file__).resolve().parents[1] / "conf" / "lookup_default.csv"
    for folder in ("flowlogs-reader", "aws-docs-flow-log-examples"):
        for log in sorted((samples / folder).glob("*.log")):
            cases[f"{folder}/{log.name}"] = ([copy(log, folder)], default_lookup)
    edge = src / "edge_cases.log"
    edge.write_bytes(b"\n".join(EDGE_LINES) + b"\n")
    (root / "edge_lookup.csv").write_text(EDGE_LOOKUP)
    cases["edge-cases"] = ([str(edge)], root / "edge_lookup.csv")
    lake = str(root / "lake")
    run_ingest(spark, cfg, source=str(src), lake=lake)
    return lake, cases


def test_lake_mode_equals_single_file_mode_on_every_sample(spark, sample_lake):
    lake, cases = sample_lake
    records = tables.read(spark, lake, tables.FLOW_RECORDS)
    # Cases whose lookups parse to the same table share one Spark pass (6 passes for ~35 cases).
    by_lookup: dict[frozenset, list[str]] = {}
    for case, (_, lookup_file) in cases.items():
        by_lookup.setdefault(frozenset(read_lookup(lookup_file).tags.items()), []).append(case)
    per_file = None
    for cases_here in by_lookup.values():
        names = [Path(p).name for case in cases_here for p in cases[case][0]]
        mine = records.withColumn("file", F.substring_index("source_file", "/", -1)).where(F.col("file").isin(names))
        lookup = read_lookup(cases[cases_here[0]][1])
        part = port_protocol_counts(taggable(mine).transform(tag_records(lookup_frame(spark, lookup))), by=["file"])
        per_file = part if per_file is None else per_file.unionByName(part)
    assert per_file is not None
    port_counts: dict[str, Counter] = {}
    tag_totals: dict[str, Counter] = {}
    for r in per_file.collect():  # a few hundred rows: one per file, date, port and protocol
        port_counts.setdefault(r["file"], Counter())[(r["dstport"], r["protocol"])] += r["records"]
        tag_totals.setdefault(r["file"], Counter())[r["tag"]] += r["records"]
    inputs = {
        r["file"]: r
        for r in records.withColumn("file", F.substring_index("source_file", "/", -1))
        .groupBy("file")
        .agg(*input_counts(records))
        .collect()
    }
    rejects: dict[str, list[tuple[int, str]]] = {}
    for r in tables.read(spark, lake, tables.FLOW_REJECTS).collect():
        rejects.setdefault(r["source_file"].rsplit("/", 1)[-1], []).append((r["line_number"], r["reason"]))

    for case, (logs, lookup_file) in sorted(cases.items()):
        name = Path(logs[0]).name
        lookup = read_lookup(lookup_file)
        expected = tag_files(logs, lookup)
        lake_report = report_text(
            sorted_tag_rows(tag_totals.get(name, {})), sorted_port_rows(port_counts.get(name, {}))
        )
        assert lake_report == expected.report(), case
        # The same lines are rejected, for the same reasons, as ingest's flow_rejects.
        mine = [(i.line, i.reason) for i in expected.scan.malformed_lines]
        assert mine == sorted(rejects.get(name, [])), case
        got = inputs.get(name)
        scan = expected.scan
        assert (scan.records, scan.nodata, scan.skipped) == (
            (got["records"], got["nodata"], got["skipped"]) if got else (0, 0, 0)
        ), case


def test_lake_plan_is_a_broadcast_hash_join(spark, sample_lake):
    lake, cases = sample_lake
    logs, lookup_file = cases["exercise"]
    records = tables.read(spark, lake, tables.FLOW_RECORDS)
    counts = port_protocol_counts(
        taggable(records).transform(tag_records(lookup_frame(spark, read_lookup(lookup_file))))
    )
    plan = counts._jdf.queryExecution().executedPlan().toString()
    assert "BroadcastHashJoin" in plan
    assert "SortMergeJoin" not in plan


# ------------------------------------------------------------------------ the job, through the CLI


def test_run_tag_lake_cli_tables_csv_and_idempotent(
    spark, sample_lake, tmp_path, monkeypatch, capsys
):
    import flowspark.cli

    lake, cases = sample_lake
    _, lookup_file = cases["exercise"]
    monkeypatch.setattr(flowspark.cli, "spark_for", lambda cfg: spark)
    out = tmp_path / "tags.csv"
    argv = ["tag", "--lake", lake, "--lookup", str(lookup_file), "--out", str(out)]
    assert flowspark.cli.main(argv) == 0
    err = capsys.readouterr().err
    assert "check        tagged" in err and "OK" in err

    # The CSV is single-file mode's report over the same files.
    every_log = sorted({p for logs, _ in cases.values() for p in logs})
    expected = tag_files(every_log, read_lookup(lookup_file))
    assert out.read_text() == expected.report()

    ppc = tables.read(spark, lake, tables.PORT_PROTOCOL_COUNTS)
    tc = tables.read(spark, lake, tables.TAG_COUNTS)
    first_ppc, first_tc = ppc.collect(), tc.collect()
    # tag_counts per date are the port/protocol rows summed; canonical date has the canonical answer + extras
    assert_df_equality(tag_counts(ppc), tc, ignore_row_order=True, ignore_column_order=True, ignore_nullable=True)
    # ingest merged the records into flows: every flows row of a day with a dstport and a protocol (of data
    # records: log_status OK, or no log-status in the format) is counted under one tag of that day
    flows = tables.read(spark, lake, tables.FLOWS)
    data = F.coalesce(F.col("log_status"), F.lit("OK")) == "OK"
    flows = flows.where(data & F.col("dstport").isNotNull() & F.col("protocol").isNotNull())
    flows_per_day = Counter({r["event_date"]: r["count"] for r in flows.groupBy("event_date").count().collect()})
    tagged_per_day: Counter = Counter()
    for r in first_tc:
        tagged_per_day[r["event_date"]] += r["flows"] or 0
    assert tagged_per_day == flows_per_day

    # A rerun (here of one day) replaces that day: tables as after one run, no doubled rows, other days kept.
    assert flowspark.cli.main([*argv, "--from", D.isoformat(), "--to", D.isoformat()]) == 0
    for name, rows, schema in (
        (tables.TAG_COUNTS, first_tc, tc.schema),
        (tables.PORT_PROTOCOL_COUNTS, first_ppc, ppc.schema),
    ):
        again = tables.read(spark, lake, name)
        assert_df_equality(again, spark.createDataFrame(rows, schema), ignore_row_order=True)
    assert tables.last_operation_metrics(spark, lake, tables.TAG_COUNTS)["numOutputRows"] != "0"
    # ... and its CSV covers that day only.
    day_tags = Counter({r["tag"]: r["records"] for r in first_tc if r["event_date"] == D})
    assert out.read_text().startswith(report_text(sorted_tag_rows(day_tags), []).split("\n\n")[0] + "\n\n")
    assert sum(day_tags.values()) < sum(r["records"] for r in first_tc)
    capsys.readouterr()


def test_count_flows_and_bytes_from_a_small_lake(spark, cfg, tmp_path):
    """--count flows tags the `flows` table; --count bytes sums bytes; a missing flows table is an error."""
    from flowspark.core.schema import record_schema

    lake = str(tmp_path / "lake")
    cols = {f.name: None for f in record_schema().fields}

    def rec(dstport, protocol, nbytes, status="OK", day=D):
        return {
            **cols,
            "dstport": dstport,
            "protocol": protocol,
            "bytes": nbytes,
            "log_status": status,
            "source_file": "x",
            "source_line": 1,
            "event_date": day,
        }

    rows = [rec(443, 6, 100), rec(443, 6, 50), rec(22, 6, 7), rec(None, None, None, "NODATA"), rec(9, 17, 1)]
    tables.append(spark.createDataFrame(rows, record_schema()), lake, tables.FLOW_RECORDS, partition_by=["event_date"])
    lookup = tmp_path / "l.csv"
    lookup.write_text("443,tcp,https\n22,tcp,ssh\n")
    with pytest.raises(FileNotFoundError, match="flows"):
        run_tag_lake(spark, lake, str(lookup), count="flows")

    s = run_tag_lake(spark, lake, str(lookup), count="bytes", output=str(tmp_path / "b.csv"))
    assert (s.records, s.nodata, s.skipped, s.matched, s.untagged) == (5, 1, 0, 3, 1)
    assert s.counted == {"https": 150, "ssh": 7, UNTAGGED: 1} and s.reconciled()
    assert (tmp_path / "b.csv").read_text() == report_text(
        [("https", 150), ("ssh", 7), (UNTAGGED, 1)],
        [(443, "tcp", 150), (22, "tcp", 7), (9, "udp", 1)],
        "bytes",
    )

    flows = spark.createDataFrame(
        [(D, 443, 6, 2, 150), (D, 22, 6, 1, 7), (D, 22, 6, 1, 3), (D, 9, 17, 1, 1)],
        "event_date date, dstport int, protocol int, records long, bytes long",
    )
    tables.append(flows, lake, tables.FLOWS)
    s = run_tag_lake(spark, lake, str(lookup), count="flows", output=str(tmp_path / "f.csv"))
    assert (s.matched, s.untagged, s.tags) == (3, 1, 2)  # records, whatever the report counts
    assert s.counted == {"ssh": 2, "https": 1, UNTAGGED: 1} and s.reconciled()
    assert (tmp_path / "f.csv").read_text() == report_text(
        [("ssh", 2), ("https", 1), (UNTAGGED, 1)], [(22, "tcp", 2), (9, "udp", 1), (443, "tcp", 1)], "flows"
    )
    got = {r["tag"]: (r["records"], r["bytes"], r["flows"]) for r in tables.read(spark, lake, tables.TAG_COUNTS).collect()}
    assert got == {"https": (2, 150, 1), "ssh": (1, 7, 2), UNTAGGED: (1, 1, 1)}
