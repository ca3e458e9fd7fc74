"""The read routes that gather from several shards, through nginx and real
agents, with data on both events shards: /agenda, /invitations and
/freebusy fan out to events_am and events_nz and merge; /users asks the
users shard; /audit merges every shard's hash-chained log (admins).

Usernames decide the shard of a personal calendar (the topology splits
events at "n"): the "a…"/"b…" users below live on events_am, the "z…"
user on events_nz, and each test checks that at the shard itself."""
from __future__ import annotations

import hashlib
import json
import uuid
from datetime import datetime

from edge_client import (Client, event_body, make_admin, me, shard_op, uname,
                         unwrap)

DAY = "from=2026-12-01T00:00:00Z&to=2026-12-02T00:00:00Z"


def at(hour, minutes=30):
    return (f"2026-12-01T{hour:02d}:00:00Z",
            f"2026-12-01T{hour:02d}:{minutes:02d}:00Z")


def create(client, cal, hour, **kw):
    start, end = at(hour)
    r = client.req("POST", f"/calendars/{cal}/events",
                   event_body(hour, start=start, end=end, **kw))
    assert r.status_code == 201, r.text
    return unwrap(r, "event")["id"]


def on_shard(agents, shard, cal, ev_id, actor) -> int:
    """The status of event.get asked of `shard` itself (421 wrong_shard
    when the calendar lives elsewhere)."""
    st, _ = shard_op(agents, shard, False, "event.get",
                     {"calendar": cal, "id": ev_id},
                     actor={"user": actor, "role": "user"})
    return st


def spread(stack):
    """alice ("a…", events_am) has her own events at 09:00 and 11:00; zoe
    ("z…", events_nz) invites her to 10:00 and 12:00; bob ("b…",
    events_am) invites her to 13:00, which she accepts."""
    agents, edge = stack
    alice = Client(edge).register_login(uname("a"))
    bob = Client(edge).register_login(uname("b"))
    zoe = Client(edge).register_login(uname("z"))
    a, b, z = me(alice), me(bob), me(zoe)
    w = {"agents": agents, "edge": edge, "alice": alice, "bob": bob,
         "zoe": zoe, "a": a, "b": b, "z": z}
    w["own"] = [create(alice, a, 9), create(alice, a, 11)]
    w["zoe_inv"] = [create(zoe, z, 10, participants=[a]),
                    create(zoe, z, 12, participants=[a])]
    w["bob_inv"] = create(bob, b, 13, participants=[a])
    r = alice.req("POST", f"/calendars/{b}/events/{w['bob_inv']}/rsvp",
                  {"response": "accepted"})
    assert r.status_code == 200, r.text
    # the data really is on both shards
    assert on_shard(agents, "events_nz", z, w["zoe_inv"][0], z) == 200
    assert on_shard(agents, "events_am", z, w["zoe_inv"][0], z) == 421
    assert on_shard(agents, "events_am", a, w["own"][0], a) == 200
    assert on_shard(agents, "events_nz", a, w["own"][0], a) == 421
    return w


def test_agenda_merges_both_events_shards_in_time_order(stack):
    w = spread(stack)
    r = w["alice"].req("GET", "/agenda?" + DAY)
    assert r.status_code == 200, r.text
    got = [(e["start"], e["calendar"], e["id"]) for e in r.json()["events"]]
    want = [(at(9)[0], w["a"], w["own"][0]),
            (at(10)[0], w["z"], w["zoe_inv"][0]),
            (at(11)[0], w["a"], w["own"][1]),
            (at(12)[0], w["z"], w["zoe_inv"][1]),
            (at(13)[0], w["b"], w["bob_inv"])]
    assert got == want, r.text
    assert r.json().get("truncated") in (False, None)
    # zoe's agenda has only her own two events (from events_nz)
    r = w["zoe"].req("GET", "/agenda?" + DAY)
    assert r.status_code == 200, r.text
    assert [e["id"] for e in r.json()["events"]] == w["zoe_inv"]


def test_invitations_by_status_across_both_events_shards(stack):
    w = spread(stack)
    alice = w["alice"]

    r = alice.req("GET", "/invitations?status=needs_action&" + DAY)
    assert r.status_code == 200, r.text
    inv = r.json()["invitations"]
    assert [e["id"] for e in inv] == w["zoe_inv"], r.text
    assert {e["response"] for e in inv} == {"needs_action"}

    r = alice.req("GET", "/invitations?status=accepted&" + DAY)
    assert r.status_code == 200, r.text
    assert [e["id"] for e in r.json()["invitations"]] == [w["bob_inv"]]

    r = alice.req("GET", "/invitations?" + DAY)
    assert r.status_code == 200, r.text
    assert [(e["id"], e["response"]) for e in r.json()["invitations"]] == [
        (w["zoe_inv"][0], "needs_action"), (w["zoe_inv"][1], "needs_action"),
        (w["bob_inv"], "accepted")], r.text

    # her own events are not invitations; zoe has none at all
    r = w["zoe"].req("GET", "/invitations?" + DAY)
    assert r.status_code == 200 and r.json()["invitations"] == [], r.text

    for bad, status, code in (
            ("status=maybe", 400, "invalid_response"),
            ("status=", 400, "invalid_response"),
            ("from=yesterday&to=2026-12-02T00:00:00Z", 400, "invalid_time"),
            ("from=2026-12-01T00:00:00Z", 400, "missing_parameter"),
            ("from=2026-12-02T00:00:00Z&to=2026-12-01T00:00:00Z", 422,
             "invalid_range")):
        r = alice.req("GET", f"/invitations?{bad}")
        assert r.status_code == status, (bad, r.text)
        assert r.json()["error"]["code"] == code, (bad, r.text)


