"""Finding flow log objects under a folder or an S3 prefix, in both AWS key layouts.

Default layout:  AWSLogs/<acct>/vpcflowlogs/<region>/YYYY/MM/DD/[HH/]<file>
Hive layout:     AWSLogs/aws-account-id=<acct>/aws-service=vpcflowlogs/aws-region=<r>/
                 year=YYYY/month=MM/day=DD/[hour=HH/]
Plain folder:    any tree of .log / .log.gz / .log.parquet files.

With a date range the walk descends folder by folder and never enters a year, month or day folder
outside the range, so a month out of a year of logs costs a few dozen LIST calls, not a full listing.
Local folders are walked with os.scandir; every other scheme through Hadoop's FileSystem API (S3A,
EMRFS, HDFS), which needs the SparkSession's JVM.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from flowspark.core.ipranges import IpRangesError, decode_ip_ranges

_YEAR = re.compile(r"^(?:year=)?((?:19|20)\d\d)$")
_MONTH = re.compile(r"^(?:month=)?(0[1-9]|1[0-2])$")
_DAY = re.compile(r"^(?:day=)?(0[1-9]|[12]\d|3[01])$")


@dataclass(frozen=True)
class SourceFile:
    path: str  # a URI: file:///abs/path or s3a://bucket/key
    size: int
    mtime_ms: int


def is_local(uri: str) -> bool:
    return "://" not in uri or uri.startswith("file:")


def to_local_path(uri: str) -> str:
    if uri.startswith("file://"):
        return uri[len("file://") :]
    if uri.startswith("file:"):
        return uri[len("file:") :]
    return uri


def normalise_uri(uri: str) -> str:
    """A source or lake location as a URI Spark and Hadoop accept (local paths become absolute)."""
    if is_local(uri):
        return "file://" + os.path.abspath(os.path.expanduser(to_local_path(uri)))
    return uri.rstrip("/")


def _date_prune(parts: list[str], date_from: dt.date | None, date_to: dt.date | None) -> bool:
    """True if the folder path (relative segments) lies wholly outside the date range."""
    if date_from is None and date_to is None:
        return False
    year = month = None
    for i, seg in enumerate(parts):
        m = _YEAR.match(seg)
        if not m:
            continue
        year = int(m.group(1))
        lo = (date_from or dt.date.min).replace(day=1)
        hi = date_to or dt.date.max
        if i + 1 < len(parts) and (mm := _MONTH.match(parts[i + 1])):
            month = int(mm.group(1))
            if i + 2 < len(parts) and (dd := _DAY.match(parts[i + 2])):
                try:
                    day = dt.date(year, month, int(dd.group(1)))
                except ValueError:
                    return False
                return not ((date_from or dt.date.min) <= day <= hi)
            first = dt.date(year, month, 1)
            return first > hi or (first.replace(day=28) + dt.timedelta(days=4)).replace(day=1) <= lo
        return year < lo.year or year > hi.year
    return False


def _wanted(name: str, suffixes: tuple[str, ...]) -> bool:
    return not name.startswith(("_", ".")) and name.endswith(suffixes)


def _walk_local(root: str, suffixes: tuple[str, ...], date_from, date_to) -> Iterator[SourceFile]:
    base = to_local_path(root)
    if os.path.isfile(base):
        st = os.stat(base)
        yield SourceFile("file://" + os.path.abspath(base), st.st_size, int(st.st_mtime * 1000))
        return
    if not os.path.isdir(base):
        raise FileNotFoundError(f"source folder not found: {base}")
    stack: list[tuple[str, list[str]]] = [(base, [])]
    while stack:
        folder, rel = stack.pop()
        with os.scandir(folder) as it:
            entries = sorted(it, key=lambda e: e.name)
        for e in entries:
            if e.is_dir(follow_symlinks=True):
                if e.name.startswith(("_", ".")):
                    continue
                sub = rel + [e.name]
                if not _date_prune(sub, date_from, date_to):
                    stack.append((e.path, sub))
            elif _wanted(e.name, suffixes):
                st = e.stat()
                yield SourceFile("file://" + os.path.abspath(e.path), st.st_size, int(st.st_mtime * 1000))


def _walk_hadoop(spark: Any, root: str, suffixes: tuple[str, ...], date_from, date_to) -> Iterator[SourceFile]:
    jvm = spark.sparkContext._jvm
    hconf = spark.sparkContext._jsc.hadoopConfiguration()
    root_path = jvm.org.apache.hadoop.fs.Path(root)
    fs = root_path.getFileSystem(hconf)
    if not fs.exists(root_path):
        raise FileNotFoundError(f"source prefix not found (or empty): {root}")
    if date_from is None and date_to is None:
        # One recursive listing: S3A turns this into flat, paged LIST calls.
        it = fs.listFiles(root_path, True)
        while it.hasNext():
            st = it.next()
            name = st.getPath().getName()
            rel = str(st.getPath().toString())[len(root) :].strip("/").split("/")[:-1]
            if _wanted(name, suffixes) and not any(p.startswith(("_", ".")) for p in rel):
                yield SourceFile(st.getPath().toString(), st.getLen(), st.getModificationTime())
        return
    stack: list[tuple[Any, list[str]]] = [(root_path, [])]
    while stack:
        folder, rel = stack.pop()
        for st in fs.listStatus(folder):
            p = st.getPath()
            name = p.getName()
            if st.isDirectory():
                sub = rel + [name]
                if not name.startswith(("_", ".")) and not _date_prune(sub, date_from, date_to):
                    stack.append((p, sub))
            elif _wanted(name, suffixes):
                yield SourceFile(p.toString(), st.getLen(), st.getModificationTime())


def discover(
    spark: Any,
    source: str,
    suffixes: tuple[str, ...],
    date_from: dt.date | None = None,
    date_to: dt.date | None = None,
) -> list[SourceFile]:
    """Every flow log object under `source` whose folder date (if any) is in [date_from, date_to]."""
    root = normalise_uri(source)
    if is_local(root):
        files = list(_walk_local(root, suffixes, date_from, date_to))
    else:
        files = list(_walk_hadoop(spark, root, suffixes, date_from, date_to))
    return sorted(files, key=lambda f: f.path)


def read_first_lines(spark: Any, files: list[SourceFile], threads: int = 16) -> dict[str, str]:
    """The first line of every file (gzip-aware), read before the Spark job to learn formats.

    Local files are read with Python; other schemes through Hadoop's FileSystem (one small GET
    each on S3), in a thread pool so a thousand objects cost a couple of seconds, not a minute.
    """
    import gzip
    from concurrent.futures import ThreadPoolExecutor

    def local_first(f: SourceFile) -> str:
        path = to_local_path(f.path)
        opener = gzip.open if path.endswith(".gz") else open
        with opener(path, "rb") as fh:
            try:
                line = fh.readline(1 << 16)
            except (OSError, EOFError):
                return ""  # a corrupt gzip: its lines fail in Spark and are reported there
        return line.decode("utf-8", errors="replace")

    if all(is_local(f.path) for f in files):
        return {f.path: local_first(f) for f in files}

    jvm = spark.sparkContext._jvm
    hconf = spark.sparkContext._jsc.hadoopConfiguration()
    factory = jvm.org.apache.hadoop.io.compress.CompressionCodecFactory(hconf)

    def remote_first(f: SourceFile) -> str:
        if is_local(f.path):
            return local_first(f)
        p = jvm.org.apache.hadoop.fs.Path(f.path)
        stream = p.getFileSystem(hconf).open(p)
        codec = factory.getCodec(p)
        if codec is not None:
            stream = codec.createInputStream(stream)
        reader = jvm.java.io.BufferedReader(jvm.java.io.InputStreamReader(stream, "UTF-8"))
        try:
            return reader.readLine() or ""
        finally:
            reader.close()

    with ThreadPoolExecutor(max_workers=threads) as pool:
        return dict(zip([f.path for f in files], pool.map(remote_first, files)))


def canonical(uri: str) -> str:
    """One name per object whatever scheme reached it (s3a://, s3n:// and s3:// are the same bucket)."""
    for scheme in ("s3a://", "s3n://"):
        if uri.startswith(scheme):
            return "s3://" + uri[len(scheme) :]
    if uri.startswith("file:///"):
        return "file:/" + uri[len("file:///") :]
    return uri


def open_lines(path: str) -> Iterator[bytes]:
    """The lines of a local text file, plain or gzip, as raw bytes (tag's single-file mode)."""
    import gzip

    opener: Any = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as fh:
        yield from fh


def read_ip_ranges_text(spark: Any, source: str, timeout: float = 60.0) -> str:
    """The text of ip-ranges.json from an https URL, a local file, or any Hadoop URI (s3://, s3a://).

    URLs and local files are read in Python (no Spark needed); other URIs through Spark's own file
    systems, so S3 endpoint and credential settings are the session's.
    """
    if source.startswith(("http://", "https://")):
        try:
            with urllib.request.urlopen(source, timeout=timeout) as resp:
                raw = resp.read()
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise RuntimeError(
                f"cannot download {source}: {reason}; offline, pass --source FILE or s3://bucket/key "
                "with a copy of ip-ranges.json"
            ) from exc
        return decode_ip_ranges(raw, source)
    if is_local(source):
        path = to_local_path(source)
        try:
            with open(path, "rb") as fh:
                raw = fh.read()
        except FileNotFoundError:
            raise FileNotFoundError(f"ip-ranges file not found: {path}") from None
        return decode_ip_ranges(raw, source)
    if spark is None:
        raise ValueError(f"reading {source} needs a SparkSession")
    from pyspark.errors import AnalysisException

    try:
        # wholetext: one row holding the whole (small) object; collecting it is bounded by its size.
        rows = spark.read.text(normalise_uri(source), wholetext=True).collect()
    except AnalysisException as exc:
        raise FileNotFoundError(f"ip-ranges object not found: {source} ({exc})") from None
    if len(rows) != 1:
        raise IpRangesError(f"{source}: expected one ip-ranges.json object, found {len(rows)}")
    return str(rows[0][0]).lstrip("\ufeff")


