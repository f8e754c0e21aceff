"""The artifacts `make package` builds carry everything a job needs from flowspark itself, the configuration
defaults included (issue 24, item 0): the --py-files zip imported from the zip alone reads its conf/*.toml and
the default lookup through importlib.resources, and the wheel holds the same files. (Before, the zip ended
every job with "config file .../flowspark-0.1.0.zip/conf/local.toml not found".) The wheel installed into a
fresh venv runs a job in test_wheel_in_a_fresh_venv_runs_an_ingest (slow); the zip and the venv-pack archive
run on a two-worker cluster in tests/test_cluster.py (slow)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DEFAULTS = ["emr.toml", "glue.toml", "local.toml", "lookup_default.csv"]


def build(dest: Path, archive: bool = False) -> Path:
    """scripts/package.sh run in a copy of the sources (the build writes build/, dist/ and the egg-info
    beside them, and the other Spark lane may build at the same time); its dist/."""
    junk = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in ("flowspark", "scripts"):
        shutil.copytree(REPO / name, dest / name, symlinks=True, ignore=junk)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, dest / name)
    env = {**os.environ, "ARCHIVE": "1" if archive else "0"}
    subprocess.run(["bash", "scripts/package.sh", sys.executable], cwd=dest, check=True, capture_output=True, env=env)
    return dest / "dist"


@pytest.fixture(scope="module")
def dist(tmp_path_factory) -> Path:
    return build(tmp_path_factory.mktemp("package-src"))


def test_the_zip_alone_reads_its_configuration_defaults(dist, tmp_path):
    """Python with the zip first on its path (as spark-submit --py-files puts it) imports flowspark from the
    zip, loads each shipped environment and the default lookup from inside it, and runs the CLI's help."""
    zipped = next(dist.glob("flowspark-*.zip"))
    probe = f"""
import sys
sys.path.insert(0, {str(zipped)!r})
import flowspark
assert flowspark.__file__.startswith({str(zipped)!r}), flowspark.__file__
from flowspark.edges.config import load_config
from flowspark.pipelines.tag import read_lookup
envs = [load_config(e).env for e in ("local", "emr", "glue")]
lookup = read_lookup()
print(envs, len(lookup.tags), lookup.source)
from flowspark.cli import main
sys.exit(main(["ingest", "--help"]))
"""
    env = {k: v for k, v in os.environ.items() if k != "FLOWSPARK_CONF_DIR"}
    r = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stderr[-2000:]
    first = r.stdout.splitlines()[0]
    assert first.startswith("['local', 'emr', 'glue'] ") and f"{zipped}/flowspark/conf/lookup_default.csv" in first
    assert int(first.split(" ")[3]) > 10  # the default lookup's entries
    assert "--source" in r.stdout  # the ingest help


def test_the_wheel_and_the_zip_hold_the_defaults_as_the_source_has_them(dist):
    for artifact in (next(dist.glob("*.whl")), next(dist.glob("flowspark-*.zip"))):
        with zipfile.ZipFile(artifact) as z:
            for name in DEFAULTS:
                assert z.read(f"flowspark/conf/{name}") == (REPO / "flowspark" / "conf" / name).read_bytes(), (
                    artifact.name,
                    name,
                )


@pytest.mark.slow
def test_wheel_in_a_fresh_venv_runs_an_ingest(tmp_path):
    """The wheel, installed with its Spark extra into a new venv (nothing of this checkout on its path), runs
    `flowspark ingest` from a folder outside the repository on AWS's documented examples: exit 0, reconciled."""
    import pyspark

    dist = build(tmp_path / "src")
    wheel = next(dist.glob("*.whl"))
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    extra = "spark35" if pyspark.__version__.startswith("3.") else "spark"  # this lane's Spark line
    uv = Path(sys.executable).with_name("uv")
    installer = [str(uv), "pip", "install", "--python", str(venv / "bin" / "python")] if uv.exists() else [
        str(venv / "bin" / "python"), "-m", "pip", "install"
    ]  # fmt: skip
    subprocess.run([*installer, "--quiet", f"{wheel}[{extra}]"], check=True, capture_output=True)
    src = tmp_path / "src-logs"
    shutil.copytree(REPO / "tests" / "data" / "samples" / "aws-docs-flow-log-examples", src,
                    ignore=shutil.ignore_patterns("README.md"))  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k not in ("FLOWSPARK_CONF_DIR", "PYTHONPATH", "VIRTUAL_ENV")}
    run = tmp_path / "run"
    run.mkdir()
    r = subprocess.run([str(venv / "bin" / "flowspark"), "ingest", "--source", str(src), "--lake", str(run / "lake")],
                       capture_output=True, text=True, cwd=run, env=env, timeout=600)  # fmt: skip
    assert r.returncode == 0, r.stderr[-3000:]
    assert "check          records" in r.stdout and ": OK" in r.stdout, r.stdout[-2000:]
    where = subprocess.run([str(venv / "bin" / "python"), "-c", "import flowspark; print(flowspark.__file__)"],
                           capture_output=True, text=True, cwd=run, env=env, check=True).stdout  # fmt: skip
    assert where.startswith(str(venv)), where
