"""The CLI's option convention, exit codes and checks made before Spark starts (no JVM here: every path to a
Spark session goes through cli.spark_for, which these tests replace with one that fails the test)."""

from __future__ import annotations

import pytest

from flowspark import cli
from flowspark.pipelines.ingest import IngestSummary


@pytest.fixture
def no_spark(monkeypatch):
    def refuse(cfg):
        raise AssertionError("a Spark session was asked for")

    monkeypatch.setattr(cli, "spark_for", refuse)


def parse(*argv: str):
    return cli.build_parser().parse_args(list(argv))


def test_one_spelling_per_meaning_and_the_old_ones_still_work_with_a_warning():
    new = parse("ingest", "--source", "s", "--lake", "l", "--input-format", "version srcaddr")
    old = parse("ingest", "--source", "s", "--lake", "l", "--format", "version srcaddr")
    assert new.input_format == old.input_format == "version srcaddr"
    assert not getattr(new, "deprecated", None)
    assert old.deprecated == ["--format is deprecated here: use --input-format (it will go in the next release)"]
    assert parse("tag", "--flow-log", "f", "--format", "x", "--out", "o").input_format == "x"
    assert parse("tag", "--flow-log", "f", "--output", "o").out == "o"  # an alias, not deprecated
    assert parse("run", "--lake", "l", "--format", "html", "--out", "d").format == "html"
    old_run = parse("run", "--lake", "l", "--report-format", "html", "--out", "d")
    assert old_run.format == "html" and "use --format" in old_run.deprecated[0]
    assert parse("run", "--lake", "l", "--input-format", "version srcaddr").input_format == "version srcaddr"
    assert parse("ip-ranges", "--lake", "l", "--ip-ranges", "f.json").ip_ranges == "f.json"
    old_ip = parse("ip-ranges", "--lake", "l", "--source", "f.json")
    assert old_ip.ip_ranges == "f.json" and "use --ip-ranges" in old_ip.deprecated[0]
    assert parse("report", "all", "--lake", "l", "--format", "csv", "--out", "d").format == "csv"


def test_a_deprecated_spelling_is_said_once_as_a_warning(tmp_path, capsys, caplog, no_spark):
    caplog.set_level("WARNING", logger="flowspark")
    # ip-ranges reads a local file before Spark: a malformed one ends the command there (exit 2)
    bad = tmp_path / "ip-ranges.json"
    bad.write_text("{}")
    assert cli.main(["ip-ranges", "--lake", str(tmp_path / "lake"), "--source", str(bad)]) == 2
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert warnings == ["--source is deprecated here: use --ip-ranges (it will go in the next release)"]


def test_argument_errors_are_one_line_without_the_usage(capsys):
    for argv, words in [
        (["ingest", "--source", "s", "--lake", "l", "--from", "2024-13-01"], "not a date: '2024-13-01'"),
        (["ingest", "--source", "s"], "the following arguments are required: --lake"),
        (["ingest", "--source", "s", "--lake", "l", "--max-reject-ratio", "1.5"], "not a share between 0 and 1"),
        (["nosuch"], "invalid choice: 'nosuch'"),
    ]:
        with pytest.raises(SystemExit) as ex:
            cli.main(argv)
        assert ex.value.code == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and words in err[0] and "usage:" not in err[0], err
        assert err[0].startswith("flowspark") and "--help'" in err[0]


def test_help_lists_every_command_the_conventions_and_the_exit_codes(capsys):
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    out = capsys.readouterr().out
    commands = cli.build_parser()._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    for name in commands:
        assert f"\n    {name} " in out or f"\n    {name}\n" in out, name
    for code in ("0 ", "1 ", "2 ", "3 ", "4 ", "130 "):
        assert f"\n  {code}" in out, code
    assert "--input-format the field order" in out
    for name in commands:
        with pytest.raises(SystemExit):
            cli.main([name, "--help"])
        assert "exit codes: 0 done" in " ".join(capsys.readouterr().out.split()), name


