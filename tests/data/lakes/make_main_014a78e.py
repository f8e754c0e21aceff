"""Make tests/data/lakes/main-014a78e: a lake written by flowspark at commit 014a78e (encryption-status stored as
text in `encryption_status`), with the source objects beside it. Run with that commit's code on the path."""
# Run: git worktree add /tmp/w 014a78e; cd /tmp/w; PYTHONPATH=/tmp/w <repo>/.venv/bin/python <repo>/tests/data/lakes/make_main_014a78e.py <repo>/tests/data/lakes/main-014a78e
import json, shutil, sys
from pathlib import Path
out = Path(sys.argv[1]); src_root = Path("/tmp/flowspark-main-014a78e")  # the source's path when the lake was made
shutil.rmtree(out, ignore_errors=True); shutil.rmtree(src_root, ignore_errors=True)
from flowspark.generator import generate
truth = generate(str(src_root / "gen"), records=2000, seed=73, accounts=1, regions=1, days=1, workers=1, quiet=True,
                 log_format="v11")
objs = sorted((src_root / "gen").rglob("*.log.gz"))
first, later = objs[::2], objs[1::2]  # the same day and windows in both halves: later merges rewrite old rows
a = src_root / "src"
for p in first:
    d = a / p.relative_to(src_root / "gen"); d.parent.mkdir(parents=True, exist_ok=True); shutil.copy2(p, d)
from flowspark.edges.config import load_config, with_overrides
from flowspark.edges.session import create_session
from flowspark.pipelines.ingest import run_ingest
cfg = with_overrides(load_config("local"), spark={"master": "local[2]", "shuffle_partitions": 2})
spark = create_session(cfg)
lake = src_root / "lake"
s = run_ingest(spark, cfg, str(a), str(lake)); print(s.text())
assert dict(spark.read.format("delta").load(str(lake / "flows")).dtypes)["encryption_status"] == "string"
out.mkdir(parents=True)
shutil.copytree(lake, out / "lake")
shutil.copytree(a, out / "source-a")
for p in later:
    d = out / "source-b" / p.relative_to(src_root / "gen"); d.parent.mkdir(parents=True, exist_ok=True); shutil.copy2(p, d)
(out / "truth.json").write_text(json.dumps({k: v for k, v in truth["v11"].items() if k.startswith("accepted_bytes_encryption_")}, indent=1))
(out / "README.md").write_text(f"""# A lake written by flowspark at commit 014a78e

Made by `../{Path(__file__).name}` with the code of commit 014a78e, the last to store `encryption-status` as
text (`encryption_status`): 2 000 generated version 11 records (`generate(records=2000, seed=73, accounts=1,
regions=1, days=1, log_format="v11")`); every other object (`source-a/`, {len(first)} objects) was ingested
from `{a}` into `lake/`. `source-b/` holds the other {len(later)}: they arrive later, into the same day and windows.
`truth.json`: the generator's accepted bytes per encryption-status over both halves.
""")
print("objects a", len(first), "b", len(later))
