"""End to end through nginx and real agents: the public API served by
agenda_api (ngx_agenda_api.c driving agenda_flow), leader routing and
retries, the password thread pool, JWT refusals and WSS notifications."""
from __future__ import annotations

import json
import os
import re
import signal
import threading
import time
import uuid

import pytest
import requests

from edge_client import (PASSWORD, Client, EventWriters, error_log,
                         event_body, list_all, me, needs_ws, send_and_hang_up,
                         uname, unwrap, websocket, ws_connect,
                         ws_meta_message, ws_status)


# ---- the REST path ----------------------------------------------------------

def test_register_login_create_list_and_agenda(stack):
    agents, edge = stack
    alice = Client(edge).register_login(uname("a"))
    me = alice.req("GET", "/me")
    assert me.status_code == 200, me.text
    cal = unwrap(me, "user")["username"]

    r = alice.req("POST", f"/calendars/{cal}/events", event_body(1),
                  headers={"Idempotency-Key": uuid.uuid4().hex})
    assert r.status_code == 201, r.text
    ev = unwrap(r, "event")
    assert "ETag" in r.headers

    r = alice.req("GET", f"/calendars/{cal}/events"
                  "?from=2026-12-01T00:00:00Z&to=2026-12-02T00:00:00Z")
    assert r.status_code == 200, r.text
    assert ev["id"] in r.text

    r = alice.req("GET", "/agenda?from=2026-12-01T00:00:00Z"
                  "&to=2026-12-02T00:00:00Z")
    assert r.status_code == 200, r.text
    assert ev["id"] in r.text


def test_a_write_without_a_key_names_the_one_to_retry_with(stack):
    """A write sent without Idempotency-Key is answered with the key the
    edge drew for it: a client that did not learn the outcome (a 503, a
    lost connection) retries with it and gets the first result, not a
    second event."""
    _, edge = stack
    c = Client(edge).register_login(uname("k"))
    cal = me(c)
    r = c.req("POST", f"/calendars/{cal}/events", event_body(7))
    assert r.status_code == 201, r.text
    key = r.headers.get("Idempotency-Key")
    assert key and re.fullmatch(r"[0-9a-f]{32}", key), r.headers
    first = unwrap(r, "event")["id"]
    r = c.req("POST", f"/calendars/{cal}/events", event_body(7),
              headers={"Idempotency-Key": key})
    assert r.status_code == 201, r.text
    assert unwrap(r, "event")["id"] == first
    assert "Idempotency-Key" not in r.headers  # the client's own
    assert [e["id"] for e in list_all(c, cal)] == [first]
    # another keyless write is another key, and another event
    r = c.req("POST", f"/calendars/{cal}/events", event_body(7))
    assert r.status_code == 201, r.text
    assert r.headers["Idempotency-Key"] != key
    assert len(list_all(c, cal)) == 2


def replica_counters(agents, shard, name):
    """{replica id: value of the counter `name`} from each replica's
    /metrics."""
    out = {}
    for (sh, rid), port in agents.http_ports.items():
        if sh != shard:
            continue
        text = requests.get(f"http://127.0.0.1:{port}/metrics",
                            timeout=5).text
        m = re.search(rf"^{name}{{[^}}]*}} (\S+)$", text, re.M)
        assert m, (name, text)
        out[rid] = float(m.group(1))
    return out