def test_freebusy_gathers_both_shards_and_shows_times_only(stack):
    w = spread(stack)
    r = w["bob"].req("GET", f"/freebusy?users={w['a']},{w['z']}&" + DAY)
    assert r.status_code == 200, r.text
    busy = r.json()["users"]
    # alice: her own events and the invitation she accepted, not the two
    # she has not answered
    assert busy[w["a"]] == [{"start": at(9)[0], "end": at(9)[1]},
                            {"start": at(11)[0], "end": at(11)[1]},
                            {"start": at(13)[0], "end": at(13)[1]}], r.text
    assert busy[w["z"]] == [{"start": at(10)[0], "end": at(10)[1]},
                            {"start": at(12)[0], "end": at(12)[1]}], r.text
    assert "Standup" not in r.text  # times, never titles

    # she accepts one of zoe's: it becomes busy time, from the other shard
    r = w["alice"].req(
        "POST", f"/calendars/{w['z']}/events/{w['zoe_inv'][0]}/rsvp",
        {"response": "tentative"})
    assert r.status_code == 200, r.text
    r = w["bob"].req("GET", f"/freebusy?users={w['a']}&" + DAY)
    assert r.status_code == 200, r.text
    assert {"start": at(10)[0], "end": at(10)[1]} in r.json()["users"][w["a"]]

    too_many = ",".join(uname("u") for _ in range(21))
    for query, status, code in (
            (DAY, 400, "missing_parameter"),
            (f"users=&{DAY}", 400, "missing_parameter"),
            (f"users=a%20b&{DAY}", 400, "invalid_parameter"),
            (f"users={too_many}&{DAY}", 400, "too_many_users"),
            (f"users={w['a']}", 400, "missing_parameter"),
            (f"users={w['a']}&from=yesterday&to=2026-12-01T00:00:00Z", 400,
             "invalid_time"),
            (f"users={w['a']}&from=2026-12-02T00:00:00Z"
             "&to=2026-12-01T00:00:00Z", 422, "invalid_range"),
            (f"users={w['a']}&from=2026-01-01T00:00:00Z"
             "&to=2036-01-01T00:00:00Z", 413, "range_too_large")):
        r = w["bob"].req("GET", f"/freebusy?{query}")
        assert r.status_code == status, (query, r.text)
        assert r.json()["error"]["code"] == code, (query, r.text)


def test_freebusy_of_the_most_users_is_one_call_per_shard(stack,
                                                          make_edge):
    """20 users, on an edge without the auth cache (every request asks
    the users shard about the token): one call per events shard for all
    of them.  A call per user and shard was 40 calls plus the token's,
    past agenda_max_calls (40): 503 for every such request."""
    w = spread(stack)
    agents, _ = stack
    e = make_edge(agents.topology)
    e.generate("--auth-cache-ttl", "0")
    e.start()
    c = Client(e).register_login(uname("fb"))
    twenty = [w["a"], w["z"]] + [uname("u") for _ in range(18)]
    r = c.req("GET", f"/freebusy?users={','.join(twenty)}&" + DAY)
    assert r.status_code == 200, r.text
    busy = r.json()["users"]
    assert sorted(busy) == sorted(twenty)
    assert busy[w["z"]] == [{"start": at(10)[0], "end": at(10)[1]},
                            {"start": at(12)[0], "end": at(12)[1]}], r.text
    assert all(busy[u] == [] for u in twenty[2:])


def test_users_by_prefix_for_invitation_pickers(stack):
    _, edge = stack
    stem = "p" + uuid.uuid4().hex[:8]
    names = sorted(f"{stem}{s}" for s in ("c", "a", "b"))
    for n in names:
        Client(edge).register_login(n)
    caller = Client(edge).register_login(uname("q"))

    r = caller.req("GET", f"/users?prefix={stem}")
    assert r.status_code == 200, r.text
    body = r.json()
    assert [u["username"] for u in body["users"]] == names, r.text
    assert body["more"] is False
    # the public view: no e-mail, role or password hash
    for u in body["users"]:
        assert set(u) <= {"username", "display_name"}, u
    assert "example.org" not in r.text and "argon2" not in r.text

    r = caller.req("GET", f"/users?prefix={stem.upper()}&limit=2")
    assert r.status_code == 200, r.text
    assert [u["username"] for u in r.json()["users"]] == names[:2]
    assert r.json()["more"] is True

    r = caller.req("GET", "/users?prefix=" + uuid.uuid4().hex)
    assert r.status_code == 200 and r.json()["users"] == [], r.text

    for bad, code in (("", "missing_parameter"),
                      ("prefix=", "invalid_field"),
                      ("prefix=a%20b", "invalid_field"),
                      ("prefix=" + "a" * 33, "invalid_field"),
                      (f"prefix={stem}&limit=0", "invalid_field"),
                      (f"prefix={stem}&limit=x", "invalid_parameter")):
        r = caller.req("GET", f"/users?{bad}")
        assert r.status_code == 400, (bad, r.text)
        assert r.json()["error"]["code"] == code, (bad, r.text)
    r = Client(edge).req("GET", f"/users?prefix={stem}", token=False)
    assert r.status_code == 401, r.text


