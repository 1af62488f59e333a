"""BloodHound OpenGraph export of the bundled incident: validated with jsonschema against a
schema written here from BloodHound's OpenGraph documentation, and read back by a
reader that knows nothing of kmsforensics (json + networkx)."""

from __future__ import annotations

import itertools
import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import networkx as nx
import pytest

import kmsforensics as kf
from kmsforensics.export.bloodhound import schema_path

KIND = {"type": "string", "pattern": "^[A-Za-z0-9_]+$"}
PRIMITIVE = {"type": ["string", "number", "boolean"]}
PROPERTY_VALUE = {
    "anyOf": [
        PRIMITIVE,
        {"type": "array", "items": {"type": "string"}},
        {"type": "array", "items": {"type": "number"}},
        {"type": "array", "items": {"type": "boolean"}},
    ]
}
PROPERTIES = {"type": "object", "additionalProperties": PROPERTY_VALUE}
TERMINAL = {
    "type": "object",
    "required": ["value"],
    "properties": {
        "value": {"type": "string", "minLength": 1},
        "match_by": {"enum": ["id", "name"]},
        "kind": KIND,
    },
    "additionalProperties": False,
}
#: The upload format as BloodHound's OpenGraph schema page describes it.
UPLOAD = {
    "type": "object",
    "required": ["graph"],
    "properties": {
        "metadata": {
            "type": "object",
            "properties": {"source_kind": KIND},
            "required": ["source_kind"],
        },
        "graph": {
            "type": "object",
            "required": ["nodes"],
            "properties": {
                "nodes": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["id", "kinds"],
                        "properties": {
                            "id": {"type": "string", "minLength": 1},
                            "kinds": {
                                "type": "array",
                                "items": KIND,
                                "minItems": 1,
                                "maxItems": 3,
                            },
                            "properties": PROPERTIES,
                        },
                        "additionalProperties": False,
                    },
                },
                "edges": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["start", "end", "kind"],
                        "properties": {
                            "start": TERMINAL,
                            "end": TERMINAL,
                            "kind": KIND,
                            "properties": PROPERTIES,
                        },
                        "additionalProperties": False,
                    },
                },
            },
            "additionalProperties": False,
        },
    },
    "additionalProperties": False,
}
#: The extension (schema) file: node kinds and relationship kinds with traversability.
EXTENSION = {
    "type": "object",
    "required": ["schema", "node_kinds", "relationship_kinds"],
    "properties": {
        "schema": {
            "type": "object",
            "required": ["name", "namespace"],
            "properties": {"name": KIND, "namespace": KIND, "version": {"type": "string"}},
        },
        "node_kinds": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["name"],
                "properties": {"name": KIND, "is_display_kind": {"type": "boolean"}},
            },
        },
        "relationship_kinds": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["name", "is_traversable"],
                "properties": {"name": KIND, "is_traversable": {"type": "boolean"}},
            },
        },
    },
}
PASCAL = re.compile(r"^[A-Z][A-Za-z0-9]*_[A-Z][A-Za-z0-9]*$")


@pytest.fixture(scope="module")
def incident_graph() -> nx.MultiDiGraph:
    case = kf.load(kf.datasets.path("incident-leaked-ci-key") / "evidence", progress=False)
    return kf.build_graph(case)


def read_back(upload: dict[str, Any], extension: dict[str, Any]) -> nx.DiGraph:
    """Rebuild the graph BloodHound would walk: traversable edges only, ids as given."""
    traversable = {k["name"] for k in extension["relationship_kinds"] if k["is_traversable"]}
    graph = nx.DiGraph()
    for node in upload["graph"]["nodes"]:
        graph.add_node(node["id"], kind=node["kinds"][0], **node.get("properties", {}))
    for edge in upload["graph"]["edges"]:
        if edge["kind"] in traversable:
            graph.add_edge(edge["start"]["value"], edge["end"]["value"], kind=edge["kind"])
    return graph