def test_reads_are_linearizable_at_the_leader_and_stale_ones_spread(stack):
    """A default read is answered by the shard's leader after a ReadIndex
    barrier, never by a follower; consistency=stale reads are spread over
    every replica of the shard."""
    agents, edge = stack
    c = Client(edge).register_login(uname("a"))
    cal = me(c)
    r = c.req("POST", f"/calendars/{cal}/events", event_body(1))
    assert r.status_code == 201, r.text
    path = (f"/calendars/{cal}/events"
            "?from=2026-12-01T00:00:00Z&to=2026-12-02T00:00:00Z")
    leader = agents.wait_for_leader("events_am")

    q0 = replica_counters(agents, "events_am", "agenda_queries_total")
    b0 = replica_counters(agents, "events_am", "agenda_raft_read_index_total")
    for _ in range(6):
        r = c.req("GET", path)
        assert r.status_code == 200 and cal in r.text, r.text
    q1 = replica_counters(agents, "events_am", "agenda_queries_total")
    b1 = replica_counters(agents, "events_am", "agenda_raft_read_index_total")
    assert q1[leader] - q0[leader] >= 6, (q0, q1)
    assert b1[leader] - b0[leader] >= 6, (b0, b1)
    for rid in q0:
        if rid != leader:
            assert q1[rid] == q0[rid] and b1[rid] == b0[rid], (rid, q0, q1)

    for _ in range(9):
        r = c.req("GET", path + "&consistency=stale")
        assert r.status_code == 200, r.text
    q2 = replica_counters(agents, "events_am", "agenda_queries_total")
    b2 = replica_counters(agents, "events_am", "agenda_raft_read_index_total")
    assert len(q2) == 3
    assert all(q2[rid] > q1[rid] for rid in q2), (q1, q2)
    assert b2 == b1, (b1, b2)   # no barrier for stale reads


def leader_other_and_group(edge):
    """Two new users, alice and bob, and a group alice created (bob is not
    in it): (alice, bob, group id)."""
    alice = Client(edge).register_login(uname("a"))
    bob = Client(edge).register_login(uname("b"))
    r = alice.req("POST", "/groups", {"name": "Choir"})
    assert r.status_code == 201, r.text
    return alice, bob, unwrap(r, "group")["id"]


def test_an_invitee_who_is_not_a_member_answers_a_group_event(stack):
    """Invited to an event of a group calendar without being a member:
    the invitee sees the event and answers it; the calendar's list and the
    events they are not invited to stay closed."""
    _, edge = stack
    alice, bob, gid = leader_other_and_group(edge)
    cal = f"g:{gid}"
    r = alice.req("POST", f"/calendars/{cal}/events",
                  event_body(1, participants=[me(bob)]))
    assert r.status_code == 201, r.text
    invited = unwrap(r, "event")["id"]
    r = alice.req("POST", f"/calendars/{cal}/events", event_body(2))
    assert r.status_code == 201, r.text
    other = unwrap(r, "event")["id"]

    r = bob.req("GET", f"/calendars/{cal}/events/{invited}")
    assert r.status_code == 200, r.text
    assert unwrap(r, "event")["title"] == "Standup 1"
    r = bob.req("POST", f"/calendars/{cal}/events/{invited}/rsvp",
                {"response": "accepted"})
    assert r.status_code == 200, r.text
    r = alice.req("GET", f"/calendars/{cal}/events/{invited}")
    assert unwrap(r, "event")["participants"][me(bob)] == "accepted"

    assert bob.req("GET", f"/calendars/{cal}/events/{other}"
                   ).status_code == 404
    assert bob.req("POST", f"/calendars/{cal}/events/{other}/rsvp",
                   {"response": "accepted"}).status_code == 404
    assert bob.req("PATCH", f"/calendars/{cal}/events/{invited}",
                   {"title": "mine now"},
                   headers={"If-Match": '"2"'}).status_code in (403, 404)
    assert bob.req("GET", f"/calendars/{cal}/events?from=2026-12-01T00:00:00Z"
                   "&to=2026-12-02T00:00:00Z").status_code == 404
    r = alice.req("GET", f"/calendars/{cal}/events/{invited}")
    assert unwrap(r, "event")["title"] == "Standup 1"


def test_deleting_a_group_empties_its_calendar_for_good(stack):
    """DELETE /groups/{id} also deletes the group calendar's events (the
    members' and invitees' views lose them), and the id is never given to a
    new group, so nothing of the old calendar can resurface."""
    _, edge = stack
    alice, bob, gid = leader_other_and_group(edge)
    cal = f"g:{gid}"
    ids = []
    for i in range(3):
        r = alice.req("POST", f"/calendars/{cal}/events",
                      event_body(i, participants=[me(bob)]))
        assert r.status_code == 201, r.text
        ids.append(unwrap(r, "event")["id"])
    day = "from=2026-12-01T00:00:00Z&to=2026-12-02T00:00:00Z"
    r = bob.req("GET", "/invitations?" + day)
    assert r.status_code == 200 and all(i in r.text for i in ids), r.text

    r = alice.req("DELETE", f"/groups/{gid}")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["events_deleted"] == 3 and body["calendar_purged"] is True

    r = bob.req("GET", "/invitations?" + day)
    assert r.status_code == 200, r.text
    assert not any(i in r.text for i in ids), r.text
    for i in ids:
        r = bob.req("GET", f"/calendars/{cal}/events/{i}")
        assert r.status_code == 404, r.text
    # the id is spent: a group created with it is refused
    r = bob.req("POST", "/groups", {"id": gid, "name": "Squatter"})
    assert r.status_code == 409, r.text
    assert r.json()["error"]["code"] == "group_exists"


