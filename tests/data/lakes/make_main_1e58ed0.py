"""Make tests/data/lakes/main-1e58ed0: a lake written by flowspark at commit 1e58ed0 (before ingest kept flows),
with the source objects beside it. Run with that commit's code on the path (a git worktree)."""
# Run: git worktree add /tmp/w 1e58ed0; cd /tmp/w; PYTHONPATH=/tmp/w <repo>/.venv/bin/python <repo>/tests/data/lakes/make_main_1e58ed0.py <repo>/tests/data/lakes/main-1e58ed0
import gzip, json, shutil, sys
from pathlib import Path
out = Path(sys.argv[1]); src_root = Path("/tmp/flowspark-main-1e58ed0")  # the source's path when the lake was made
shutil.rmtree(out, ignore_errors=True); shutil.rmtree(src_root, ignore_errors=True)
from flowspark.generator import generate
truth = generate(str(src_root / "gen"), records=3000, seed=71, accounts=1, regions=1, days=2, workers=1, quiet=True)
objs = sorted((src_root / "gen").rglob("*.log.gz"))
day1 = [p for p in objs if "_20240601T" in p.name]
day2 = [p for p in objs if "_20240602T" in p.name]
late = day1[100]
a = src_root / "src"
for p in day1:
    if p != late:
        d = a / p.relative_to(src_root / "gen"); d.parent.mkdir(parents=True, exist_ok=True); shutil.copy2(p, d)
from flowspark.edges.config import load_config, with_overrides
from flowspark.edges.session import create_session
from flowspark.pipelines.ingest import run_ingest
from flowspark.pipelines.dedup import run_dedup
cfg = with_overrides(load_config("local"), spark={"master": "local[2]", "shuffle_partitions": 2})
spark = create_session(cfg)
lake = src_root / "lake"
s = run_ingest(spark, cfg, str(a), str(lake)); print(s.text())
d = run_dedup(spark, cfg, str(lake)); print(d.text())
out.mkdir(parents=True)
shutil.copytree(lake, out / "lake")
shutil.copytree(a, out / "source-a")
later = out / "source-b"
for p in day2 + [late]:
    d = later / p.relative_to(src_root / "gen"); d.parent.mkdir(parents=True, exist_ok=True); shutil.copy2(p, d)
(out / "README.md").write_text(f"""# A lake written by flowspark at commit 1e58ed0

Made by `{Path(__file__).name}`  with the code of commit 1e58ed0 (before
ingest kept flows): 3 000 generated records (`generate(records=3000, seed=71, accounts=1, regions=1, days=2)`);
day 1's objects but one (`source-a/`) were ingested from `{a}` and compacted with `flowspark dedup` into
`lake/`. `source-b/` holds day 2's objects and the day-1 object held back ({late.name}): they arrive later.
The lake's paths name `{a}`: tests move them to where they copy the source.
""")
print("objects a", len(day1) - 1, "b", len(day2) + 1)
