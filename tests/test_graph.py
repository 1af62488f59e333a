"""The identity and resource graph on the curated incident and on crafted events."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import networkx as nx
import numpy as np
import pytest
from conftest import (
    ACCOUNT_DEV,
    ACCOUNT_PROD,
    CLIENT_KEY,
    KEY,
    ROLE_ID,
    STS_KEY,
    USER_ID,
    assume_role_event,
    at_event,
    jsonl,
    kms_record,
    load_case,
    role_session_event,
    write,
)

import kmsforensics as kf

if TYPE_CHECKING:
    from matplotlib.axes import Axes


@pytest.fixture(scope="module")
def incident() -> tuple[dict, kf.Case, nx.MultiDiGraph]:
    folder = kf.datasets.path("incident-leaked-ci-key")
    truth = json.loads((folder / "truth.json").read_text())
    case = load_case(folder / "evidence", on_warning="error")
    return truth, case, kf.build_graph(case)


def facts(truth: dict, name: str) -> dict:
    return next(s for s in truth["scenarios"] if s["id"] == name)["facts"]


def test_trace_of_the_attackers_sts_key_reaches_the_ci_user_and_account(
    incident: tuple[dict, kf.Case, nx.MultiDiGraph],
) -> None:
    truth, _, graph = incident
    leak = facts(truth, "leaked-ci-key")
    hops = kf.trace(graph, leak["sts_key"])
    assert hops.kind.tolist() == ["access-key", "role-session", "ram-user", "account"]
    assert hops.relation.tolist()[1:] == ["issued", "assumed", "owns"]
    user = hops.iloc[2]
    assert user["name"] == "ci-deployer" and user["account"] == leak["user_account"]
    assert hops.iloc[3]["node"] == f"account:{leak['user_account']}"
    assert bool(hops.iloc[2]["cross_account"]) is True  # the assumption crossed accounts


def test_who_accessed_an_exfiltrated_secret_lists_the_attackers_session(
    incident: tuple[dict, kf.Case, nx.MultiDiGraph],
) -> None:
    truth, _, graph = incident
    leak = facts(truth, "leaked-ci-key")
    secret = f"secret:{leak['role_account']}/{leak['secrets_read'][0]}"
    readers = kf.who_accessed(graph, secret)
    row = readers.set_index("credential").loc[f"access-key:{leak['sts_key']}"]
    assert row["identity"].startswith("role-session:") and row["identity"].endswith(":debug")
    assert row["origin"] == f"account:{leak['user_account']}"
    assert leak["attacker_ip"] in row["source_ips"]
    assert "GetSecretValue" in row["operations"]
    assert len(readers) > 1  # the workloads that read it every day are there too


def test_one_node_per_role_whatever_names_it(
    incident: tuple[dict, kf.Case, nx.MultiDiGraph],
) -> None:
    _, _, graph = incident
    roles = [n for n, d in graph.nodes(data=True) if d["kind"] == "ram-role"]
    assert all(":" in r and "/" not in r.split(":", 1)[1] for r in roles)  # all by id
    deploy = [r for r in roles if graph.nodes[r]["name"] == "deploy-role"]
    assert len(deploy) == 2  # one in dev, one in prod


def test_blast_radius_of_the_leaked_key(incident: tuple[dict, kf.Case, nx.MultiDiGraph]) -> None:
    truth, _, graph = incident
    leak = facts(truth, "leaked-ci-key")
    reach = kf.blast_radius(graph, leak["leaked_access_key"])
    assert f"access-key:{leak['sts_key']}" in set(reach.node)
    secrets = set(reach.loc[reach.kind == "secret", "name"])
    assert {f"{leak['role_account']}/{s}" for s in leak["secrets_read"]} <= secrets
    path = reach.set_index("node").loc[f"access-key:{leak['sts_key']}", "path"]
    assert path.startswith(f"access-key:{leak['leaked_access_key']}")


def test_edges_are_aggregated_not_per_event(
    incident: tuple[dict, kf.Case, nx.MultiDiGraph],
) -> None:
    _, case, graph = incident
    assert graph.number_of_edges() < len(case.activity) / 5  # grows with entities
    calls = [e for _, _, e in graph.edges(data=True) if e["relation"] == "called"]
    assert sum(e["count"] for e in calls) > 0.9 * len(case.kms)
    assert all(e["first_seen"] <= e["last_seen"] for e in calls)
    assert {"relation", "count", "first_seen", "last_seen", "failures", "operations"} <= set(
        calls[0]
    )


def test_client_keys_belong_to_their_aap_and_instances_host_keys(tmp_path: Path) -> None:
    write(tmp_path / "k.jsonl", jsonl([kms_record(1), kms_record(2)]))
    graph = kf.build_graph(load_case(tmp_path))
    aap = f"aap:{ACCOUNT_PROD}/payments-aap"
    assert graph.has_edge(aap, f"client-key:{CLIENT_KEY}", key="has-key")
    assert graph.has_edge(f"account:{ACCOUNT_PROD}", aap, key="owns")
    assert graph.has_edge(f"client-key:{CLIENT_KEY}", f"key:{KEY}", key="called")
    instance = next(n for n in graph if n.startswith("kms-instance:"))
    assert graph.has_edge(instance, f"key:{KEY}", key="hosts")
    assert kf.trace(graph, CLIENT_KEY).node.tolist() == [
        f"client-key:{CLIENT_KEY}",
        aap,
        f"account:{ACCOUNT_PROD}",
    ]


def test_identities_seen_in_one_log_only(tmp_path: Path) -> None:
    # the STS key is only in the KMS log; its session only in ActionTrail
    write(tmp_path / "at.jsonl", jsonl([assume_role_event(1)]))
    write(
        tmp_path / "kms.jsonl",
        jsonl(
            [
                kms_record(
                    2,
                    identity_type="ram-role",
                    access_key_id=STS_KEY,
                    principal_id=ROLE_ID,
                    access_key_fingerprint="",
                )
            ]
        ),
    )
    graph = kf.build_graph(load_case(tmp_path))
    hops = kf.trace(graph, STS_KEY)
    assert hops.node.tolist() == [
        f"access-key:{STS_KEY}",
        f"role-session:{ROLE_ID}:ci-session",
        f"ram-user:{USER_ID}",
        f"account:{ACCOUNT_DEV}",
    ]
    assert graph.has_edge(f"access-key:{STS_KEY}", f"key:{KEY}", key="called")


def test_role_chain_is_traced_through_both_sessions(tmp_path: Path) -> None:
    second = "STS.SecondHopSessionKey0000001"
    chained = assume_role_event(
        5,
        userIdentity=role_session_event(4)["userIdentity"],
        requestParameters={
            "RoleArn": f"acs:ram::{ACCOUNT_PROD}:role/audit-role",
            "RoleSessionName": "hop2",
        },
        responseElements={
            "Credentials": {"AccessKeyId": second},
            "AssumedRoleUser": {"AssumedRoleId": "999999999999999999:hop2"},
        },
        referencedResources={"ACS::RAM::AccessKey": [second]},
    )
    write(tmp_path / "at.jsonl", jsonl([assume_role_event(1), role_session_event(2), chained]))
    hops = kf.trace(kf.build_graph(load_case(tmp_path)), second)
    assert hops.kind.tolist() == [
        "access-key",
        "role-session",
        "role-session",
        "ram-user",
        "account",
    ]


def test_unknown_and_ambiguous_references_are_clear_errors(tmp_path: Path) -> None:
    write(tmp_path / "at.jsonl", jsonl([at_event(1), role_session_event(2)]))
    graph = kf.build_graph(load_case(tmp_path))
    with pytest.raises(kf.graph.UnknownReferenceError, match="no node"):
        kf.trace(graph, "STS.does-not-exist")
    graph.add_node("secret:111/shared-name", kind="secret", name="111/shared-name")
    graph.add_node("secret:222/shared-name", kind="secret", name="222/shared-name")
    with pytest.raises(kf.graph.AmbiguousReferenceError, match="secret:111/shared-name"):
        kf.who_accessed(graph, "shared-name")
    assert kf.graph.resolve(graph, "secret:111/shared-name") == "secret:111/shared-name"


def test_a_time_window_gives_the_graph_of_that_window(
    incident: tuple[dict, kf.Case, nx.MultiDiGraph],
) -> None:
    truth, case, _ = incident
    leak = facts(truth, "leaked-ci-key")
    before = kf.build_graph(case.between(None, truth["scenarios"][0]["steps"][0]["time"]))
    assert f"access-key:{leak['sts_key']}" not in before


def test_cross_account_assumptions_include_the_attack(
    incident: tuple[dict, kf.Case, nx.MultiDiGraph],
) -> None:
    truth, _, graph = incident
    leak = facts(truth, "leaked-ci-key")
    crossed = kf.graph.cross_account(graph)
    attack = crossed[crossed.session.str.endswith(":debug")]
    assert len(attack) == 1
    assert graph.nodes[attack.source.item()]["name"] == "ci-deployer"
    assert attack.role.item() == "deploy-role"
    assert attack.role_account.item() == leak["role_account"]
    assert set(crossed.role) <= {"deploy-role", "ResourceDirectoryAccountAccessRole"}


def test_diff_shows_what_the_incident_window_added(
    incident: tuple[dict, kf.Case, nx.MultiDiGraph],
) -> None:
    truth, case, _ = incident
    leak = facts(truth, "leaked-ci-key")
    cut = truth["scenarios"][0]["steps"][0]["time"]
    change = kf.graph.diff(
        kf.build_graph(case.between(None, cut)), kf.build_graph(case.between(cut, None))
    )
    new_nodes = set(change.loc[change.change == "new node", "source"])
    assert {f"access-key:{leak['sts_key']}", f"ip:{leak['attacker_ip']}"} <= new_nodes
    new_edges = change[change.change == "new edge"]
    assert (
        (new_edges.source == f"ip:{leak['attacker_ip']}")
        & (new_edges.target == f"access-key:{leak['leaked_access_key']}")
    ).any()


@pytest.mark.parametrize("fmt", ["graphml", "gexf", "json"])
def test_exports_round_trip(
    incident: tuple[dict, kf.Case, nx.MultiDiGraph], fmt: str, tmp_path: Path
) -> None:
    _, _, graph = incident
    path = kf.graph.write_graph(graph, tmp_path / f"case.{fmt}")
    back = kf.graph.read_graph(path)
    assert set(back.nodes) == set(graph.nodes)
    assert set(back.edges(keys=True)) == set(graph.edges(keys=True))
    for src, dst, key, data in list(graph.edges(keys=True, data=True))[:500]:
        other = back.edges[src, dst, key]
        for name in ("count", "failures", "operations", "first_seen", "last_seen"):
            assert other[name] == data[name], (src, dst, key, name)
    node, data = next(iter(graph.nodes(data=True)))
    assert back.nodes[node]["kind"] == data["kind"]


def test_picture_of_the_attack_is_readable(
    incident: tuple[dict, kf.Case, nx.MultiDiGraph],
    tmp_path: Path,
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    truth, _, graph = incident
    leak = facts(truth, "leaked-ci-key")
    ax = kf.plot_graph(graph, focus=leak["sts_key"], depth=2)
    assert "around" in ax.get_title()
    figure = ax.figure
    labels = [t for t in ax.texts if t.get_text()]
    shown = {t.get_text() for t in labels}
    assert "ci-deployer" in shown and "deploy-role:debug" in shown
    assert leak["attacker_ip"] in shown
    assert_readable(ax)
    legend = {t.get_text() for t in ax.get_legend().get_texts()}
    assert {"ram-user", "role-session", "access-key", "secret", "cross-account"} <= legend
    arrows = [t.arrow_patch for t in ax.texts if getattr(t, "arrow_patch", None) is not None]
    dashed = [p for p in arrows if p.get_linestyle() in ("--", "dashed")]
    assert dashed  # the cross-account assumption is marked
    figure.savefig(tmp_path / "graph.png")
    assert (tmp_path / "graph.png").stat().st_size > 10_000


def assert_readable(ax: Axes) -> None:
    """No node label overlaps another label or any node's marker, and none is cut.

    The extents are those of the drawn figure (its renderer), the markers' boxes
    their scatter sizes at the figure's resolution.
    """
    from matplotlib.transforms import Bbox

    figure = ax.figure
    figure.canvas.draw()
    renderer = figure.canvas.get_renderer()  # type: ignore[attr-defined]
    labels = [t for t in ax.texts if t.get_text()]
    boxes = [t.get_window_extent(renderer) for t in labels]
    for i, a in enumerate(boxes):
        for j, b in enumerate(boxes[i + 1 :], start=i + 1):
            assert not a.overlaps(b), f"{labels[i].get_text()!r} overlaps {labels[j].get_text()!r}"
    markers = []
    for scatter in ax.collections:
        points = scatter.get_offset_transform().transform(scatter.get_offsets())
        sizes = scatter.get_sizes()
        for (x, y), size in zip(points, np.resize(sizes, len(points)), strict=True):
            r = np.sqrt(size) / 2 * figure.dpi / 72  # a marker's radius, in pixels
            markers.append(Bbox.from_extents(x - r, y - r, x + r, y + r))
    assert markers
    for label, box in zip(labels, boxes, strict=True):
        hit = [m for m in markers if box.overlaps(m)]
        assert not hit, f"{label.get_text()!r} lies on a node's marker"
        assert figure.bbox.contains(box.x0, box.y0) and figure.bbox.contains(box.x1, box.y1), (
            f"{label.get_text()!r} is cut by the figure's edge"
        )
        assert label.get_zorder() > 1 and label.get_bbox_patch() is not None  # edges behind


@pytest.mark.parametrize("name", ["sts_key", "key_scheduled", "user", "attacker_ip"])
def test_pictures_the_report_draws_have_readable_labels(
    incident: tuple[dict, kf.Case, nx.MultiDiGraph], name: str, tmp_path: Path
) -> None:
    """The report's focus is the top finding's entity: on this case the scheduled key."""
    import matplotlib

    matplotlib.use("Agg")
    truth, _, graph = incident
    found = {**facts(truth, "leaked-ci-key"), **facts(truth, "key-destruction")}
    focus = f"key:{found[name]}" if name == "key_scheduled" else found[name]
    ax = kf.plot_graph(graph, focus=focus, depth=2)
    assert_readable(ax)
    ticks = [t.get_text() for t in ax.get_xticklabels()]
    assert len(ticks) == len(set(ticks)) and "" not in ticks  # only the columns with nodes
    ax.figure.savefig(tmp_path / "graph.png", bbox_inches="tight")  # as the report keeps it


def test_whole_graph_picture_stays_within_bounds(
    incident: tuple[dict, kf.Case, nx.MultiDiGraph],
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    _, _, graph = incident
    ax = kf.plot_graph(graph)
    assert len(ax.collections) >= 5  # one scatter per kind drawn
    assert len([t for t in ax.texts if t.get_text()]) <= kf.graph.plot.MAX_NODES
    assert "not shown" in ax.get_title()


def test_bare_references_name_the_same_things_in_the_graph_and_the_rows(tmp_path: Path) -> None:
    """graph.resolve, case.focus and kf.timeline share one vocabulary (graph/nodes.py)."""
    write(tmp_path / "at.jsonl", jsonl([at_event(1), role_session_event(2)]))
    case = load_case(tmp_path)
    graph = kf.build_graph(case)
    node = kf.graph.resolve(graph, "prod/DB-password")  # a secret by its name, any case
    assert node == f"secret:{ACCOUNT_PROD}/prod/db-password"
    rows = case.focus(node).activity
    assert len(rows) == 1 and rows.equals(case.focus("prod/db-password").activity)
    assert len(kf.timeline(case, node)) == len(rows)
    session = kf.graph.resolve(graph, "ci-session")  # a session by its name
    assert session == f"role-session:{ROLE_ID}:ci-session"
    assert len(kf.timeline(case, session)) == len(case.focus(session).activity) == 1
    assert kf.graph.resolve(graph, ROLE_ID) == f"ram-role:{ROLE_ID}"  # not its sessions
