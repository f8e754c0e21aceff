"""Typed job configuration: conf/<env>.toml, then CLI overrides.

Config is data: paths, windows, thresholds and Spark settings live in TOML files, never as constants
in job code. A bad value fails here, before a SparkSession starts, with a message a person can act on.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import sys
from dataclasses import dataclass, field, fields, replace
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

from flowspark.core.dedup import CARRIED, DEFAULT_KEY
from flowspark.core.detections.base import AllowEntry, Thresholds, parse_allow
from flowspark.core.schema import BY_COLUMN, EXTRA_FIELDS_COLUMN, column_of

log = logging.getLogger("flowspark.config")

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.9/3.10 (EMR 7's system Python)
    import tomli as tomllib


class ConfigError(ValueError):
    """A configuration problem, worded for the person running the job."""


@dataclass(frozen=True)
class SparkConfig:
    master: str = "local[*]"
    app_name: str = "flowspark"
    # "resolve": Delta and hadoop-aws jars from Maven Central, resolved once into a local cache.
    # "cluster": use the jars the platform provides (EMR, Glue --datalake-formats delta).
    jars: str = "resolve"
    driver_memory: str = "2g"
    shuffle_partitions: int = 4
    ui: bool = False
    log_level: str = "WARN"
    conf: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class S3Config:
    endpoint: str = ""  # e.g. http://127.0.0.1:5000 for a local S3 (moto, MinIO); "" = AWS
    path_style: bool = False
    region: str = ""
    # Scheme that s3:// URIs are read with: "s3a" with hadoop-aws (laptops, Glue), "s3" on EMR (EMRFS).
    scheme: str = "s3a"
    anonymous: bool = False


@dataclass(frozen=True)
class IngestConfig:
    # Delta file sizing: rows per Parquet file written by ingest.
    max_records_per_file: int = 5_000_000
    # Object names read as text (gunzipped when they end in .gz) and as Parquet: what VPC Flow Logs
    # write, only. A bare ".gz" or ".parquet" would pick up other services' objects under AWSLogs/
    # (CloudTrail's .json.gz, ...) and reject every line of them; add others here when you need them.
    text_suffixes: tuple[str, ...] = (".log.gz", ".log")
    parquet_suffixes: tuple[str, ...] = (".parquet",)
    # Fields not stored (NULL in flow_records and flows), by AWS or column name: e.g. the version 11 tag values,
    # which can hold personal data. Only carried fields: the key and the counts are what compaction needs.
    drop_fields: tuple[str, ...] = ()


@dataclass(frozen=True)
class DedupConfig:
    window: str = "1h"
    key: tuple[str, ...] = DEFAULT_KEY  # the default flow key, defined once in core/dedup.py


@dataclass(frozen=True)
class ReportsConfig:
    """[reports]: what the reports filter, rank and flag (flowspark.core.reports documents each default)."""

    top_n: int = 20
    # NTP sync: udp/123 either way (request and reply), 1 packet of 76 bytes a record, out of north/south and hunt
    ntp_filter: bool = True
    ntp_protocol: int = 17
    ntp_port: int = 123
    ntp_packets: int = 1
    ntp_bytes: int = 76
    exclude_aws_peers: bool = True
    # NAT gateway data processing, $ per GB (both directions), for nat_price_region, read on nat_price_read_on
    nat_price_per_gb: float = 0.045
    nat_price_region: str = "us-east-1"
    nat_price_read_on: str = "2026-11-29"
    nat_price_source: str = "https://aws.amazon.com/vpc/pricing/"
    bytes_per_gb: int = 1_000_000_000
    # Data transfer between AZs of one region, $ per GB crossing: 0.01 out of one AZ + 0.01 into the other
    cross_az_price_per_gb: float = 0.02
    cross_az_price_read_on: str = "2026-12-03"
    cross_az_price_source: str = (
        "https://aws.amazon.com/ec2/pricing/on-demand/#Data_Transfer_within_the_same_AWS_Region"
    )
    # an intel list (flowspark intel load) whose newest version is older than this many days makes the report
    # warn (blocklists change daily; a stale one misses today's addresses); 0 = never
    intel_max_age_days: int = 7
    # the network report's data quality: an object delivered (its S3 LastModified) more than this many minutes
    # after the end of the last UTC day of its records is late
    late_after_minutes: float = 60.0
    endpoint_services: tuple[str, ...] = ("S3", "DYNAMODB")
    nat: str = ""  # default --nat target: an interface (eni-...), an address or a regional NAT gateway (nat-...)
    nat_region: str = ""  # the NAT's region: only S3/DynamoDB traffic there can use a gateway endpoint
    # ASN organisations (as the --asn-db names them, case-insensitive) left out of top_peers, e.g. a CDN or
    # your own provider whose traffic is known and would crowd out the peers worth a look; default none
    asn_exclude_orgs: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(f.default, float):
                if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                    raise ConfigError(f"[reports] {f.name} must be a number >= 0, got {value!r}")
                object.__setattr__(self, f.name, float(value))
            elif isinstance(f.default, int) and not isinstance(f.default, bool) and value < 0:
                raise ConfigError(f"[reports] {f.name} must be 0 or more, got {value!r}")
        if self.top_n < 1:
            raise ConfigError("[reports] top_n must be at least 1")
        if self.bytes_per_gb < 1:
            raise ConfigError("[reports] bytes_per_gb must be at least 1")




@dataclass(frozen=True)
class DetectionsConfig(Thresholds):
    """[detections]: the thresholds of flowspark findings (every field of flowspark.core.detections.base.
    Thresholds, whose docstring says why each default), the allowlist and your own public prefixes."""

    # "CIDR DETECTIONS: REASON" lines (DETECTIONS a comma list or *): findings of those detections whose local
    # or peer address is in CIDR are kept, marked suppressed with the reason, and left out of the report
    allow: tuple[str, ...] = ()
    # your own public ranges (a VPC's IPv6 CIDRs, your Elastic IPs): their addresses are local, not Internet
    local_prefixes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(f.default, float):
                if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                    raise ConfigError(f"[detections] {f.name} must be a number >= 0, got {value!r}")
                object.__setattr__(self, f.name, float(value))
            elif isinstance(f.default, int) and value < 0:
                raise ConfigError(f"[detections] {f.name} must be 0 or more, got {value!r}")
        for name in ("exposed_ports", "brute_ports", "spam_ports", "beacon_exclude_ports"):
            try:
                object.__setattr__(self, name, tuple(int(p) for p in getattr(self, name)))
            except (TypeError, ValueError):
                raise ConfigError(f"[detections] {name} must be port numbers, got {getattr(self, name)!r}") from None
        try:
            self.allow_entries()
        except ValueError as exc:
            raise ConfigError(f"[detections] {exc}") from None
        for cidr in self.local_prefixes:
            try:
                ipaddress.ip_network(cidr, strict=False)
            except ValueError:
                raise ConfigError(f"[detections] local_prefixes: {cidr!r} is not a CIDR") from None

    def thresholds(self) -> Thresholds:
        return Thresholds(**{f.name: getattr(self, f.name) for f in fields(Thresholds)})

    def allow_entries(self) -> tuple[AllowEntry, ...]:
        return tuple(parse_allow(line) for line in self.allow)


@dataclass(frozen=True)
class StorageConfig:
    """[storage]: how flow_records and flows are laid out in Parquet, compaction and retention (docs/storage.md)."""

    # "compact": rows sorted inside each day (interface, addresses, start), Parquet v2 encodings, zstd at
    # zstd_level. "plain": Spark's and Delta's defaults, the layout before "compact" (benchmarks compare them).
    layout: str = "compact"
    zstd_level: int = 3
    # Keep every record in flow_records (forensics, other windows, tag's lake mode, stats, maintain), or only
    # flows, flow_rejects and the ledger: the objects in S3 stay the record of truth. flows is written either way.
    keep_records: bool = True
    # OPTIMIZE (bin-packing) the days `flowspark run` wrote, after its ingest, so a day is a few files.
    optimize_after_run: bool = False
    # Files OPTIMIZE aims for (Delta's spark.databricks.delta.optimize.maxFileSize).
    target_file_mb: int = 256
    # VACUUM (flowspark maintain) deletes files unreferenced for longer than this; below Delta's 168 h
    # safety default a reader or writer running longer than it could lose files.
    vacuum_retention_hours: int = 168

    def __post_init__(self) -> None:
        if self.layout not in ("compact", "plain"):
            raise ConfigError(f"[storage] layout must be 'compact' or 'plain', got {self.layout!r}")
        if not 1 <= self.zstd_level <= 22:
            raise ConfigError(f"[storage] zstd_level must be 1 to 22, got {self.zstd_level!r}")
        if self.target_file_mb < 1:
            raise ConfigError("[storage] target_file_mb must be at least 1")
        if self.vacuum_retention_hours < 0:
            raise ConfigError("[storage] vacuum_retention_hours must be 0 or more")


@dataclass(frozen=True)
class Config:
    env: str = "local"
    spark: SparkConfig = field(default_factory=SparkConfig)
    s3: S3Config = field(default_factory=S3Config)
    ingest: IngestConfig = field(default_factory=IngestConfig)
    dedup: DedupConfig = field(default_factory=DedupConfig)
    reports: ReportsConfig = field(default_factory=ReportsConfig)
    storage: StorageConfig = field(default_factory=StorageConfig)
    detections: DetectionsConfig = field(default_factory=DetectionsConfig)


CONF_DIR_ENV = "FLOWSPARK_CONF_DIR"


def default_conf_dir() -> Traversable:
    """The configuration defaults: $FLOWSPARK_CONF_DIR when set, else the copy inside the package
    (flowspark/conf, read through importlib.resources: the wheel, the --py-files zip and the venv-pack
    archive carry it, and a checkout's conf/ is a link to it)."""
    env = os.environ.get(CONF_DIR_ENV)
    if env:
        return Path(env)
    return resources.files("flowspark") / "conf"


def _build(cls: Any, section: str, data: dict[str, Any]) -> Any:
    known = {f.name: f for f in fields(cls)}
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise ConfigError(f"[{section}] has unknown setting(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    kwargs: dict[str, Any] = {}
    defaults = cls()
    for name, value in data.items():
        current = getattr(defaults, name)
        if isinstance(current, tuple):
            if isinstance(value, str):
                value = [v.strip() for v in value.split(",") if v.strip()]
            if not isinstance(value, (list, tuple)):  # a tuple: with_overrides merging the current values
                raise ConfigError(f"[{section}] {name} must be a list, got {value!r}")
            value = tuple(value)
        elif isinstance(current, bool):
            if not isinstance(value, bool):
                raise ConfigError(f"[{section}] {name} must be true or false, got {value!r}")
        elif isinstance(current, int):
            if isinstance(value, bool) or not isinstance(value, int):
                raise ConfigError(f"[{section}] {name} must be a whole number, got {value!r}")
        elif isinstance(current, dict):
            if not isinstance(value, dict):
                raise ConfigError(f"[{section}] {name} must be a table, got {value!r}")
            value = {str(k): str(v) for k, v in value.items()}
        elif isinstance(current, str) and not isinstance(value, str):
            raise ConfigError(f"[{section}] {name} must be a string, got {value!r}")
        kwargs[name] = value
    return cls(**kwargs)


def load_config(env: str = "local", path: str | os.PathLike[str] | None = None) -> Config:
    """Load conf/<env>.toml (or an explicit file) into a validated Config."""
    conf_file: Traversable
    if path is None:
        folder = default_conf_dir()
        conf_file = folder / f"{env}.toml"
    else:
        conf_file = Path(path)
        folder = conf_file.parent
    if not conf_file.is_file():
        found = folder.iterdir() if folder.is_dir() else []
        available = sorted(p.name.removesuffix(".toml") for p in found if p.name.endswith(".toml"))
        raise ConfigError(
            f"config file {conf_file} not found"
            + (f"; available environments: {', '.join(available)}" if available else "")
        )
    try:
        data = tomllib.loads(conf_file.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{conf_file} is not valid TOML: {exc}") from exc
    sections = {
        "spark": SparkConfig,
        "s3": S3Config,
        "ingest": IngestConfig,
        "dedup": DedupConfig,
        "reports": ReportsConfig,
        "storage": StorageConfig,
        "detections": DetectionsConfig,
    }
    unknown = sorted(set(data) - set(sections) - {"env"})
    if unknown:
        raise ConfigError(f"{conf_file}: unknown section(s) {', '.join(unknown)}; known: {', '.join(sections)}")
    _hunt_aliases(data)
    built = {name: _build(cls, name, data.get(name, {})) for name, cls in sections.items()}
    cfg = Config(env=str(data.get("env", env)), **built)
    _validate(cfg)
    return cfg


# [reports]' hunt thresholds of before the detections: the hunt's flags are findings now, so each is an alias
# of the [detections] setting of the same rule (None: the rule has no such setting, and it is ignored)
HUNT_ALIASES = {
    "scan_min_targets": "sweep_min_targets",
    "scan_max_packets": "scan_max_packets",
    "scan_max_size_cv": "sweep_max_size_cv",
    "cred_ports": "brute_ports",
    "cred_min_flows": "brute_min_attempts",
    "cred_min_bytes": "brute_success_bytes",
    "cred_min_seconds": None,
    "beacon_min_flows": "beacon_min_flows",
    "beacon_max_mean_bytes": "beacon_max_mean_bytes",
    "beacon_max_dispersion": "beacon_max_dispersion",
    "exfil_min_bytes": "volume_min_bytes",
    "exfil_factor": "volume_factor",
    "exfil_min_baseline_hours": "volume_min_baseline_hours",
}


def _hunt_aliases(data: dict[str, Any]) -> None:
    """Move [reports]' old hunt thresholds to [detections] (in data, before the sections are built), each
    with a warning naming its new place; a [detections] value of its own wins."""
    reports, detections = data.get("reports", {}), data.setdefault("detections", {})
    for old in [k for k in reports if k in HUNT_ALIASES]:
        value, new = reports.pop(old), HUNT_ALIASES[old]
        if new is None:
            log.warning("[reports] %s is ignored: the hunt's flags are findings now, and brute_force has no such "
                        "setting (flowspark/core/detections/base.py); remove it", old)
        elif new in detections:
            log.warning("[reports] %s is ignored: [detections] %s is set; remove the old one", old, new)
        else:
            log.warning("[reports] %s is now [detections] %s (the hunt's flags are findings): used there; "
                        "move it", old, new)
            detections[new] = value


def _validate(cfg: Config) -> None:
    if cfg.spark.jars not in ("resolve", "cluster"):
        raise ConfigError(f"[spark] jars must be 'resolve' or 'cluster', got {cfg.spark.jars!r}")
    if cfg.spark.shuffle_partitions < 1:
        raise ConfigError("[spark] shuffle_partitions must be at least 1")
    for name in cfg.ingest.drop_fields:
        column = column_of(name) or name.replace("-", "_")
        if column not in CARRIED or column == EXTRA_FIELDS_COLUMN:
            raise ConfigError(
                f"[ingest] drop_fields: {name!r} cannot be left out: only carried fields can (not the flow key, "
                "the counts or start/end); see the README's dedup table"
                if column in BY_COLUMN
                else f"[ingest] drop_fields: {name!r} is not a flow log field"
            )
    if cfg.s3.scheme not in ("s3", "s3a"):
        raise ConfigError(f"[s3] scheme must be 's3' or 's3a', got {cfg.s3.scheme!r}")


def with_overrides(cfg: Config, **sections: dict[str, Any]) -> Config:
    """Apply CLI overrides, e.g. with_overrides(cfg, spark={"master": "local[2]"})."""
    updated = {}
    for name, values in sections.items():
        values = {k: v for k, v in values.items() if v is not None}
        if values:
            current = getattr(cfg, name)
            merged = {f.name: getattr(current, f.name) for f in fields(current)} | values
            updated[name] = _build(type(current), name, merged)
    out = replace(cfg, **updated)
    _validate(out)
    return out
