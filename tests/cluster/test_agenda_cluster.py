"""Agenda commands through a real shard while its leader is killed: every
acknowledged event exists afterwards, none was created twice, and the
replicas hold identical state.  And a replica whose state was written by a
newer agent refuses it rather than misread it."""
from __future__ import annotations

import subprocess
import threading
import time
import uuid

from conftest import Cluster, report_failover

CAL = "alice"
ACTOR = {"user": CAL, "role": "user"}


def create_event(client, i: int, idem: str):
    start = f"2026-12-{1 + i % 28:02d}T{8 + i % 10:02d}:00:00Z"
    end = f"2026-12-{1 + i % 28:02d}T{8 + i % 10:02d}:30:00Z"
    op = {"op": "event.create", "actor": ACTOR,
          "args": {"calendar": CAL, "title": f"meeting {i}",
                   "start": start, "end": end, "time_zone": "Europe/Madrid"}}
    r, node, history = client.request("POST", f"event-{i}", idem=idem,
                                      path="/v1/commands", json_body=op,
                                      ok=(201,))
    return r.json()["event"]["id"], r.headers.get("Idempotent-Replayed")


def query(cluster: Cluster, rid: int, op: str, args: dict,
          stale: bool = False):
    r = cluster.http(rid, "POST", "/v1/queries",
                     params={"consistency": "stale"} if stale else None,
                     json={"op": op, "actor": ACTOR, "args": args},
                     timeout=5.0)
    return r


