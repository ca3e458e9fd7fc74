"""The calendar of a deleted group is emptied even when the edge stops
half way: calendar.purge marks an unfinished purge in the replicated
state, and whichever replica leads the events shard finishes it
(raft_agent/purge_driver.c), a new leader included."""
from __future__ import annotations

import time
import uuid

from conftest import Cluster

GCAL = "g:" + uuid.uuid4().hex[:16]
LEADER = {"user": "lea", "role": "user", "calendar_role": "leader"}
SYSTEM = {"user": "", "role": "system"}
EVENTS = 250        # AGENDA_PURGE_BATCH is 100: three batches


def command(c: Cluster, rid: int, op: str, actor: dict, args: dict,
            ok=(200, 201)):
    r = c.http(rid, "POST", "/v1/commands",
               json={"op": op, "actor": actor, "args": args},
               headers={"Idempotency-Key": uuid.uuid4().hex}, timeout=10)
    assert r.status_code in ok, r.text
    return r.json()


def left_on(c: Cluster, rid: int) -> tuple[int, list]:
    """Events of GCAL on replica rid (stale read), and the calendars it
    lists as unfinished purges."""
    r = c.http(rid, "POST", "/v1/queries", params={"consistency": "stale"},
               json={"op": "event.list", "actor": SYSTEM,
                     "args": {"calendar": GCAL,
                              "from": "2026-01-01T00:00:00Z",
                              "to": "2026-12-31T00:00:00Z", "limit": 500}})
    assert r.status_code == 200, r.text
    n = len(r.json()["events"])
    r = c.http(rid, "POST", "/v1/queries", params={"consistency": "stale"},
               json={"op": "calendar.purging", "actor": SYSTEM, "args": {}})
    assert r.status_code == 200, r.text
    return n, r.json()["calendars"]


def test_a_new_leader_finishes_a_purge_the_edge_left(cluster: Cluster):
    leader = cluster.wait_for_leader()
    for i in range(EVENTS):
        day, hour = 1 + i // 10 % 28, 8 + i % 10
        command(cluster, leader, "event.create", LEADER,
                {"calendar": GCAL, "title": f"weekly {i}",
                 "start": f"2026-03-{day:02d}T{hour:02d}:00:00Z",
                 "end": f"2026-03-{day:02d}T{hour:02d}:30:00Z",
                 "time_zone": "UTC"})
    assert left_on(cluster, leader) == (EVENTS, [])

    # the edge purges one batch of the deleted group's calendar, then
    # stops; so does the leader
    first = command(cluster, leader, "calendar.purge", SYSTEM,
                    {"calendar": GCAL})
    assert first["deleted"] == 100 and first["more"] is True
    cluster.kill(leader)
    new = cluster.wait_for_leader()
    assert new != leader

    # the new leader finishes it on its own
    deadline = time.monotonic() + 20
    while left_on(cluster, new) != (0, []):
        assert time.monotonic() < deadline, \
            f"left on node {new}: {left_on(cluster, new)}"
        time.sleep(0.1)
    cluster.start(leader)
    cluster.wait_converged()
    for rid in cluster.ids:
        assert left_on(cluster, rid) == (0, []), rid