def test_a_group_deleted_while_its_events_shard_is_down_is_emptied_later(
        stack):
    """The group's calendar lives on events_am; with every replica of it
    down, DELETE /groups/{id} deletes the group (groups shard) and says the
    calendar is not purged.  Repeated once the shard is back, the DELETE
    answers 404, as for any unknown group, and empties the calendar: its
    invitee no longer sees the event."""
    agents, edge = stack
    alice, bob, gid = leader_other_and_group(edge)
    cal = f"g:{gid}"
    assert agents.SHARDS[0][0] == "events_am" and cal < "n"
    r = alice.req("POST", f"/calendars/{cal}/events",
                  event_body(participants=[me(bob)]))
    assert r.status_code == 201, r.text
    ev = unwrap(r, "event")["id"]
    agents.revive("events_am")
    for (shard, rid) in list(agents.procs):
        if shard == "events_am":
            agents.kill(shard, rid)
    try:
        r = alice.req("DELETE", f"/groups/{gid}", timeout=30)
        assert r.status_code == 200, r.text
        assert r.json()["events_deleted"] == 0
        assert r.json()["calendar_purged"] is False
    finally:
        agents.revive("events_am")
    agents.wait_for_leader("events_am")
    r = bob.req("GET", f"/calendars/{cal}/events/{ev}")
    assert r.status_code == 200, r.text      # left behind, for now

    # anyone repeating the DELETE learns only the 404 of a group that
    # never was
    r = bob.req("DELETE", f"/groups/{gid}")
    assert r.status_code == 404, r.text
    never = bob.req("DELETE", f"/groups/{'0' * 15}1")
    assert never.status_code == 404, never.text
    assert r.json() == json.loads(never.text.replace("0" * 15 + "1", gid))
    r = bob.req("GET", f"/calendars/{cal}/events/{ev}")
    assert r.status_code == 404, r.text
    r = bob.req("GET", "/invitations?from=2026-12-01T00:00:00Z"
                "&to=2026-12-02T00:00:00Z")
    assert r.status_code == 200 and ev not in r.text, r.text


def test_logins_hash_in_the_thread_pool_not_in_the_worker(stack,
                                                          make_edge):
    """Password hashing (argon2id, tens of milliseconds each) runs in
    nginx's thread pool: while 20 logins wait for the pool's single thread
    (--kdf-threads 1), the only worker keeps answering other requests.  A
    worker that hashed in its event loop would answer at most about one
    request between two hashes."""
    agents, _ = stack
    e = make_edge(agents.topology)
    e.generate("--kdf-threads", "1", "--auth-rate", "1000r/s",
               "--auth-burst", "1000")
    e.start()
    name = me(Client(e).register_login(uname("t")))
    n = 20
    done: list = []

    def login():
        try:
            r = Client(e).req("POST", "/auth/login",
                              {"username": name, "password": PASSWORD},
                              token=False, timeout=60)
            done.append(r.status_code)
        except requests.RequestException as exc:
            done.append(repr(exc))

    threads = [threading.Thread(target=login) for _ in range(n)]
    for t in threads:
        t.start()
    probe = Client(e)
    answered = 0
    deadline = time.monotonic() + 120
    while any(t.is_alive() for t in threads):
        assert time.monotonic() < deadline, "the logins never ended"
        r = probe.s.get(probe.base + "/health", timeout=10)
        assert r.status_code == 200, r.text
        answered += 1
    assert done == [200] * n, done
    print(f"{answered} requests answered during {n} logins")
    assert answered >= 3 * n, answered


