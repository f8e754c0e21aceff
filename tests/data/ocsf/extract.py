#!/usr/bin/env python3
"""Compile one OCSF event class, and the objects it reaches, from an ocsf-schema checkout.

Writes ``network_activity-<version>.json`` (the default class) next to this script. The output is
deterministic (fixed build order, no timestamps), so a re-run on the same tag gives the same bytes.

Usage (either a working tree, or a bare git directory plus a ref)::

    python3 extract.py --schema-dir /path/to/ocsf-schema
    python3 extract.py --git-dir /work/.mirror/ocsf+ocsf-schema/repo --ref refs/tags/v1.1.0

Only the standard library is used. It follows the compile rules of the OCSF server of the time
(github.com/ocsf/ocsf-server, lib/schema/json_reader.ex and lib/schema/cache.ex, early 2024):

* ``attributes.$include`` of ``includes/*.json`` or ``profiles/*.json``: the included attributes are
  deep-merged *under* the entity's own attribute definitions (the entity wins). Attributes coming from a
  file with ``"meta": "profile"`` are tagged ``profile: <name>``; an include's ``annotations`` are merged
  under each included attribute.
* An attribute-level ``$include`` (enum files) is merged the same way.
* ``extends`` (classes and objects): the parent's attributes, deep-merged under the child's.
* Each attribute: the dictionary definition is the base and the entity's definition is deep-merged
  over it (so an enum is the union of the dictionary's and the entity's values).
* A missing ``requirement`` becomes ``optional``.
* The synthetic ``datetime`` profile: every attribute whose type is ``timestamp_t`` gets a sibling
  ``<name>_dt`` of type ``datetime_t``, requirement ``optional``, profile ``datetime``.
* ``observable.type_id`` gets one value per observable dictionary type and observable base object.
* The class uid is ``category_uid * 1000 + uid``; ``class_uid`` and ``category_uid`` get a single-value
  enum; ``type_uid`` gets ``class_uid * 100 + activity_id`` for each activity (plus ``* 100 + 0``).

Deep merge: maps merge key by key, recursively; for any other value the right-hand side wins; an empty
map on either side yields the other side (as ``Schema.Utils.deep_merge``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from collections import deque

HERE = os.path.dirname(os.path.abspath(__file__))

# The profiles Amazon Security Lake puts in metadata.profiles for its own VPC Flow Logs records under
# source version 2 (OCSF 1.1.0): github.com/ocsf/examples mappings/markdown/AWS/v1.1.0/VPC Flowlogs.
SECURITY_LAKE_VPC_FLOW_PROFILES = ["cloud", "security_control", "datetime"]

PRIMITIVE_BASES = {"boolean_t", "float_t", "integer_t", "json_t", "long_t", "string_t"}


class Reader:
    """Reads files of the schema from a working tree or from a git object database."""

    def __init__(self, schema_dir: str | None, git_dir: str | None, ref: str | None):
        self.schema_dir = schema_dir
        self.git_dir = git_dir
        self.ref = ref
        self._cache: dict[str, object] = {}

    def _git(self, *args: str) -> str:
        cmd = ["git"]
        if self.git_dir:
            cmd += ["--git-dir", self.git_dir]
        else:
            cmd += ["-C", self.schema_dir]
        return subprocess.run(cmd + list(args), check=True, capture_output=True, text=True).stdout

    def json(self, path: str):
        if path not in self._cache:
            if self.git_dir:
                text = self._git("show", f"{self.ref}:{path}")
            else:
                with open(os.path.join(self.schema_dir, path), encoding="utf-8") as fh:
                    text = fh.read()
            self._cache[path] = json.loads(text)
        return self._cache[path]

    def list_dir(self, path: str) -> list[str]:
        if self.git_dir:
            out = self._git("ls-tree", "-r", "--name-only", self.ref, path + "/")
            return sorted(line for line in out.splitlines() if line.endswith(".json"))
        result = []
        for root, _dirs, files in os.walk(os.path.join(self.schema_dir, path)):
            for name in files:
                if name.endswith(".json"):
                    full = os.path.join(root, name)
                    result.append(os.path.relpath(full, self.schema_dir).replace(os.sep, "/"))
        return sorted(result)

    def commit(self) -> str:
        try:
            if self.git_dir:
                return self._git("rev-parse", f"{self.ref}^{{commit}}").strip()
            return self._git("rev-parse", "HEAD").strip()
        except (subprocess.CalledProcessError, FileNotFoundError):
            return "unknown"


def deep_merge(left, right):
    if isinstance(left, dict) and isinstance(right, dict):
        if not left:
            return dict(right)
        if not right:
            return dict(left)
        out = dict(left)
        for key, value in right.items():
            out[key] = deep_merge(out[key], value) if key in out else value
        return out
    if right is None:
        return left
    return right


def read_included(reader: Reader, path: str) -> dict:
    data = json.loads(json.dumps(reader.json(path)))  # private copy
    profile = data.get("name") if data.get("meta") == "profile" else None
    annotations = data.get("annotations")
    attrs = {}
    for name, attr in (data.get("attributes") or {}).items():
        attr = dict(attr)
        if profile:
            attr["profile"] = profile
        if annotations:
            attr = deep_merge(annotations, attr)
        attrs[name] = attr
    data["attributes"] = attrs
    return data


def resolve_includes(reader: Reader, entity: dict) -> dict:
    entity = json.loads(json.dumps(entity))
    attrs = entity.get("attributes") or {}
    inc = attrs.get("$include")
    if inc is not None:
        for path in [inc] if isinstance(inc, str) else inc:
            included = read_included(reader, path)
            own = {k: v for k, v in attrs.items() if k != "$include"}
            attrs = deep_merge(included["attributes"], own)
    out = {}
    for name, attr in attrs.items():
        if isinstance(attr, dict) and "$include" in attr:
            inc_file = reader.json(attr["$include"])
            attr = deep_merge(inc_file, {k: v for k, v in attr.items() if k != "$include"})
        out[name] = attr
    entity["attributes"] = out
    return entity


def load_entities(reader: Reader, folder: str) -> dict[str, dict]:
    entities = {}
    for path in reader.list_dir(folder):
        data = resolve_includes(reader, reader.json(path))
        data["_path"] = path
        entities[data["name"]] = data
    return entities


def resolve_extends(entities: dict[str, dict], name: str) -> tuple[dict, list[str]]:
    """Returns the entity with inherited attributes, and the chain root..name.

    Each attribute gets ``_from``: the first entity in the chain that declares it."""
    item = entities[name]
    parent = item.get("extends")
    if not parent:
        attrs = {k: dict(v, _from=name) for k, v in (item.get("attributes") or {}).items()}
        return dict(item, attributes=attrs), [name]
    base, chain = resolve_extends(entities, parent)
    attrs = dict(base["attributes"])
    for key, value in (item.get("attributes") or {}).items():
        if value is None:
            attrs.pop(key, None)
        elif key in attrs:
            attrs[key] = deep_merge(attrs[key], value)
        else:
            attrs[key] = dict(value, _from=name)
    merged = dict(base)
    for key, value in item.items():
        if key == "profiles":
            merged["profiles"] = list(dict.fromkeys((base.get("profiles") or []) + (value or [])))
        elif value is not None:
            merged[key] = value
    merged["attributes"] = attrs
    return merged, chain + [name]


def base_type(types: dict, type_name: str) -> str:
    seen = set()
    while type_name not in PRIMITIVE_BASES and type_name in types and type_name not in seen:
        seen.add(type_name)
        nxt = types[type_name].get("type")
        if not nxt:
            break
        type_name = nxt
    return type_name


def _enum_key(item):
    key = item[0]
    return (0, int(key), "") if key.lstrip("-").isdigit() else (1, 0, key)


def compile_attributes(raw_attrs: dict, dictionary: dict, types: dict, objects: dict,
                       where: str, problems: list[str]) -> list[dict]:
    compiled = {}
    for name, attr in raw_attrs.items():
        base = dictionary.get(name)
        if base is None:
            problems.append(f"{where}.{name}: not in dictionary")
            base = {}
        full = deep_merge(base, attr)
        full.setdefault("requirement", "optional")
        compiled[name] = full
    # synthetic datetime profile
    for name, full in list(compiled.items()):
        if full.get("type") == "timestamp_t" and f"{name}_dt" not in compiled:
            compiled[f"{name}_dt"] = {
                "type": "datetime_t",
                "requirement": "optional",
                "profile": "datetime",
                "_from": full.get("_from"),
                "is_array": full.get("is_array", False),
            }
    out = []
    for name in sorted(compiled):
        full = compiled[name]
        type_name = full.get("type")
        entry = {"name": name, "requirement": full["requirement"], "type": type_name,
                 "is_array": bool(full.get("is_array", False))}
        if type_name in types or type_name in PRIMITIVE_BASES:
            entry["base_type"] = base_type(types, type_name)
        elif type_name in objects:
            entry["is_object"] = True
        else:
            problems.append(f"{where}.{name}: unknown type {type_name!r}")
        if full.get("enum"):
            entry["enum"] = {k: (v or {}).get("caption") for k, v in
                             sorted(full["enum"].items(), key=_enum_key)}
        for key in ("sibling", "profile"):
            if full.get(key):
                entry[key] = full[key]
        if full.get("_from") and full["_from"] != where:
            entry["from"] = full["_from"]
        if "@deprecated" in full:
            entry["deprecated"] = full["@deprecated"].get("since", True) \
                if isinstance(full["@deprecated"], dict) else True
        out.append(entry)
    return out


def compile_schema(reader: Reader, class_name: str) -> dict:
    version = reader.json("version.json")["version"]
    dictionary_file = reader.json("dictionary.json")
    dictionary = dictionary_file["attributes"]
    types = dictionary_file["types"]["attributes"]
    categories = reader.json("categories.json")["attributes"]
    classes = load_entities(reader, "events")
    objects = load_entities(reader, "objects")
    problems: list[str] = []

    # observable.type_id: the server adds one value per observable dictionary type and per observable
    # object that extends nothing, 'object' or '_entity' (Schema.Cache.update_observables)
    if "observable" in objects:
        extra = {str(t["observable"]): {"caption": t.get("caption")}
                 for t in types.values() if t.get("observable", 0) > 0}
        extra.update({str(o["observable"]): {"caption": o.get("caption")}
                      for o in objects.values() if o.get("observable", 0) > 0
                      and o.get("extends") in (None, "object", "_entity")})
        type_id = objects["observable"]["attributes"].setdefault("type_id", {})
        type_id["enum"] = dict(type_id.get("enum", {}), **extra)

    cls, chain = resolve_extends(classes, class_name)
    category = categories[cls["category"]]
    class_uid = category["uid"] * 1000 + cls["uid"]
    attrs = cls["attributes"]
    # as the server does, these enums replace (not extend) the included 0 'Base Event'/'Uncategorized'
    attrs["class_uid"] = dict(attrs.get("class_uid", {}),
                              enum={str(class_uid): {"caption": cls["caption"]}})
    attrs["category_uid"] = dict(attrs.get("category_uid", {}),
                                 enum={str(category["uid"]): {"caption": category["caption"]}})
    activity_enum = deep_merge((dictionary.get("activity_id") or {}).get("enum", {}),
                               attrs.get("activity_id", {}).get("enum", {}))
    type_enum = {str(class_uid * 100): {"caption": f"{cls['caption']}: Unknown"}}
    for key, value in activity_enum.items():
        type_enum[str(class_uid * 100 + int(key))] = {"caption": f"{cls['caption']}: {value.get('caption')}"}
    attrs["type_uid"] = dict(attrs.get("type_uid", {}), enum=type_enum)

    class_attrs = compile_attributes(attrs, dictionary, types, objects, class_name, problems)

    # objects reachable from the class, breadth first, with their minimum nesting depth
    compiled_objects = {}
    depth = {}
    queue = deque((a["type"], 1) for a in class_attrs if a.get("is_object"))
    while queue:
        obj_name, d = queue.popleft()
        if obj_name in depth:
            continue
        depth[obj_name] = d
        obj, obj_chain = resolve_extends(objects, obj_name)
        obj_attrs = compile_attributes(obj["attributes"], dictionary, types, objects, obj_name, problems)
        entry = {"caption": obj.get("caption"), "depth": d, "extends": obj_chain[:-1],
                 "attributes": obj_attrs}
        if obj.get("profiles"):
            entry["profiles"] = obj["profiles"]
        if any(a.get("profile") == "datetime" for a in obj_attrs):
            entry["profiles"] = list(dict.fromkeys(entry.get("profiles", []) + ["datetime"]))
        if obj.get("constraints"):
            entry["constraints"] = obj["constraints"]
        compiled_objects[obj_name] = entry
        for a in obj_attrs:
            if a.get("is_object") and a["type"] not in depth:
                queue.append((a["type"], d + 1))

    class_profiles = list(dict.fromkeys((cls.get("profiles") or []) + ["datetime"]))
    return {
        "source": {
            "repository": "https://github.com/ocsf/ocsf-schema",
            "ref": reader.ref or "(working tree)",
            "commit": reader.commit(),
            "schema_version": version,
            "license": "Apache-2.0",
            "generator": "tests/data/ocsf/extract.py",
        },
        "types": {
            name: {k: v for k, v in {
                "base_type": base_type(types, name),
                "max_len": t.get("max_len"),
                "range": t.get("range"),
                "regex": t.get("regex"),
            }.items() if v is not None}
            for name, t in sorted(types.items())
        },
        "class": {
            "name": class_name,
            "caption": cls.get("caption"),
            "uid": class_uid,
            "category": cls["category"],
            "category_uid": category["uid"],
            "extends": chain[:-1],
            "profiles": class_profiles,
            "security_lake_vpc_flow_profiles": SECURITY_LAKE_VPC_FLOW_PROFILES,
            "attributes": class_attrs,
        },
        "objects": dict(sorted(compiled_objects.items())),
        "problems": problems,
    }


def dump(data: dict) -> str:
    """Compact, but one attribute per line so a diff stays readable. Key order is the build order
    (deterministic), so enums keep ascending ids."""
    def j(v):
        return json.dumps(v, ensure_ascii=False, separators=(",", ":"))

    def attrs(lst, indent):
        pad = " " * indent
        return "[\n" + ",\n".join(pad + j(a) for a in lst) + "\n" + " " * (indent - 2) + "]"

    lines = ["{"]
    lines.append(f' "source":{j(data["source"])},')
    lines.append(f' "types":{j(data["types"])},')
    cls = {k: v for k, v in data["class"].items() if k != "attributes"}
    lines.append(f' "class":{j(cls)[:-1]},"attributes":{attrs(data["class"]["attributes"], 3)}}},')
    lines.append(' "objects":{')
    obj_lines = []
    for name, obj in data["objects"].items():
        head = {k: v for k, v in obj.items() if k != "attributes"}
        obj_lines.append(f'  {j(name)}:{j(head)[:-1]},"attributes":{attrs(obj["attributes"], 4)}}}')
    lines.append(",\n".join(obj_lines))
    lines.append(" },")
    lines.append(f' "problems":{j(data["problems"])}')
    lines.append("}")
    text = "\n".join(lines) + "\n"
    json.loads(text)  # must stay valid JSON
    return text


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--schema-dir", help="a checkout (working tree) of ocsf/ocsf-schema")
    src.add_argument("--git-dir", help="a (bare) git directory of ocsf/ocsf-schema; needs --ref")
    ap.add_argument("--ref", default="refs/tags/v1.1.0", help="with --git-dir: the ref to read")
    ap.add_argument("--class", dest="class_name", default="network_activity")
    ap.add_argument("--commit", help="record this commit (for a working tree without .git)")
    ap.add_argument("--out", help="output file (default: <class>-<version>.json next to this script)")
    args = ap.parse_args(argv)

    reader = Reader(args.schema_dir, args.git_dir, args.ref if args.git_dir else None)
    data = compile_schema(reader, args.class_name)
    if args.commit:
        data["source"]["commit"] = args.commit
    out = args.out or os.path.join(HERE, f"{args.class_name}-{data['source']['schema_version']}.json")
    with open(out, "w", encoding="utf-8") as fh:
        fh.write(dump(data))
    print(f"wrote {out}: {len(data['class']['attributes'])} class attributes, "
          f"{len(data['objects'])} objects, {len(data['problems'])} problems", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