def test_report_names_have_one_spelling(tmp_path, capsys, no_spark):
    assert cli.main(["report", "north_south_x", "--lake", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert "choose one of north-south, runts, talkers, hunt, network or all" in err and "north_south," not in err


@pytest.mark.parametrize(
    "case",
    ["source", "run-source", "classify", "report", "dedup", "tag", "lake-under-a-file", "input-format"],
)
def test_preconditions_are_said_before_spark_starts(case, tmp_path, capsys, no_spark):
    lake = tmp_path / "lake"
    (lake / "flows" / "_delta_log").mkdir(parents=True)  # a lake with flows and nothing else
    src = tmp_path / "src"
    src.mkdir()
    (tmp_path / "file").write_text("x")
    argv, words = {
        "source": (["ingest", "--source", str(tmp_path / "none"), "--lake", str(lake)], "source folder not found"),
        "run-source": (["run", "--source", str(tmp_path / "none"), "--lake", str(lake)], "source folder not found"),
        "classify": (["classify", "--lake", str(lake)], "aws_ip_ranges: run 'flowspark ip-ranges' first"),
        "report": (["report", "all", "--lake", str(tmp_path / "empty")], "flows: run flowspark ingest"),
        "dedup": (["dedup", "--lake", str(lake)], "flow_records: run flowspark ingest"),
        "tag": (["tag", "--lake", str(lake), "--out", "-"], "flow_records: run flowspark ingest"),
        "lake-under-a-file": (
            ["ingest", "--source", str(src), "--lake", str(tmp_path / "file" / "lake")],
            "cannot be created: " + str(tmp_path / "file") + " is a file",
        ),
        "input-format": (
            ["ingest", "--source", str(src), "--lake", str(lake), "--input-format", "version srcadr"],
            "srcadr",
        ),
    }[case]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and words in err[0], err
    assert err[0].startswith(f"flowspark {argv[0]}: error: ")


def _summary(**counts) -> IngestSummary:
    s = IngestSummary(ingest_id="x", source="s", lake="l")
    for k, v in counts.items():
        setattr(s, k, v)
    return s


def test_exit_3_and_4_from_what_ingest_read(capsys):
    # 100 record lines, 10 rejected, in 4 objects of which 1 broke part-way
    some = dict(files_read=4, records=100, rejected=10, rows_written=90, objects_rejected=1)
    assert cli.ingest_exit("ingest", _summary(**some), None) == 0
    assert cli.ingest_exit("ingest", _summary(**some), 0.25) == 0  # 10 % and 25 %: not above
    assert cli.ingest_exit("ingest", _summary(**some), 0.2) == 4  # objects: 25 % > 20 %
    assert cli.ingest_exit("ingest", _summary(**some), 0.09) == 4  # lines: 10 % > 9 %
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and err[1].startswith("flowspark ingest: error: rejected 10 of 100 record lines (10.0%)")
    assert cli.ingest_exit("run", _summary(files_read=0), 0.0) == 0  # nothing read, nothing to judge
    # nothing usable: 3 comes first, whatever the ratio
    assert cli.ingest_exit("run", _summary(files_read=2, records=5, rejected=5), 1.0) == 3
    assert cli.ingest_exit("run", _summary(files_read=2, objects_rejected=2, broken=[("a", "why", 0)]), None) == 3


def test_generate_writes_version_11_and_says_what_it_wrote(tmp_path, capsys, no_spark):
    out = tmp_path / "raw"
    # one process: this test's process may hold a Spark session of other tests, and a fork copies its locks
    args = ["generate", "--out", str(out), "--records", "400", "--accounts", "1", "--regions", "1", "--workers", "1"]
    assert cli.main([*args, "--field-version", "11", "--file-format", "parquet", "--key-layout", "hive"]) == 0
    said = capsys.readouterr().out
    assert "400 records in 288 objects (flow log version 11, parquet, hive key layout)" in said
    assert len(list(out.rglob("aws-account-id=*/**/*.log.parquet"))) == 288
    # a second run into the same folder: one line, exit 2, nothing changed
    assert cli.main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("flowspark generate: error:") and "--overwrite" in err and "\n" not in err