def test_login_with_a_wrong_password_is_401(stack):
    _, edge = stack
    c = Client(edge).register_login(uname("b"))
    r = c.req("POST", "/auth/login", {"username": "nobody-here",
                                      "password": "wrong password"},
              token=False)
    assert r.status_code == 401, r.text
    assert r.json()["error"]["code"]


@pytest.mark.parametrize("auth", [
    "Bearer not.a.jwt",
    "Bearer eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0."
    "eyJzdWIiOiJhbGljZSJ9.",                       # alg none
    "Basic YWxpY2U6c2VjcmV0",
])
def test_bad_tokens_are_401(stack, auth):
    _, edge = stack
    c = Client(edge)
    r = c.req("GET", "/me", headers={"Authorization": auth}, token=False)
    assert r.status_code == 401, r.text
    assert r.json()["error"]["code"]


def test_tampered_token_is_401(stack):
    _, edge = stack
    c = Client(edge).register_login(uname("t"))
    head, payload, sig = c.token.split(".")
    sig = ("A" if sig[0] != "A" else "B") + sig[1:]
    r = c.req("GET", "/me", headers={
        "Authorization": f"Bearer {head}.{payload}.{sig}"}, token=False)
    assert r.status_code == 401


def test_body_over_the_limit_is_json_413(stack):
    _, edge = stack
    c = Client(edge)
    r = c.s.post(c.base + "/auth/login", data=b"x" * (300 * 1024),
                 headers={"Content-Type": "application/json"}, timeout=10)
    assert r.status_code == 413
    assert r.json()["error"]["code"] == "too_large"


# ---- routing: leader hints and failover -------------------------------------

def test_a_follower_first_request_follows_421(stack, make_edge):
    """A fresh nginx knows no leader: its first command goes to the replica
    the round-robin names.  Stale reads move that round-robin, so the test
    makes the first command land on a follower, which answers 421 with
    X-Raft-Leader; the edge follows it (and says so in its log) and the
    client sees a plain 201."""
    agents, edge = stack
    c = Client(edge).register_login(uname("f"))
    cal = me(c)
    leader = agents.wait_for_leader("events_am")

    fresh = make_edge(agents.topology)
    fresh.generate()
    fresh.start()
    fc = Client(fresh)
    fc.token = c.token
    for _ in range(leader):      # the next replica index is leader % 3
        r = fc.req("GET", f"/calendars/{cal}/events"
                   "?from=2026-12-01T00:00:00Z&to=2026-12-02T00:00:00Z"
                   "&consistency=stale")
        assert r.status_code == 200, r.text
    r = fc.req("POST", f"/calendars/{cal}/events", event_body(1))
    assert r.status_code == 201, r.text
    log = error_log(fresh)
    assert f'shard "events_am" is now led by replica {leader}' in log, log
    for i in range(3):
        r = fc.req("POST", f"/calendars/{cal}/events", event_body(i))
        assert r.status_code == 201, r.text
    assert agents.wait_for_leader("events_am") == leader


@pytest.mark.parametrize("keyed", [True, False],
                         ids=["idempotency-key", "no-key"])
def test_kill_leader_while_creating_events(stack, keyed):
    """kill -9 of events_am's leader while four clients create events: no
    request fails, none is applied twice, every acknowledged one is
    readable.  Without an Idempotency-Key the edge's own request id is
    what its retries keep."""
    agents, edge = stack
    c = Client(edge).register_login(uname("k"))   # 'k' -> events_am
    cal = me(c)
    assert cal < "n"
    agents.revive("events_am")   # the first run killed one
    leader = agents.wait_for_leader("events_am")

    with EventWriters(edge, c.token, cal, keyed=keyed) as w:
        w.wait_for_acks(10)
        agents.kill("events_am", leader)
        t0 = time.monotonic()
        new = agents.wait_for_leader("events_am", exclude=(leader,))
        # writes go on through the new leader, and some were in flight
        # when the old one died
        w.wait_for_acks(20)
    print(f"new leader {new} after {time.monotonic() - t0:.2f}s; "
          f"{len(w.acked)} events acked")
    w.check(c)
    assert "exited on signal" not in error_log(edge)


