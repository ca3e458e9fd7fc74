"""Replicas of one shard must run it with the same kind and range
(raft_agent/shard_identity.h): a new leader says in its no-op what the
shard is by its config, and a replica whose own config says otherwise
appends and answers nothing of that leader's term, naming both.  Whether
the odd one out starts as a follower or gets to lead, the others go on
without it; mended, it rejoins and converges."""
from __future__ import annotations

import json
import time

import pytest

from conftest import Client


def make_odd(c, rid: int) -> str:
    """Hand-edit replica rid's config to another range; returns the good
    text."""
    path = c.agent_config(rid)
    good = path.read_text()
    odd = json.loads(good)
    assert odd["shard"]["range"] == {"from": "", "to": "n"}
    odd["shard"]["range"]["to"] = "m"
    path.write_text(json.dumps(odd))
    return good


def refused_then_mended(c, good: str, running: str) -> None:
    """Node 3, started with its odd config, exits because its state says
    otherwise; started again with the good one, it rejoins."""
    c.start(3)
    proc = c.replicas[3].proc
    try:
        proc.wait(timeout=20)
    except Exception:
        pytest.fail(running)
    assert proc.returncode != 0
    log = c.log_tail(3, 80)
    assert 'was applied as a shard of kind "events", range ["", "n")' in log, \
        log
    c.agent_config(3).write_text(good)
    c.start(3)
    c.wait_http([3])
    Client(c).put("after", b"v")
    c.wait_converged()


@pytest.mark.parametrize("odd", [3, 1], ids=["joins-late", "starts-first"])
def test_a_replica_with_another_range_stays_out_until_mended(
        cluster_factory, odd):
    c = cluster_factory()
    good = make_odd(c, odd)
    others = c.others(odd)
    if odd == 3:                 # a follower of a leader it disagrees with
        for rid in others:
            c.start(rid)
        c.wait_http(others)
        c.wait_for_leader(among=others)
        c.start(3)
    else:                        # it may win the first election
        c.start(1)
        c.start(2)
        time.sleep(1.0)
        c.start(3)
    c.wait_http(c.ids)
    for i in range(20):
        Client(c, nodes=others).put(f"k{i}", b"v")
    c.wait_converged(ids=others)

    assert c.running(odd), "the odd one out is expected to keep running"
    deadline = time.monotonic() + 10
    while "and this replica's config says otherwise" not in (
            logs := "".join(c.log_tail(rid, 200) for rid in c.ids)):
        assert time.monotonic() < deadline, logs[-3000:]
        time.sleep(0.1)
    refusers = [rid for rid in c.ids
                if "config says otherwise" in c.log_tail(rid, 200)]
    if odd == 3:                 # it never led: only it refuses
        assert refusers == [3], refusers
    for rid in refusers:         # each names the other side's range
        theirs = '["", "n")' if rid == odd else '["", "m")'
        assert f'ran this shard as kind "events", range {theirs}' in \
            c.log_tail(rid, 200), (rid, c.log_tail(rid, 30))
    applied = c.status(odd)["applied_index"]
    assert applied < c.status(others[0])["applied_index"], applied

    c.stop(odd)
    c.agent_config(odd).write_text(good)
    c.start(odd)
    c.wait_http([odd])
    for i in range(5):
        Client(c).put(f"after-{i}", b"v")
    c.wait_converged()


def test_a_replica_whose_config_changed_under_its_data_refuses_to_start(
        cluster_factory):
    """The state records the identity it was applied under (and snapshots
    carry it), so a config edited between two runs is caught at start,
    not only at the next election."""
    c = cluster_factory()
    c.start_all()
    for i in range(10):
        Client(c).put(f"k{i}", b"v")
    c.wait_converged()
    assert c.stop(3) == 0
    good = make_odd(c, 3)
    refused_then_mended(c, good, "node 3 started with a config that "
                        "contradicts its data")


def test_a_replica_that_catches_up_by_snapshot_checks_it_too(
        cluster_factory):
    """Far behind, a replica gets a snapshot instead of the no-op that
    named the shard: the identity recorded in the snapshot is checked
    when it is installed."""
    c = cluster_factory(raft={"snapshot_threshold": 20})
    good = make_odd(c, 3)
    for rid in (1, 2):
        c.start(rid)
    c.wait_http([1, 2])
    c.wait_for_leader(among=[1, 2])
    for i in range(60):
        Client(c, nodes=[1, 2]).put(f"k{i}", b"v")
    c.wait_converged(ids=[1, 2])
    assert c.status(1)["snapshot_index"] > 0, "no compaction yet"
    refused_then_mended(c, good, "node 3 runs on a snapshot of another "
                        "shard's kind and range")
