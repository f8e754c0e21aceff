"""OCSF Network Activity events (class_uid 4001) back to flow log fields, in Arrow: the reader's side of
:mod:`flowspark.core.ocsf`, so Parquet that Amazon Security Lake wrote (its VPC flow data, source version 2,
OCSF 1.1.0) or that `flowspark export ocsf` wrote is ingested by the same line rules as AWS's own objects.

An event becomes the flow log fields it was made from (the inverse of core.ocsf's mapping, one definition
of each correspondence: ACTION, ACTIVITY, DIRECTION, BOUNDARY, SIDED), as text, named as AWS names them in
its Parquet deliveries; `core.lines.parse_parquet_batch` then checks and types them like any delivery:

- src_endpoint/dst_endpoint: `ip` is the packet's address; when `intermediate_ips` holds one, that is the
  interface's address (srcaddr/dstaddr) and `ip` is pkt-srcaddr/pkt-dstaddr; else `ip` is srcaddr/dstaddr
  (and pkt-* comes from `unmapped`, where the export keeps it when it equals the interface's address).
  port, svc_name (pkt-*-aws-service); interface/vpc/subnet/instance *_uid from the endpoint on the
  interface's side (by the direction), else from either endpoint, else from `unmapped`.
- start_time/end_time (epoch ms, which the line rules read as milliseconds), action_id (1 ACCEPT,
  2 REJECT; else activity_id 6/5), status_code (log-status), connection_info (protocol, tcp-flags, type,
  flow-direction, traffic-path = boundary_id - 3), cloud (account-id, region: `unknown` is none, az-id),
  metadata.product.version (version).
- `unmapped` (a map of text, as both writers store it): a key that is a flow log field fills it, any other
  key goes to extra_fields as an unknown field would.
- `count`: how many records the event stands for (null: one). An event of more than one record is an
  aggregate (flowspark's own flows export writes them): the reader rejects it with a reason unless the run
  loads aggregates into flows (`ingest --as-flows`), where it weighs `count` records.
- an event of another class than 4001 is rejected with its class_uid.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import NamedTuple

import pyarrow as pa
import pyarrow.compute as pc

from flowspark.core.ocsf import ACTION, ACTIVITY, BOUNDARY, CLASS_UID, DIRECTION, SIDED, UNKNOWN_REGION
from flowspark.core.schema import BY_COLUMN, column_of

# An OCSF event's columns (a Parquet file whose schema holds them is read as OCSF, not as a delivery).
MARKERS = ("class_uid", "src_endpoint", "dst_endpoint")
_NULL = pa.scalar(None, pa.string())


def is_ocsf(column_names: Sequence[str]) -> bool:
    return all(m in column_names for m in MARKERS)


def _path(batch: pa.RecordBatch, path: str) -> pa.Array:
    """The values at a dotted path of nested structs (nulls where a level is missing)."""
    head, *rest = path.split(".")
    n = batch.num_rows
    if head not in batch.schema.names:
        return pa.nulls(n)
    arr = batch.column(head)
    for name in rest:
        if not pa.types.is_struct(arr.type) or arr.type.get_field_index(name) < 0:
            return pa.nulls(n)
        arr = pc.struct_field(arr, name)
    return arr


def _text(arr: pa.Array) -> pa.Array:
    if pa.types.is_null(arr.type):
        return arr.cast(pa.string())
    return arr if pa.types.is_string(arr.type) else pc.cast(arr, pa.string())


def _coalesce(*arrays: pa.Array) -> pa.Array:
    return pc.coalesce(*[_text(a) for a in arrays])


def _lookup(mapping: dict, values: pa.Array, index: int = 0) -> pa.Array:
    """OCSF ids -> the flow log values core.ocsf maps from (ACTION's 1 -> ACCEPT ...); others null."""
    out = pa.nulls(len(values), pa.string())
    if pa.types.is_null(values.type):
        return out
    for aws, ids in mapping.items():
        out = pc.if_else(pc.fill_null(pc.equal(values, ids[index]), False), str(aws), out)
    return out


def _unmapped(batch: pa.RecordBatch) -> tuple[pa.Array | None, list[str]]:
    """`unmapped` as a map array (a JSON text column is read as one) and its keys in order of appearance."""
    if "unmapped" not in batch.schema.names:
        return None, []
    arr = batch.column("unmapped")
    if pa.types.is_string(arr.type):
        rows = [json.loads(v) if v else None for v in arr.to_pylist()]
        arr = pa.array(
            [list(r.items()) if isinstance(r, dict) else None for r in rows], pa.map_(pa.string(), pa.string())
        )
    if not pa.types.is_map(arr.type):
        return None, []
    keys = pc.unique(arr.keys).to_pylist() if len(arr.keys) else []
    return arr, [k for k in keys if k is not None]


def _column(key: str) -> str:
    """An `unmapped` key (a flowspark column, or an AWS name in either spelling) as AWS's Parquet deliveries
    name the field (pkt-srcaddr, pkt_srcaddr -> pkt_srcaddr; encryption_status_code -> encryption_status)."""
    column = column_of(key)
    return BY_COLUMN[column].aws.replace("-", "_") if column else key


def _from_map(arr: pa.Array | None, key: str, n: int) -> pa.Array:
    if arr is None:
        return pa.nulls(n, pa.string())
    return _text(pc.map_lookup(arr, pa.scalar(key, arr.type.key_type), "first"))


class Fields(NamedTuple):
    """An OCSF batch as flow log fields (see flow_log_fields)."""

    flat: pa.RecordBatch  # the flow log fields, as text, named as AWS's Parquet deliveries name them
    weight: pa.Array  # records each event stands for (int64; null: one)
    reject: pa.Array  # why the event is rejected (null: it is not)
    extra: pa.Array  # extra_fields: the `unmapped` entries that are no flow log field (null: none)
    unknown: list[str]  # those entries' names


def flow_log_fields(batch: pa.RecordBatch, as_flows: bool) -> Fields:
    """The events of a batch as flow log fields, with their weight, reject reason and extra fields; see the
    module text."""
    n = batch.num_rows
    cols: dict[str, pa.Array] = {}
    unmapped, keys = _unmapped(batch)
    direction = _lookup(DIRECTION, _path(batch, "connection_info.direction_id"))

    for side, addr, pkt, port, svc in (
        ("src", "srcaddr", "pkt_srcaddr", "srcport", "pkt_src_aws_service"),
        ("dst", "dstaddr", "pkt_dstaddr", "dstport", "pkt_dst_aws_service"),
    ):
        ip = _text(_path(batch, f"{side}_endpoint.ip"))
        middle = _path(batch, f"{side}_endpoint.intermediate_ips")
        first = _text(pc.list_element(middle, 0)) if pa.types.is_list(middle.type) else pa.nulls(n, pa.string())
        has_middle = pc.is_valid(first)
        cols[addr] = pc.if_else(has_middle, first, ip)
        # equal to the interface's address, the export keeps pkt-* in `unmapped`
        cols[pkt] = pc.if_else(has_middle, ip, _from_map(unmapped, pkt, n))
        cols[port] = _text(_path(batch, f"{side}_endpoint.port"))
        cols[svc] = _text(_path(batch, f"{side}_endpoint.svc_name"))
    here = {"src": pc.equal(direction, "egress"), "dst": pc.equal(direction, "ingress")}
    for column in SIDED:
        uid = column.replace("_id", "_uid")
        src, dst = _text(_path(batch, f"src_endpoint.{uid}")), _text(_path(batch, f"dst_endpoint.{uid}"))
        sided = pc.if_else(
            pc.fill_null(here["src"], False), src, pc.if_else(pc.fill_null(here["dst"], False), dst, _NULL)
        )
        cols[column] = _coalesce(sided, src, dst, _from_map(unmapped, column, n))

    action = _lookup(ACTION, _path(batch, "action_id"))
    cols["action"] = pc.coalesce(action, _lookup(ACTIVITY, _path(batch, "activity_id")))
    cols["log_status"] = _text(_path(batch, "status_code"))
    cols["start"] = _text(_path(batch, "start_time"))
    cols["end"] = _text(_path(batch, "end_time"))
    cols["protocol"] = _text(_path(batch, "connection_info.protocol_num"))
    cols["tcp_flags"] = _text(_path(batch, "connection_info.tcp_flags"))
    cols["type"] = _text(_path(batch, "connection_info.protocol_ver"))
    cols["flow_direction"] = direction
    boundary = _path(batch, "connection_info.boundary_id")
    path = pc.subtract(pc.cast(boundary, pa.int64()), 3)
    known = pc.fill_null(pc.is_in(path, pa.array(list(BOUNDARY), pa.int64())), False)
    cols["traffic_path"] = pc.if_else(known, _text(path), _NULL)
    cols["packets"] = _text(_path(batch, "traffic.packets"))
    cols["bytes"] = _text(_path(batch, "traffic.bytes"))
    cols["account_id"] = _text(_path(batch, "cloud.account.uid"))
    region = _text(_path(batch, "cloud.region"))
    cols["region"] = pc.if_else(pc.fill_null(pc.equal(region, UNKNOWN_REGION), False), _NULL, region)
    cols["az_id"] = _text(_path(batch, "cloud.zone"))
    cols["version"] = _text(_path(batch, "metadata.product.version"))
    unknown = [k for k in keys if column_of(k) is None]
    for key in keys:
        column = _column(key)
        if column in cols or key in unknown:
            continue
        cols[column] = _from_map(unmapped, key, n)  # a flow log field OCSF has no place for
    flat = pa.RecordBatch.from_arrays(list(cols.values()), names=list(cols))
    extra = pa.nulls(n, pa.map_(pa.string(), pa.string()))
    if unknown and unmapped is not None:  # each event's own entries, as it holds them (nulls included)
        wanted = set(unknown)
        rows = [None if m is None else [(k, v) for k, v in m if k in wanted] or None for m in unmapped.to_pylist()]
        extra = pa.array(rows, pa.map_(pa.string(), pa.string()))

    count = _path(batch, "count")
    weight = pc.cast(count, pa.int64())
    klass = _path(batch, "class_uid")
    other = pc.fill_null(pc.not_equal(pc.cast(klass, pa.int64()), CLASS_UID), True)
    reason = pc.if_else(
        other,
        pc.binary_join_element_wise(
            "not an OCSF Network Activity event (class_uid ", pc.fill_null(_text(klass), "none"), ")", ""
        ),
        pa.nulls(n, pa.string()),
    )
    aggregate = pc.fill_null(pc.greater(weight, 1), False)
    if not as_flows:
        why = pc.binary_join_element_wise(
            "an aggregate event of ",
            _text(weight),
            " records (OCSF count): ingest it into flows with --as-flows",
            "",
        )
        reason = pc.coalesce(reason, pc.if_else(aggregate, why, pa.nulls(n, pa.string())))
    bad_count = pc.fill_null(pc.less(weight, 1), False)
    reason = pc.coalesce(
        reason,
        pc.if_else(
            bad_count,
            pc.binary_join_element_wise("OCSF count ", _text(weight), " is not a number of records", ""),
            pa.nulls(n, pa.string()),
        ),
    )
    return Fields(flat, weight, reason, extra, unknown)