def test_a_frozen_leader_is_timed_out_and_the_write_lands_once(stack):
    """A leader that accepts connections but never answers (SIGSTOP: a
    hung process, a stalled disk) costs a write one upstream read timeout:
    the edge then tries the other replicas, which have elected a new
    leader, and the client gets its 201.  The frozen replica may have
    logged the command too; it is applied once all the same."""
    agents, edge = stack
    c = Client(edge).register_login(uname("h"))
    cal = me(c)
    assert cal < "n"
    agents.revive("events_am")   # a majority must remain without it
    leader = agents.wait_for_leader("events_am")
    # a connection to the leader in the edge's keep-alive pool
    r = c.req("POST", f"/calendars/{cal}/events", event_body(0))
    assert r.status_code == 201, r.text
    pid = agents.procs[("events_am", leader)].pid
    title = f"frozen {uuid.uuid4().hex[:8]}"
    log_from = len(error_log(edge))
    os.kill(pid, signal.SIGSTOP)
    try:
        t0 = time.monotonic()
        r = c.req("POST", f"/calendars/{cal}/events",
                  event_body(title=title),
                  headers={"Idempotency-Key": uuid.uuid4().hex}, timeout=20)
        took = time.monotonic() - t0
        assert r.status_code == 201, r.text
        ev = unwrap(r, "event")["id"]
        new = agents.wait_for_leader("events_am", exclude=(leader,))
        assert new != leader
        # the edge waited for the frozen leader (its read timeout), then
        # went on: slower, not failed
        assert "upstream timed out" in error_log(edge)[log_from:]
        print(f"answered in {took:.2f} s")
        r = c.req("GET", f"/calendars/{cal}/events/{ev}")
        assert r.status_code == 200, r.text
    finally:
        os.kill(pid, signal.SIGCONT)
    # back, it follows the new leader (what it held of the write was never
    # committed) and catches up; then the event exists once
    new = agents.wait_for_leader("events_am")
    target = agents.status("events_am", new)["commit_index"]
    deadline = time.monotonic() + 15
    while (agents.status("events_am", leader) or {}).get(
            "applied_index", 0) < target:
        assert time.monotonic() < deadline, "the frozen replica lags"
        time.sleep(0.05)
    titles = [e["title"] for e in list_all(c, cal)]
    assert titles.count(title) == 1, titles
    assert "exited on signal" not in error_log(edge)


def test_the_workers_share_what_they_learn_of_leaders(stack, make_edge):
    """The leader of a shard learned by one worker is known to the others
    (shared memory): after one write taught the edge, writes served by
    both workers make no second "is now led by" notice, which a worker
    learning on its own would log."""
    agents, _ = stack
    agents.revive("events_am")
    agents.wait_for_leader("events_am")
    e = make_edge(agents.topology)
    e.generate("--workers", "2")
    e.start()
    c = Client(e).register_login(uname("e"))
    cal = me(c)
    assert cal < "n"                # events_am
    r = c.req("POST", f"/calendars/{cal}/events", event_body(0))
    assert r.status_code == 201, r.text
    assert error_log(e).count('shard "events_am" is now led by') == 1

    log = e.root / "logs" / "access.log"
    pids: set[str] = set()
    for rnd in range(5):            # until both workers served writes
        agents_seen = [f"w{rnd}-{i}-{uuid.uuid4().hex[:6]}"
                       for i in range(16)]

        statuses: list = []

        def write(ua):
            cl = Client(e)          # a connection of its own
            cl.token = c.token
            try:
                rr = cl.req("POST", f"/calendars/{cal}/events",
                            event_body(1), headers={"User-Agent": ua})
                statuses.append(rr.status_code)
            except requests.RequestException as exc:
                statuses.append(repr(exc))

        threads = [threading.Thread(target=write, args=(ua,))
                   for ua in agents_seen]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert statuses == [201] * len(agents_seen), statuses
        deadline = time.monotonic() + 10   # the log is flushed each second
        while time.monotonic() < deadline:
            lines = [ln for ln in log.read_text().splitlines()
                     if any(f'"{ua}"' in ln for ua in agents_seen)]
            if len(lines) == len(agents_seen):
                break
            time.sleep(0.2)
        assert len(lines) == len(agents_seen), lines
        pids |= {ln.rsplit(" ", 1)[1] for ln in lines}
        if len(pids) == 2:
            break
    assert len(pids) == 2, f"one worker served every write: {pids}"
    assert error_log(e).count('shard "events_am" is now led by') == 1