def test_events_survive_leader_kill(request, cluster: Cluster):
    acked: dict[str, str] = {}      # idempotency key -> event id
    lock = threading.Lock()
    stop = threading.Event()
    errors: list[str] = []

    def writer(w: int):
        cl = cluster.client(budget=30.0)
        i = 0
        while not stop.is_set():
            idem = f"ev-{w}-{i}-{uuid.uuid4().hex[:8]}"
            try:
                ev, _ = create_event(cl, w * 1000 + i, idem)
            except Exception as e:  # noqa: BLE001 - reported below
                errors.append(repr(e))
                return
            with lock:
                acked[idem] = ev
            i += 1

    wall_start_ms = time.time() * 1000
    threads = [threading.Thread(target=writer, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    time.sleep(1.0)
    leader = cluster.wait_for_leader()
    with lock:
        before = len(acked)
    t_kill = time.monotonic()
    cluster.kill(leader)
    while time.monotonic() - t_kill < 10:
        with lock:
            if len(acked) > before + 4:
                break
        time.sleep(0.01)
    report_failover(request, time.monotonic() - t_kill, "kill -9 leader")
    time.sleep(0.5)
    cluster.start(leader)
    cluster.wait_http([leader])
    stop.set()
    for t in threads:
        t.join(timeout=60)
    assert not errors, errors[:3]
    assert len(acked) > before + 4, "no event was created after the kill"
    # ids are minted by the leaders: 12 hex digits of their clock (Unix ms,
    # so a calendar's new events sort last), then 80 random bits
    wall_end_ms = time.time() * 1000
    for ev in acked.values():
        assert len(ev) == 32 and all(ch in "0123456789abcdef" for ch in ev)
        assert wall_start_ms - 5000 <= int(ev[:12], 16) <= wall_end_ms + 5000
    assert len({ev[12:] for ev in acked.values()}) == len(acked)

    # a retry of an acknowledged create answers the first result
    cl = cluster.client(budget=20.0)
    idem, ev = next(iter(acked.items()))
    again, replayed = create_event(cl, 999999, idem)
    assert again == ev and replayed == "true"

    cluster.wait_converged(timeout=30)
    leader = cluster.wait_for_leader()
    listed: list[str] = []
    cursor = None
    while True:
        args = {"calendar": CAL, "from": "2026-12-01T00:00:00Z",
                "to": "2026-12-31T00:00:00Z", "limit": 500}
        if cursor:
            args["cursor"] = cursor
        r = query(cluster, leader, "event.list", args)
        assert r.status_code == 200, r.text
        body = r.json()
        listed += [e["id"] for e in body["events"]]
        cursor = body.get("next_cursor")
        if not cursor:
            break
    assert len(listed) == len(set(listed)), "an event is listed twice"
    missing = set(acked.values()) - set(listed)
    assert not missing, f"acknowledged events lost: {sorted(missing)[:5]}"
    # every logical create was retried with its key until acknowledged, so
    # exactly one event per key: nothing was created twice
    assert len(listed) == len(acked), (len(listed), len(acked))
    for rid in cluster.ids:
        r = query(cluster, rid, "event.get", {"calendar": CAL, "id": ev},
                  stale=True)
        assert r.status_code == 200 and r.json()["event"]["id"] == ev


def test_state_of_a_newer_format_is_refused_and_left_alone(cluster: Cluster):
    """An agent meeting a state written by a newer agent (a later on-disk
    format, raft_agent/agenda/upgrade.c) refuses to start, says why, and
    changes nothing: it must not read, or rewrite, what it does not know."""
    leader = cluster.wait_for_leader()
    client = cluster.client()
    create_event(client, 0, f"newer-{uuid.uuid4().hex}")
    victim = cluster.others(leader)[0]
    cluster.wait_converged()
    assert cluster.stop(victim) == 0
    data = cluster.replicas[victim].data_dir
    # ag_meta "format" = 4, one more than this build writes
    # (mdb_load -T: a key line, then its value line, \hh escapes)
    patch = "format\n\\00\\00\\00\\00\\00\\00\\00\\04\n"
    r = subprocess.run(["mdb_load", "-T", "-s", "ag_meta", str(data)],
                       input=patch, capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 0, r.stderr
    before = subprocess.run(["mdb_dump", "-a", str(data)],
                            capture_output=True, timeout=30).stdout
    cluster.start(victim)
    proc = cluster.replicas[victim].proc
    assert proc.wait(timeout=15) == 1
    log = cluster.log_tail(victim)
    assert "unsupported storage format" in log, log
    assert "MDB_VERSION_MISMATCH" in log, log
    after = subprocess.run(["mdb_dump", "-a", str(data)],
                           capture_output=True, timeout=30).stdout
    assert after == before


def test_commands_every_replica_would_refuse_are_not_proposed(
        cluster: Cluster):
    """An operation over 256 KiB, an unknown one or a query sent as a
    command is answered at once and never reaches the log: it would be
    synced on a majority and kept in every replica's log and session table
    only to be refused at apply."""
    leader = cluster.wait_for_leader()
    last = cluster.status(leader)["last_index"]
    big = {"op": "event.create", "actor": ACTOR,
           "args": {"calendar": CAL, "title": "t", "description":
                    "x" * (300 * 1024), "start": "2026-12-01T10:00:00Z",
                    "end": "2026-12-01T11:00:00Z", "time_zone": "UTC"}}
    for body, status, code in (
            (big, 413, "too_large"),
            ({"op": "event.nothing", "actor": ACTOR, "args": {}}, 400,
             "unknown_op"),
            ({"op": "event.list", "actor": ACTOR,
              "args": {"calendar": CAL, "from": "2026-12-01T00:00:00Z",
                       "to": "2026-12-02T00:00:00Z"}}, 400, "wrong_kind")):
        r = cluster.http(leader, "POST", "/v1/commands", json=body,
                         headers={"Idempotency-Key": uuid.uuid4().hex},
                         timeout=5.0)
        assert r.status_code == status, r.text
        assert r.json()["error"]["code"] == code, r.text
    time.sleep(0.3)     # a proposal would have been appended by now
    assert cluster.status(leader)["last_index"] == last


def test_a_null_id_is_an_absent_one(cluster: Cluster):
    """event.create (group.create alike) with "id": null gets an id minted by
    the leader, as without one (API.md: null is absent); before, the null
    was proposed as it was and refused at apply."""
    leader = cluster.wait_for_leader()
    op = {"op": "event.create", "actor": ACTOR,
          "args": {"calendar": CAL, "id": None, "title": "minted",
                   "start": "2026-12-03T10:00:00Z",
                   "end": "2026-12-03T11:00:00Z", "time_zone": "UTC"}}
    r = cluster.http(leader, "POST", "/v1/commands", json=op,
                     headers={"Idempotency-Key": uuid.uuid4().hex},
                     timeout=5.0)
    assert r.status_code == 201, r.text
    assert len(r.json()["event"]["id"]) == 32
