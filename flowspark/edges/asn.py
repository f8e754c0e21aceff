"""Offline ASN labels for Internet peers from a MaxMind-format database (GeoLite2-ASN .mmdb or any file
with autonomous_system_number / autonomous_system_organization records), read with `maxminddb`. No
online lookup, ever.

The lookup runs on the executors: a mapInArrow over the distinct addresses opens the .mmdb once per
partition. Spark has no built-in function that reads a MaxMind database, hence the Python function; the
file is shipped to the executors with SparkContext.addFile (under a name derived from its content, so two
different files never clash and the same file is shipped once per application).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

ASN_SCHEMA = "peer string, asn long, asn_org string"
_SHIPPED: set[tuple[str, str]] = set()  # (application, file name) added with addFile


def check_database(path: str, option: str = "--asn-db", example: str = "GeoLite2-ASN.mmdb") -> Path:
    """The .mmdb file, checked on the driver before any Spark work: FileNotFoundError/ValueError in one line."""
    p = Path(path).expanduser()
    if not p.is_file():
        raise FileNotFoundError(f"{option} {path}: no such file (give a MaxMind-format .mmdb, e.g. {example})")
    import maxminddb

    try:
        maxminddb.open_database(str(p)).close()
    except Exception as exc:  # maxminddb raises InvalidDatabaseError / ValueError for a file of another kind
        raise ValueError(f"{option} {path} is not a MaxMind DB file ({type(exc).__name__}: {exc})") from None
    return p.resolve()


def _ship(spark: Any, path: Path) -> str:
    """Add the file to the Spark application once (content-named copy); returns the name SparkFiles knows."""
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    name = f"flowspark-asn-{h.hexdigest()[:16]}.mmdb"
    folder = Path(tempfile.gettempdir()) / "flowspark-asn"
    folder.mkdir(exist_ok=True)
    copy = folder / name
    if not copy.exists():  # written aside, then renamed: another process never sees half a file
        fd, tmp = tempfile.mkstemp(dir=folder, suffix=".part")
        os.close(fd)
        shutil.copyfile(path, tmp)
        os.replace(tmp, copy)
    key = (spark.sparkContext.applicationId, name)
    if key not in _SHIPPED:
        spark.sparkContext.addFile(str(copy))
        _SHIPPED.add(key)
    return name


def _lookup(name: str):
    def run(batches: Iterator[Any]) -> Iterator[Any]:
        import maxminddb
        import pyarrow as pa
        from pyspark import SparkFiles

        reader = maxminddb.open_database(SparkFiles.get(name))
        try:
            for batch in batches:
                peers = batch.column(0).to_pylist()
                asns: list[Any] = []
                orgs: list[Any] = []
                for ip in peers:
                    rec = None
                    if ip:
                        try:
                            rec = reader.get(ip)
                        except ValueError:  # not an address, or IPv6 in an IPv4-only database
                            rec = None
                    rec = rec if isinstance(rec, dict) else {}
                    num = rec.get("autonomous_system_number")
                    asns.append(int(num) if isinstance(num, (int, float, str)) else None)
                    orgs.append(rec.get("autonomous_system_organization"))
                yield pa.RecordBatch.from_arrays(
                    [pa.array(peers, pa.string()), pa.array(asns, pa.int64()), pa.array(orgs, pa.string())],
                    names=["peer", "asn", "asn_org"],
                )
        finally:
            reader.close()

    return run


def peer_asn(addresses: DataFrame, path: str, column: str = "peer") -> DataFrame:
    """The distinct addresses of `column` -> peer, asn, asn_org (null when the database has none)."""
    spark = addresses.sparkSession
    name = _ship(spark, check_database(path))
    peers = addresses.select(F.col(column).cast("string").alias("peer")).where(F.col("peer").isNotNull()).distinct()
    return peers.mapInArrow(_lookup(name), ASN_SCHEMA)


COUNTRY_SCHEMA = "peer string, country string, country_name string"


def check_geo_database(path: str) -> Path:
    return check_database(path, "--geo-db", "GeoLite2-Country.mmdb or DB-IP's dbip-country-lite.mmdb")


def _country_lookup(name: str):
    """A GeoLite2-Country-shaped record: country (else registered_country) -> iso_code, names.en."""

    def run(batches: Iterator[Any]) -> Iterator[Any]:
        import maxminddb
        import pyarrow as pa
        from pyspark import SparkFiles

        reader = maxminddb.open_database(SparkFiles.get(name))
        try:
            for batch in batches:
                peers = batch.column(0).to_pylist()
                codes: list[Any] = []
                names: list[Any] = []
                for ip in peers:
                    rec: Any = None
                    if ip:
                        try:
                            rec = reader.get(ip)
                        except ValueError:
                            rec = None
                    rec = rec if isinstance(rec, dict) else {}
                    country = rec.get("country") or rec.get("registered_country") or {}
                    country = country if isinstance(country, dict) else {}
                    en = (country.get("names") or {}).get("en") if isinstance(country.get("names"), dict) else None
                    codes.append(country.get("iso_code"))
                    names.append(en)
                yield pa.RecordBatch.from_arrays(
                    [pa.array(peers, pa.string()), pa.array(codes, pa.string()), pa.array(names, pa.string())],
                    names=["peer", "country", "country_name"],
                )
        finally:
            reader.close()

    return run


def peer_country(addresses: DataFrame, path: str, column: str = "peer") -> DataFrame:
    """The distinct addresses of `column` -> peer, country (ISO 3166 code), country_name (English), null
    when the database has none (private addresses, unknown ranges). Offline, on the executors."""
    spark = addresses.sparkSession
    name = _ship(spark, check_geo_database(path))
    peers = addresses.select(F.col(column).cast("string").alias("peer")).where(F.col("peer").isNotNull()).distinct()
    return peers.mapInArrow(_country_lookup(name), COUNTRY_SCHEMA)
