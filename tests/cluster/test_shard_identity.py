"""Replicas of one shard must run it with the same kind and range
(raft_agent/shard_identity.h): a new leader says in its no-op what the
shard is by its config, and a replica whose own config says otherwise
stops before applying anything of that term, naming both; mended, it
rejoins and converges as if nothing happened."""
from __future__ import annotations

import json
import time

from conftest import Client


def test_a_replica_with_another_range_stops_and_rejoins_when_mended(
        cluster_factory):
    c = cluster_factory()
    for rid in (1, 2):
        c.start(rid)
    c.wait_http([1, 2])
    c.wait_for_leader(among=[1, 2])
    for i in range(10):
        Client(c, nodes=[1, 2]).put(f"before-{i}", b"v")

    path = c.agent_config(3)
    good = path.read_text()
    odd = json.loads(good)
    assert odd["shard"]["range"] == {"from": "", "to": "n"}
    odd["shard"]["range"]["to"] = "m"      # hand-edited, not regenerated
    path.write_text(json.dumps(odd))
    c.start(3)
    proc = c.replicas[3].proc
    deadline = time.monotonic() + 15
    while proc.poll() is None:
        assert time.monotonic() < deadline, "node 3 kept running"
        time.sleep(0.05)
    assert proc.returncode == 2
    log = c.log_tail(3, 50)
    assert 'runs this shard as kind "events", range ["", "n")' in log, log
    assert "this replica's config says otherwise" in log, log

    path.write_text(good)
    c.start(3)
    c.wait_http([3])
    for i in range(10):
        Client(c).put(f"after-{i}", b"v")
    c.wait_converged()
