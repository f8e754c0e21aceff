#!/usr/bin/env bash
# Build what spark-submit needs, into dist/:
#   flowspark-<v>-py3-none-any.whl   the wheel (Glue: --additional-python-modules; pip install anywhere)
#   flowspark-<v>.zip                the package alone, for spark-submit --py-files (a .whl is not accepted there)
#   flowspark-venv.tar.gz            a venv-pack archive of flowspark and its runtime dependencies, without
#                                    pyspark (the cluster's Spark provides it), for spark.archives / --archives
#                                    (EMR's documented way to ship Python dependencies)
# The configuration defaults (flowspark/conf: local, emr and glue .toml, the default lookup) are package data
# in all three, read with importlib.resources: no checkout is needed beside them.
# Usage: scripts/package.sh [python]   (make package; the python must have pip and venv-pack available)
#        ARCHIVE=0 scripts/package.sh  (the wheel and the zip only)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${1:-.venv/bin/python}
version=$("$PY" -c 'import flowspark; print(flowspark.__version__)')
rm -rf dist build && mkdir -p dist
"$PY" -m pip wheel --quiet --no-deps . -w dist
(cd . && "$PY" - "$version" <<'PYEOF'
import sys, zipfile, pathlib
version = sys.argv[1]
with zipfile.ZipFile(f"dist/flowspark-{version}.zip", "w", zipfile.ZIP_DEFLATED) as z:
    for p in sorted(pathlib.Path("flowspark").rglob("*")):
        if p.is_file() and "__pycache__" not in p.parts:
            z.write(p, p.as_posix())
PYEOF
)
if [ "${ARCHIVE:-1}" = 0 ]; then ls -l dist; exit 0; fi
pack=build/pack-venv
rm -rf "$pack"
"$PY" -m venv "$pack"
"$pack/bin/python" -m pip install --quiet --upgrade pip
"$pack/bin/python" -m pip install --quiet "dist/flowspark-${version}-py3-none-any.whl"
"$(dirname "$PY")/venv-pack" -p "$pack" -o dist/flowspark-venv.tar.gz --force --quiet
ls -l dist