def test_incident_upload_follows_the_opengraph_schema_and_paths_survive(
    incident_graph: nx.MultiDiGraph, tmp_path: Path
) -> None:
    out = kf.export_bloodhound(incident_graph, tmp_path / "incident.bloodhound.json")
    upload = json.loads(out.read_text())
    extension = json.loads(schema_path(out).read_text())
    jsonschema.validate(upload, UPLOAD)
    jsonschema.validate(extension, EXTENSION)

    nodes, edges = upload["graph"]["nodes"], upload["graph"]["edges"]
    assert len(nodes) == incident_graph.number_of_nodes()
    assert len(edges) == incident_graph.number_of_edges()
    assert len({n["id"] for n in nodes}) == len(nodes)
    declared_nodes = {k["name"] for k in extension["node_kinds"]}
    declared_edges = {k["name"] for k in extension["relationship_kinds"]}
    assert {n["kinds"][0] for n in nodes} <= declared_nodes
    assert {e["kind"] for e in edges} <= declared_edges
    assert all(PASCAL.match(k) for k in declared_nodes | declared_edges)
    ids = {n["id"] for n in nodes}
    assert all(e["start"]["value"] in ids and e["end"]["value"] in ids for e in edges)

    # a person to a prod secret, in the rebuilt graph
    walk = read_back(upload, extension)
    person = next(
        n for n, d in walk.nodes(data=True) if d["kind"].endswith("_RamUser")
        and d.get("name") == "ci-deployer"
    )  # fmt: skip
    prod = [n for n, d in walk.nodes(data=True) if d["kind"].endswith("_Secret") and "/prod/" in n]
    reached = [s for s in prod if nx.has_path(walk, person, s)]
    assert reached, "no path from the CI user to a prod secret"
    path = nx.shortest_path(walk, person, reached[0])
    kinds = [walk.edges[a, b]["kind"] for a, b in itertools.pairwise(path)]
    assert kinds[-1] == "AliKms_Called" and "AliKms_Assumed" in kinds
    # the same reach as the original graph over the same relations
    kept = {"owns", "has-key", "assumed", "issued", "called", "allowed", "hosts", "has-version"}
    original = nx.DiGraph((a, b) for a, b, k in incident_graph.edges(keys=True) if k in kept)
    assert len(path) == len(nx.shortest_path(original, person, reached[0]))
    # and no path through a non-traversable edge: an address does not reach a secret
    address = next(n for n, d in walk.nodes(data=True) if d["kind"].endswith("_Ip"))
    assert not any(nx.has_path(walk, address, s) for s in prod)

    first = next(e for e in edges if e["kind"] == "AliKms_Called")
    assert isinstance(first["properties"]["count"], int)
    assert first["properties"]["first_seen"].endswith("Z")
    assert all(isinstance(o, str) for o in first["properties"]["operations"])


def test_the_schema_rejects_what_bloodhound_rejects() -> None:
    """The validation can fail: nulls, mixed arrays, nested objects and bad kinds."""
    good = {
        "metadata": {"source_kind": "AliKms"},
        "graph": {
            "nodes": [{"id": "a", "kinds": ["AliKms_RamUser"], "properties": {"n": 1}}],
            "edges": [],
        },
    }
    jsonschema.validate(good, UPLOAD)
    for bad_value in (None, [1, "x"], {"nested": 1}):
        bad = json.loads(json.dumps(good))
        bad["graph"]["nodes"][0]["properties"]["n"] = bad_value
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(bad, UPLOAD)
    bad_kind = json.loads(json.dumps(good))
    bad_kind["graph"]["edges"] = [
        {"start": {"value": "a"}, "end": {"value": "a"}, "kind": "has-key"}
    ]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad_kind, UPLOAD)


def test_mixed_and_missing_attribute_values_become_valid_properties(tmp_path: Path) -> None:
    graph = nx.MultiDiGraph()
    graph.add_node("aap:1/x", kind="aap", name="x", score=float("nan"), tags=(1, "a"))
    graph.add_node("secret:1/prod/y", kind="secret")
    graph.add_edge("aap:1/x", "secret:1/prod/y", key="allowed", relation="allowed", note=None)
    graph.add_edge("aap:1/x", "secret:1/prod/y", key="granted-later", relation="granted-later")
    out = kf.export_bloodhound(graph, tmp_path / "g.json")
    upload = json.loads(out.read_text())
    jsonschema.validate(upload, UPLOAD)
    node = upload["graph"]["nodes"][0]["properties"]
    assert "score" not in node and node["tags"] == ["1", "a"]
    extension = json.loads(schema_path(out).read_text())
    relations = {k["name"]: k["is_traversable"] for k in extension["relationship_kinds"]}
    assert relations["AliKms_Allowed"] is True and relations["AliKms_GrantedLater"] is False