# ---- notifications ----------------------------------------------------------

# headers of the writer's request that nchan reads in every request it
# serves, publications included: they must not reach the publication
ODD_WRITER_HEADERS = {"If-Modified-Since": "Sat, 29 Oct 1994 19:43:31 GMT",
                      "Last-Event-ID": "1:[0,1]",
                      "X-EventSource-Event": "x" * 4000}


@needs_ws
@pytest.mark.parametrize("prefix,headers", [("b", None), (".b", None),
                                            ("b", ODD_WRITER_HEADERS)],
                         ids=["plain", "dot-name", "odd-writer-headers"])
def test_invitee_receives_invitation_created_over_wss(stack, prefix,
                                                      headers):
    """Also for a name that starts with a dot, which the static files'
    "no dot files" rule must not take for one on the way to nchan; and
    whatever headers the writer sent (nchan refused the publication of a
    write sent with If-Modified-Since, and stored X-EventSource-Event with
    every message)."""
    _, edge = stack
    alice = Client(edge).register_login(uname("a"))
    bob = Client(edge).register_login(uname(prefix))
    bob_name = me(bob)
    cal = me(alice)

    origin = f"https://localhost:{edge.https_port}"
    ws = ws_connect(edge, f"access_token={bob.token}", origin=origin)
    try:
        time.sleep(0.2)
        r = alice.req("POST", f"/calendars/{cal}/events",
                      event_body(participants=[bob_name]), headers=headers)
        assert r.status_code == 201, r.text
        ev = unwrap(r, "event")["id"]
        deadline = time.monotonic() + 5
        seen = []
        ws.settimeout(5)
        while time.monotonic() < deadline:
            msg = json.loads(ws.recv())
            seen.append(msg)
            if msg.get("type") == "invitation.created":
                assert ev in json.dumps(msg)
                break
        else:
            pytest.fail(f"no invitation.created; got {seen}")
    finally:
        ws.close()


@needs_ws
def test_an_invitation_reaches_its_invitee_when_the_writer_hangs_up(stack):
    """A writer who closes its connection before the answer: the write
    commits, and its notifications still go out.  nchan refuses a request
    whose connection has seen its client's close, and publications share
    the writer's connection: the invitee heard nothing before."""
    _, edge = stack
    alice = Client(edge).register_login(uname("a"))
    bob = Client(edge).register_login(uname("b"))
    cal = me(alice)
    title = f"hung up {uuid.uuid4().hex[:8]}"
    body = json.dumps(event_body(title=title, participants=[me(bob)]))
    ws = ws_connect(edge, f"access_token={bob.token}")
    try:
        time.sleep(0.2)
        send_and_hang_up(edge, "POST", f"/calendars/{cal}/events",
                         alice.token, body)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if any(e["title"] == title for e in list_all(alice, cal)):
                break
            time.sleep(0.1)
        else:
            pytest.fail("the write did not commit")
        ws.settimeout(5)
        msg = json.loads(ws.recv())
        assert msg["type"] == "invitation.created", msg
    finally:
        ws.close()


@needs_ws
def test_members_hear_of_a_group_rename_and_deletion_on_their_channel(stack):
    """A client listens to its own channel always (a group's only while it
    shows that group): renaming and deleting a group reach every member
    there."""
    _, edge = stack
    alice, bob, gid = leader_other_and_group(edge)
    r = alice.req("POST", f"/groups/{gid}/members", {"user": me(bob)})
    assert r.status_code == 201, r.text

    origin = f"https://localhost:{edge.https_port}"
    ws = ws_connect(edge, f"access_token={bob.token}", origin=origin)
    try:
        time.sleep(0.2)
        assert alice.req("PATCH", f"/groups/{gid}",
                         {"name": "Chorus"}).status_code == 200
        assert alice.req("DELETE", f"/groups/{gid}").status_code == 200
        wanted = ["group.updated", "group.deleted"]
        seen = []
        deadline = time.monotonic() + 5
        while wanted and time.monotonic() < deadline:
            msg = json.loads(ws.recv())
            seen.append(msg.get("type"))
            if msg.get("type") == wanted[0] and msg.get("id") == gid:
                wanted.pop(0)
        assert not wanted, f"missing {wanted}; got {seen}"
    finally:
        ws.close()


