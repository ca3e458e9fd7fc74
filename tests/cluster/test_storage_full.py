"""A full LMDB map makes the shard refuse writes, never acknowledge one
that is not committed, and say so clearly (/health, /metrics, 507); once
the replicas have room again, every acknowledged write is on every one."""
from __future__ import annotations

import json
import time
import uuid

import requests

from conftest import Cluster


def test_full_map_refuses_writes_without_false_acks(cluster_factory):
    # 1 MiB maps and no compaction: a few hundred 2 KiB values fill them.
    c: Cluster = cluster_factory(raft={"map_size_mb": 1,
                                       "snapshot_threshold": 1000000})
    c.start_all()
    value = b"x" * 2048
    acked, refused, unknown = [], [], []
    sess = requests.Session()
    deadline = time.monotonic() + 60
    leader = c.wait_for_leader()
    while time.monotonic() < deadline and len(refused) < 5:
        key = f"full-{uuid.uuid4().hex[:12]}"
        try:
            r = sess.put(c.url(leader, f"/kv/{key}"), data=value,
                         headers={"Idempotency-Key": key}, timeout=(1, 8))
        except requests.RequestException:
            unknown.append(key)
            continue
        if r.status_code == 200:
            acked.append((key, leader))
        elif r.status_code == 507:
            assert r.json()["error"]["code"] == "storage_full"
            refused.append(key)
        elif r.status_code in (503, 421):
            # outcome unknown / leadership moved: ask whoever leads now
            unknown.append(key)
            st = c.statuses()
            leaders = [rid for rid, s in st.items() if s["role"] == "leader"]
            if leaders:
                leader = leaders[0]
        else:
            raise AssertionError(f"unexpected {r.status_code}: {r.text}")
    assert len(acked) > 50, f"only {len(acked)} writes fit in the map"
    assert refused or unknown, "the map never filled up"

    # Someone reports the full storage, in /health and in /metrics.
    full = [rid for rid in c.ids
            if c.metric(rid, "agenda_storage_full") == 1.0]
    assert full, "no replica reports agenda_storage_full 1"
    for rid in full:
        h = c.http(rid, "GET", "/health")
        assert h.status_code == 503
        assert "storage" in h.json()["error"]["message"]

    # Every write refused with 507 is on no replica.
    for rid in c.ids:
        for key in refused:
            r = c.http(rid, "GET", f"/kv/{key}",
                       params={"consistency": "stale"})
            assert r.status_code == 404, f"refused {key} stored on {rid}"

    # An acknowledged write is committed (in the logs of a majority) and
    # was answered from its apply, maybe before that apply could be stored
    # (node.c, commit_batch): a replica whose map is full keeps it in its
    # log, unapplied.  Give every replica a bigger map: then every
    # acknowledged write is on every replica, and still no refused one.
    topo = json.loads(c.topology_path.read_text())
    topo["raft"]["map_size_mb"] = 8
    c.write_topology(topo)
    for rid in c.ids:
        c.restart(rid)
    marker = c.client().put(f"room-{uuid.uuid4().hex[:8]}", b"again")
    c.wait_converged()
    for rid in c.ids:
        for key in [marker.key] + [k for k, _ in acked]:
            r = c.http(rid, "GET", f"/kv/{key}",
                       params={"consistency": "stale"})
            want = marker.value if key == marker.key else value
            assert r.status_code == 200 and r.content == want, \
                f"acknowledged {key} missing on node {rid}"
        for key in refused:
            r = c.http(rid, "GET", f"/kv/{key}",
                       params={"consistency": "stale"})
            assert r.status_code == 404, f"refused {key} stored on {rid}"
