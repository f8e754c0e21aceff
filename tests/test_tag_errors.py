"""flowspark tag, lake mode: a lookup with no valid row is an error (exit 2) with or without --strict, and
the tag tables are left exactly as they were (it used to replace tag_counts with every record Untagged)."""

from __future__ import annotations

import random
import shutil

import pytest
from chispa import assert_df_equality
from tagmapper_cases import case_paths

from flowspark.edges import tables


@pytest.fixture(scope="module")
def tagged_lake(spark, cfg, samples, tmp_path_factory):
    """A lake with the exercise sample ingested and tagged once with its own lookup (the tests leave it as
    it is: that is what they check)."""
    import flowspark.cli
    from flowspark.pipelines.ingest import run_ingest

    root = tmp_path_factory.mktemp("tag_errors")
    logs, lookup_file = case_paths(samples, "exercise")
    src = root / "src"
    src.mkdir()
    for log in logs:
        shutil.copyfile(log, src / "exercise.log")
    lake = str(root / "lake")
    run_ingest(spark, cfg, source=str(src), lake=lake)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(flowspark.cli, "spark_for", lambda cfg: spark)  # the session fixture, as it is
        argv = ["tag", "--lake", lake, "--lookup", str(lookup_file), "--out", str(root / "first.csv")]
        assert flowspark.cli.main(argv) == 0
    return lake


@pytest.mark.slow
@pytest.mark.parametrize("strict", [False, True])
@pytest.mark.parametrize("kind", ["random bytes", "csv without a valid row"])
def test_lake_mode_lookup_without_a_valid_row_is_an_error_and_touches_nothing(
    spark, tagged_lake, tmp_path, capsys, strict, kind
):
    from flowspark.cli import main

    lake = tagged_lake
    names = (tables.TAG_COUNTS, tables.PORT_PROTOCOL_COUNTS)
    before = {n: (tables.version(spark, lake, n), tables.read(spark, lake, n).localCheckpoint()) for n in names}
    assert tables.read(spark, lake, tables.TAG_COUNTS).where("tag != 'Untagged'").count() > 0
    capsys.readouterr()

    garbage = tmp_path / "garbage.csv"
    if kind == "random bytes":
        garbage.write_bytes(random.Random(7).randbytes(4000))
    else:
        garbage.write_text("port,protocol,tag\n70000,tcp,x\n25,nope,y\n80,tcp,Untagged\n")
    argv = ["tag", "--lake", lake, "--lookup", str(garbage), "--out", str(tmp_path / "out.csv")]
    assert main(argv + (["--strict"] if strict else [])) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"flowspark tag: error: {garbage}: no valid 'port,protocol,tag' row")
    assert err.count("\n") == 1  # one line
    assert not (tmp_path / "out.csv").exists()
    for n in names:
        version, rows = before[n]
        assert tables.version(spark, lake, n) == version
        assert_df_equality(tables.read(spark, lake, n), rows, ignore_row_order=True)