def record_hash(rec: dict) -> str:
    """API.md "Audit chain": SHA-256 of the record without `hash`, as
    compact JSON with sorted keys and raw UTF-8."""
    rest = {k: v for k, v in rec.items() if k not in ("hash", "shard")}
    text = json.dumps(rest, sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def test_audit_merges_every_shards_chain_for_admins(stack):
    agents, edge = stack
    w = spread(stack)
    r = w["alice"].req("POST", "/groups", {"name": "Audited"})
    assert r.status_code == 201, r.text
    gid = unwrap(r, "group")["id"]
    admin = make_admin(agents, edge)

    records, cursor = [], None
    for _ in range(100):
        q = "?limit=50" + (f"&cursor={cursor}" if cursor else "")
        r = admin.req("GET", "/audit" + q)
        assert r.status_code == 200, r.text
        body = r.json()
        records += body["records"]
        cursor = body.get("cursor")
        if not body.get("more"):
            break
    else:
        raise AssertionError("the audit never ended")

    by_shard: dict[str, list] = {}
    for rec in records:
        by_shard.setdefault(rec["shard"], []).append(rec)
    assert set(by_shard) == {"events_am", "events_nz", "groups", "users"}
    # every shard's chain is whole: seq 1, 2, …, each linked to the one
    # before and hashed as documented
    for shard, recs in by_shard.items():
        recs.sort(key=lambda x: x["seq"])
        assert [x["seq"] for x in recs] == list(range(1, len(recs) + 1))
        prev = "0" * 64
        for rec in recs:
            assert rec["prev_hash"] == prev, (shard, rec)
            assert rec["hash"] == record_hash(rec), (shard, rec)
            prev = rec["hash"]
    # merged by time: compared as instants, not as text ("…:39Z", a
    # whole second, comes before "…:39.029Z" though it sorts after it)
    times = [datetime.fromisoformat(x["time"].replace("Z", "+00:00"))
             for x in records]
    assert times == sorted(times)
    # the writes of this test are there, on the shard that made them
    objects = {(x["shard"], x["action"], x["object"], x["actor"],
                x["outcome"]) for x in records}
    assert ("events_nz", "event.create",
            f"event:{w['z']}/{w['zoe_inv'][0]}", w["z"], "ok") in objects
    assert ("groups", "group.create", f"group:{gid}", w["a"],
            "ok") in objects
    assert ("events_am", "event.rsvp",
            f"event:{w['b']}/{w['bob_inv']}", w["a"], "ok") in objects

    r = w["alice"].req("GET", "/audit")
    assert r.status_code == 403, r.text
    for bad, code in (("limit=0", "invalid_field"),
                      ("limit=501", "invalid_field"),
                      ("cursor=%%%", "invalid_cursor")):
        r = admin.req("GET", f"/audit?{bad}")
        assert r.status_code == 400, (bad, r.text)
        assert r.json()["error"]["code"] == code, (bad, r.text)


def test_agenda_pages_through_more_events_at_one_instant_than_a_page(
        stack):
    """More of alice's events at one instant than a page holds (a page
    ends before 1 MiB: long descriptions), her own and invitations on the
    other shard: following next_cursor gives every one exactly once and
    ends.  Asking again "from the last start" gave the same page for
    ever."""
    _, edge = stack
    alice = Client(edge).register_login(uname("a"))
    zoe = Client(edge).register_login(uname("z"))
    a, z = me(alice), me(zoe)
    long_text = "x" * 8000
    start, end = at(10)
    want = []
    for i in range(200):
        owner, cal, extra = (alice, a, {}) if i % 5 else \
            (zoe, z, {"participants": [a]})
        r = owner.req("POST", f"/calendars/{cal}/events",
                      event_body(i, start=start, end=end,
                                 description=long_text, **extra))
        assert r.status_code == 201, r.text
        want.append(unwrap(r, "event")["id"])
    seen, pages, q = [], 0, DAY
    while True:
        r = alice.req("GET", "/agenda?" + q)
        assert r.status_code == 200, r.text
        body = r.json()
        seen += [e["id"] for e in body["events"]]
        pages += 1
        assert pages <= 10, f"{pages} pages for {len(want)} events"
        if not body["truncated"]:
            assert body["next_cursor"] is None
            break
        q = "cursor=" + body["next_cursor"]
    assert pages >= 2, "every event fitted one page: nothing was paged"
    assert len(seen) == len(set(seen)), "an event came twice"
    assert sorted(seen) == sorted(want)