@needs_ws
def test_subscribing_to_another_users_channel_is_403(stack):
    _, edge = stack
    alice = Client(edge).register_login(uname("a"))
    bob_name = uname("b")
    assert ws_status(edge, f"access_token={alice.token}"
                     f"&channel=user/{bob_name}") == 403


@needs_ws
def test_subscriber_without_a_valid_token_is_401(stack):
    _, edge = stack
    assert ws_status(edge, "access_token=x.y.z") == 401
    assert ws_status(edge, "") == 401
    assert ws_status(edge, "access_token=x.y.z", origin=None) == 401


@needs_ws
def test_foreign_origin_is_refused(stack):
    _, edge = stack
    alice = Client(edge).register_login(uname("a"))
    assert ws_status(edge, f"access_token={alice.token}",
                     origin="https://evil.example") == 403


@needs_ws
@pytest.mark.parametrize("bad", ["1", "1:", ":1", "1:99999", "a:b",
                                 "1:[0,1]", "1:2:3", "-1:-1"])
def test_malformed_last_event_id_is_400_and_nginx_survives(stack, bad):
    _, edge = stack
    alice = Client(edge).register_login(uname("a"))
    st = ws_status(edge, f"access_token={alice.token}"
                   f"&last_event_id={requests.utils.quote(bad)}")
    assert st == 400
    # the worker is alive and well
    r = Client(edge).s.get(
        f"https://127.0.0.1:{edge.https_port}/api/v1/health", timeout=5)
    assert r.status_code == 200
    assert "exited on signal" not in error_log(edge)


@needs_ws
def test_well_formed_last_event_id_subscribes(stack):
    _, edge = stack
    alice = Client(edge).register_login(uname("a"))
    assert ws_status(edge, f"access_token={alice.token}"
                     "&last_event_id=0:0") == 101


def recv_messages(ws, n):
    """n ws+meta.nchan frames as (id, message), then nothing more within
    the socket's timeout."""
    out = [ws_meta_message(ws.recv()) for _ in range(n)]
    ws.settimeout(1)
    with pytest.raises(websocket.WebSocketTimeoutException):
        extra = ws.recv()
        pytest.fail(f"one message too many: {extra}")
    return out


