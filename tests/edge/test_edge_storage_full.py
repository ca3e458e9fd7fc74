"""A replica whose disk fills up is a replica lost for writes, and the
shard must go on without it as it does without a dead one.

Every replica of events_am runs with the full_disk.so shim: while its
flag file exists, its syncs fail with ENOSPC, so its LMDB commits fail,
it refuses writes with 507 and, frozen, stops heartbeating; the two
others elect a new leader.  The edge, which still takes the full
replica for the leader, must then look for that new leader within its
retry budget, not hand the 507 to every client until someone restarts
it."""
from __future__ import annotations

import time
import uuid

import pytest

from conftest import BUILD, STACK_ARGS, started_stack
from edge_client import (Client, EventWriters, error_log, event_body,
                         list_all, me, uname)

SHIM = BUILD / "full_disk.so"


def flag_of(root, rid):
    return root / f"disk-full-{rid}"


@pytest.fixture(scope="module")
def full_stack(request, tls_dir):
    if not SHIM.is_file():
        pytest.exit(f"{SHIM} not found: run `make {SHIM}`", 2)

    def env(root, shard, rid):
        if shard != "events_am":
            return {}
        return {"LD_PRELOAD": str(SHIM),
                "AGENDA_FULL_DISK_FLAG": str(flag_of(root, rid))}

    with started_stack(request, tls_dir, "full", STACK_ARGS,
                       agent_env=env) as s:
        yield s


def test_a_leader_whose_disk_fills_up_is_routed_around(full_stack):
    agents, edge = full_stack
    c = Client(edge).register_login(uname("k"))   # 'k' -> events_am
    cal = me(c)
    assert cal < "n"
    leader = agents.wait_for_leader("events_am")
    flag = flag_of(agents.root, leader)
    with EventWriters(edge, c.token, cal, prefix="full") as w:
        w.wait_for_acks(10)
        flag.touch()
        try:
            t0 = time.monotonic()
            new = agents.wait_for_leader("events_am", exclude=(leader,))
            # the full replica says so, and writes go on without it
            st = agents.status("events_am", leader)
            assert st is not None and st["storage_full"], st
            assert not st["healthy"], st
            w.wait_for_acks(20)
            print(f"new leader {new} after {time.monotonic() - t0:.2f}s")
        finally:
            flag.unlink()
    w.check(c)

    # with room again, the old leader stores what it held, follows the
    # new leader and catches up
    new = agents.wait_for_leader("events_am", exclude=(leader,))
    target = agents.status("events_am", new)["commit_index"]
    deadline = time.monotonic() + 15
    while True:
        st = agents.status("events_am", leader) or {}
        if (st.get("applied_index", 0) >= target
                and not st.get("storage_full", True)):
            break
        assert time.monotonic() < deadline, f"the full replica lags: {st}"
        time.sleep(0.05)
    assert st["role"] == "follower", st


def test_when_every_replica_is_full_the_client_hears_storage_full(
        full_stack):
    """No replica can store: the edge spends its retry budget looking for
    one, then answers 503 storage_full (retry with the same key).  The
    write the leader had already logged is kept, unacknowledged; once
    there is room, the retry with the same Idempotency-Key gets its 201
    and the event exists once."""
    agents, edge = full_stack
    c = Client(edge).register_login(uname("k"))
    cal = me(c)
    assert cal < "n"
    agents.revive("events_am")
    agents.wait_for_leader("events_am")
    flags = [flag_of(agents.root, rid) for (s, rid) in agents.http_ports
             if s == "events_am"]
    title = f"full {uuid.uuid4().hex[:8]}"
    key = uuid.uuid4().hex
    for f in flags:
        f.touch()
    try:
        r = c.req("POST", f"/calendars/{cal}/events", event_body(title=title),
                  headers={"Idempotency-Key": key}, timeout=30)
        assert r.status_code == 503, r.text
        assert r.json()["error"]["code"] == "storage_full", r.text
        assert r.headers.get("Retry-After") == "1"
        assert "a replica's storage is full" in error_log(edge)
    finally:
        for f in flags:
            f.unlink()
    r = c.req("POST", f"/calendars/{cal}/events", event_body(title=title),
              headers={"Idempotency-Key": key}, timeout=30)
    assert r.status_code == 201, r.text
    titles = [e["title"] for e in list_all(c, cal)]
    assert titles.count(title) == 1, titles