@needs_ws
@pytest.mark.parametrize("workers", [1, 2])
def test_a_subscriber_resumes_from_its_last_message_id(stack, make_edge,
                                                       workers):
    """A client that reconnects with the id of the last message it got
    (last_event_id, or the Last-Event-ID header with Authorization: Bearer
    as API clients send) receives what it missed, in order, and nothing
    twice; without an id it starts at the next message.  With two workers
    too, where nchan answers the guard's question about the channel (and
    publishes) from its IPC handler when the other worker holds it."""
    agents, edge = stack
    if workers > 1:
        edge = make_edge(agents.topology)
        edge.generate("--workers", str(workers))
        edge.start()
    alice = Client(edge).register_login(uname("a"))
    bob = Client(edge).register_login(uname("b"))
    a, b = me(alice), me(bob)
    meta = ["ws+meta.nchan"]

    def invite(i):
        r = bob.req("POST", f"/calendars/{b}/events",
                    event_body(i, participants=[a]))
        assert r.status_code == 201, r.text
        return unwrap(r, "event")["id"]

    ws = ws_connect(edge, f"access_token={alice.token}", subprotocols=meta)
    sent = [invite(i) for i in range(3)]
    got = recv_messages(ws, 3)
    ws.close()
    assert [m["id"] for _, m in got] == sent
    assert {m["type"] for _, m in got} == {"invitation.created"}
    last = got[-1][0]

    missed = [invite(i) for i in range(3, 5)]
    ws = ws_connect(edge, f"access_token={alice.token}&last_event_id={last}",
                    subprotocols=meta)
    replay = recv_messages(ws, 2)
    ws.close()
    assert [m["id"] for _, m in replay] == missed
    ids = [i for i, _ in got + replay]
    assert len(set(ids)) == 5

    # the header way: the same two again from the same id
    ws = ws_connect(edge, "", subprotocols=meta, origin=None,
                    headers={"Authorization": f"Bearer {alice.token}",
                             "Last-Event-ID": last})
    assert [m["id"] for _, m in recv_messages(ws, 2)] == missed
    ws.close()

    def only_what_comes_next(query, i):
        ws = ws_connect(edge, f"access_token={alice.token}{query}",
                        subprotocols=meta)
        ws.settimeout(1)
        with pytest.raises(websocket.WebSocketTimeoutException):
            ws.recv()
        ws.settimeout(5)
        nxt = invite(i)
        assert recv_messages(ws, 1)[0][1]["id"] == nxt
        ws.close()

    # no id: only what comes next
    only_what_comes_next("", 5)
    # an id ahead of the channel's newest message (forged, or from a
    # clock gone wrong) is ignored too, instead of nothing until a
    # message with a later id
    only_what_comes_next(
        f"&last_event_id={int(last.split(':')[0]) + 86400}:0", 6)


@needs_ws
@pytest.mark.parametrize("bad", ["1:", "x", "1:2:3", "1:99999"])
def test_a_malformed_last_event_id_header_is_400(stack, bad):
    _, edge = stack
    alice = Client(edge).register_login(uname("a"))
    with pytest.raises(websocket.WebSocketBadStatusException) as e:
        ws_connect(edge, "", origin=None,
                   headers={"Authorization": f"Bearer {alice.token}",
                            "Last-Event-ID": bad})
    assert e.value.status_code == 400
    r = Client(edge).s.get(
        f"https://127.0.0.1:{edge.https_port}/api/v1/health", timeout=5)
    assert r.status_code == 200
    assert "exited on signal" not in error_log(edge)


def test_no_alert_and_no_worker_crash_in_the_error_log(stack):
    """Last of the file: nothing above made nginx log an alert (leaked
    resources, subrequest misuse) or lose a worker."""
    _, edge = stack
    log = error_log(edge)
    for bad in ("[alert]", "[crit]", "[emerg]", "exited on signal",
                "subrequests cycle", "too big subrequest response"):
        assert bad not in log, [l for l in log.splitlines() if bad in l][:5]



def test_pages_of_the_largest_events_fit_what_the_edge_reads(stack):
    """70 events with the longest description (8000 four-byte characters)
    are about 2.3 MB of JSON, more than the edge reads of one shard answer
    (subrequest_output_buffer_size 2m: a longer one makes nginx close the
    client's connection): the shards end a page before 1 MiB, so a list
    of up to 500 answers a first page with a cursor, paging sees every
    event, and the agenda's fan-out answers too."""
    _, edge = stack
    c = Client(edge).register_login(uname("big"))
    cal = me(c)
    headers = {"Authorization": f"Bearer {c.token}",
               "Content-Type": "application/json"}
    for i in range(70):
        body = json.dumps(event_body(i, description="\U0001F600" * 8000),
                          ensure_ascii=False).encode()
        assert len(body) < 65536  # the edge's body limit
        r = c.s.post(f"{c.base}/calendars/{cal}/events", data=body,
                     headers=headers, timeout=15)
        assert r.status_code == 201, r.text
    window = "from=2026-12-01T00:00:00Z&to=2026-12-02T00:00:00Z"
    r = c.req("GET", f"/calendars/{cal}/events?{window}&limit=500")
    assert r.status_code == 200, r.text
    assert 1 < len(r.json()["events"]) < 70 and r.json()["next_cursor"]
    assert len(r.content) < 1100 * 1024
    assert len(list_all(c, cal)) == 70
    r = c.req("GET", f"/agenda?{window}")
    assert r.status_code == 200, r.text[:300]
