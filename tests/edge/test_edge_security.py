"""Security of the public API end to end, through nginx and real agents:
bad input on every writing endpoint (the documented status, and nothing
changed: each case reads the state back), forged and revoked JWTs,
another user's ids on every id-bearing route, group roles, the group
notification channels and their membership check, the replicas' live
state on /cluster, and the rate limit of /auth/login.

Every table row is its own test; each case also has a control that must
succeed (a correctly forged token is accepted, the owner can do what the
intruder cannot), so that a broken harness cannot pass for a secure edge.
"""
from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import pytest

from edge_client import (PASSWORD, Client, b64url, b64url_json, claims_of,
                         error_log, event_body, forge, jwt_key, make_admin,
                         me, needs_ws, raw_exchange, send_and_hang_up,
                         shard_op, uname, unb64url, unwrap, websocket,
                         ws_connect, ws_status)

DAY = "from=2026-12-01T00:00:00Z&to=2026-12-02T00:00:00Z"


# ---- helpers ------------------------------------------------------------------

def error_code(r) -> str:
    assert r.headers.get("Content-Type", "").startswith("application/json"), \
        (r.status_code, r.headers, r.text)
    return r.json()["error"]["code"]


def raw(c: Client, method: str, path: str, data: bytes,
        ctype="application/json", headers=None):
    h = {"Authorization": f"Bearer {c.token}", "Content-Type": ctype}
    h.update(headers or {})
    return c.s.request(method, c.base + path, data=data, headers=h,
                       timeout=15)


def get_ok(c: Client, path: str) -> dict:
    r = c.req("GET", path)
    assert r.status_code == 200, (path, r.status_code, r.text)
    return r.json()


def users_leader(agents) -> tuple[str, int]:
    rid = agents.wait_for_leader("users")
    return "127.0.0.1", agents.http_ports[("users", rid)]


@pytest.fixture(scope="module")
def world(stack):
    """alice owns a calendar with one event (carol invited) and leads a
    group with member dave; bob is a stranger to all of it."""
    agents, edge = stack
    alice = Client(edge).register_login(uname("a"))
    bob = Client(edge).register_login(uname("b"))
    carol = Client(edge).register_login(uname("c"))
    dave = Client(edge).register_login(uname("d"))
    cal = me(alice)
    r = alice.req("POST", f"/calendars/{cal}/events",
                  event_body(1, participants=[me(carol)]))
    assert r.status_code == 201, r.text
    ev = unwrap(r, "event")
    r = alice.req("POST", "/groups", {"name": "Team"})
    assert r.status_code == 201, r.text
    gid = unwrap(r, "group")["id"]
    r = alice.req("POST", f"/groups/{gid}/members", {"user": me(dave)})
    assert r.status_code == 201, r.text
    return {"agents": agents, "edge": edge, "alice": alice, "bob": bob,
            "carol": carol, "dave": dave, "cal": cal, "ev": ev["id"],
            "gid": gid}


def snapshot(w) -> dict:
    """Everything the refused requests below could have changed, read
    back as alice (the owner) sees it."""
    a = w["alice"]
    ev = get_ok(a, f"/calendars/{w['cal']}/events/{w['ev']}")
    return {
        "me": get_ok(a, "/me"),
        "events": get_ok(a, f"/calendars/{w['cal']}/events?{DAY}"),
        "event": ev,
        "group": get_ok(a, f"/groups/{w['gid']}"),
        "groups": get_ok(a, "/groups"),
        "bob": get_ok(w["bob"], "/me"),
        "bob_groups": get_ok(w["bob"], "/groups"),
        "bob_events": get_ok(w["bob"],
                             f"/calendars/{me(w['bob'])}/events?{DAY}"),
    }


def etag(w) -> str:
    r = w["alice"].req("GET", f"/calendars/{w['cal']}/events/{w['ev']}")
    assert r.status_code == 200, r.text
    return r.headers["ETag"]


# ---- bad input: documented status, nothing changed ----------------------------

EV_OK = event_body(7)
BIG = "x" * (70 * 1024)

# (id, method, path, body: dict | bytes, content type ("etag": JSON with
#  the event's current If-Match), extra headers, status, error code or
#  None[, who sends it: alice unless told])
BAD_INPUT = [
    # creating an event
    ("ev-title-int", "POST", "{events}", dict(EV_OK, title=5), None, None,
     400, None),
    ("ev-title-null", "POST", "{events}", dict(EV_OK, title=None), None,
     None, 400, None),
    ("ev-missing-start", "POST", "{events}",
     {k: v for k, v in EV_OK.items() if k != "start"}, None, None, 400,
     None),
    ("ev-missing-all", "POST", "{events}", {}, None, None, 400, None),
    ("ev-unknown-field", "POST", "{events}", dict(EV_OK, color="red"), None,
     None, 400, "unknown_field"),
    ("ev-owner-field", "POST", "{events}", dict(EV_OK, owner="bob"), None,
     None, 400, "unknown_field"),
    ("ev-version-field", "POST", "{events}", dict(EV_OK, version=9), None,
     None, 400, "unknown_field"),
    ("ev-title-too-long", "POST", "{events}", dict(EV_OK, title="t" * 5000),
     None, None, 413, "too_long"),
    ("ev-bad-month", "POST", "{events}",
     dict(EV_OK, start="2026-13-01T09:00:00Z"), None, None, 400,
     "invalid_time"),
    ("ev-feb-30", "POST", "{events}",
     dict(EV_OK, start="2026-02-30T09:00:00Z",
          end="2026-02-30T10:00:00Z"), None, None, 400, "invalid_time"),
    ("ev-words-date", "POST", "{events}", dict(EV_OK, start="tomorrow"),
     None, None, 400, "invalid_time"),
    ("ev-start-int", "POST", "{events}", dict(EV_OK, start=1795000000),
     None, None, 400, None),
    ("ev-end-equals-start", "POST", "{events}",
     dict(EV_OK, end=EV_OK["start"]), None, None, 422, "end_before_start"),
    ("ev-end-before-start", "POST", "{events}",
     dict(EV_OK, end="2026-12-01T08:00:00Z"), None, None, 422,
     "end_before_start"),
    ("ev-bad-tz", "POST", "{events}", dict(EV_OK, time_zone="Mars/Olympus"),
     None, None, 400, "invalid_time_zone"),
    ("ev-tz-path", "POST", "{events}",
     dict(EV_OK, time_zone="../../etc/passwd"), None, None, 400,
     "invalid_time_zone"),
    ("ev-tz-int", "POST", "{events}", dict(EV_OK, time_zone=1), None, None,
     400, None),
    ("ev-all-day-str", "POST", "{events}", dict(EV_OK, all_day="yes"), None,
     None, 400, None),
    ("ev-participants-str", "POST", "{events}",
     dict(EV_OK, participants="bob"), None, None, 400, None),
    ("ev-visibility", "POST", "{events}", dict(EV_OK, visibility="secret"),
     None, None, 400, None),
    ("ev-bad-utf8", "POST", "{events}",
     b'{"title":"caf\xc3","start":"2026-12-01T09:00:00Z",'
     b'"end":"2026-12-01T10:00:00Z","time_zone":"UTC"}', None, None, 400,
     "invalid_utf8"),
    ("ev-overlong-utf8", "POST", "{events}",
     b'{"title":"\xc0\xaf","start":"2026-12-01T09:00:00Z",'
     b'"end":"2026-12-01T10:00:00Z","time_zone":"UTC"}', None, None, 400,
     "invalid_utf8"),
    ("ev-not-json", "POST", "{events}", b"{title: standup}", None, None, 400,
     "bad_json"),
    ("ev-array", "POST", "{events}", b"[1,2]", None, None, 400, None),
    ("ev-duplicate-key", "POST", "{events}",
     b'{"title":"a","title":"b","start":"2026-12-01T09:00:00Z",'
     b'"end":"2026-12-01T10:00:00Z","time_zone":"UTC"}', None, None, 400,
     "bad_json"),
    ("ev-text-plain", "POST", "{events}", json.dumps(EV_OK).encode(),
     "text/plain", None, 415, None),
    ("ev-oversize", "POST", "{events}", dict(EV_OK, description=BIG), None,
     None, 413, None),
    ("ev-bad-idem-key", "POST", "{events}", EV_OK, None,
     {"Idempotency-Key": "no spaces allowed"}, 400, "bad_idempotency_key"),
    # changing the event
    ("put-no-if-match", "PUT", "{event}", EV_OK, None, None, 428, None),
    ("patch-no-if-match", "PATCH", "{event}", {"title": "x"}, None, None,
     428, None),
    ("patch-stale", "PATCH", "{event}", {"title": "x"}, None,
     {"If-Match": '"999"'}, 412, None),
    ("patch-weak-tag", "PATCH", "{event}", {"title": "x"}, None,
     {"If-Match": 'W/"1"'}, 400, "invalid_if_match"),
    ("patch-star", "PATCH", "{event}", {"title": "x"}, None,
     {"If-Match": "*"}, 400, "invalid_if_match"),
    ("patch-unknown", "PATCH", "{event}", {"id": "x"}, "etag", None, 400,
     "unknown_field"),
    ("patch-title-int", "PATCH", "{event}", {"title": 1}, "etag", None, 400,
     None),
    ("patch-end-before", "PATCH", "{event}",
     {"end": "2026-12-01T08:00:00Z"}, "etag", None, 422,
     "end_before_start"),
    ("patch-bad-tz", "PATCH", "{event}", {"time_zone": "Europe/Atlantis"},
     "etag", None, 400, "invalid_time_zone"),
    ("patch-bad-date", "PATCH", "{event}",
     {"start": "2026-12-01T25:00:00Z"}, "etag", None, 400, "invalid_time"),
    ("patch-bad-utf8", "PATCH", "{event}", b'{"title":"\xff\xfe"}', "etag",
     None, 400, "invalid_utf8"),
    ("put-missing-fields", "PUT", "{event}", {"title": "only"}, "etag",
     None, 400, None),
    ("delete-stale", "DELETE", "{event}", None, None, {"If-Match": '"999"'},
     412, None),
    ("rsvp-bad-value", "POST", "{event}/rsvp", {"response": "maybe"}, None,
     None, 400, None, "carol"),
    ("rsvp-int", "POST", "{event}/rsvp", {"response": 1}, None, None, 400,
     None, "carol"),
    ("rsvp-unknown", "POST", "{event}/rsvp",
     {"response": "accepted", "user": "{bob}"}, None, None, 400,
     "unknown_field", "carol"),
    ("rsvp-missing", "POST", "{event}/rsvp", {}, None, None, 400, None,
     "carol"),
    ("rsvp-bad-utf8", "POST", "{event}/rsvp", b'{"response":"\xe2\x82"}',
     None, None, 400, "invalid_utf8", "carol"),
    # the account
    ("me-role", "PATCH", "/me", {"role": "admin"}, None, None, 400,
     "unknown_field"),
    ("me-token-version", "PATCH", "/me", {"token_version": 99}, None, None,
     400, "unknown_field"),
    ("me-name-int", "PATCH", "/me", {"display_name": 5}, None, None, 400,
     None),
    ("me-name-blank", "PATCH", "/me", {"display_name": "   "}, None, None,
     400, None),
    ("me-name-newline", "PATCH", "/me", {"display_name": "a\nb"}, None,
     None, 400, None),
    ("me-name-long", "PATCH", "/me", {"display_name": "n" * 500}, None,
     None, 400, "invalid_field"),
    ("me-bad-email", "PATCH", "/me", {"email": "not an email"}, None, None,
     400, None),
    ("me-bad-utf8", "PATCH", "/me", b'{"display_name":"\xed\xa0\x80"}',
     None, None, 400, "invalid_utf8"),
    ("me-empty", "PATCH", "/me", {}, None, None, 400, None),
    ("pw-missing-current", "POST", "/me/password",
     {"new_password": "another long password"}, None, None, 400, None),
    ("pw-too-short", "POST", "/me/password",
     {"current_password": PASSWORD, "new_password": "short"}, None, None,
     400, None),
    ("pw-int", "POST", "/me/password",
     {"current_password": PASSWORD, "new_password": 12345678}, None, None,
     400, None),
    ("pw-unknown", "POST", "/me/password",
     {"current_password": PASSWORD, "new_password": "another long one",
      "user": "bob"}, None, None, 400, "unknown_field"),
    # groups
    ("group-name-int", "POST", "/groups", {"name": 5}, None, None, 400,
     None),
    ("group-unknown", "POST", "/groups", {"name": "x", "members": []},
     None, None, 400, "unknown_field"),
    ("group-missing-name", "POST", "/groups", {"description": "d"}, None,
     None, 400, None),
    ("group-bad-utf8", "POST", "/groups", b'{"name":"\x80"}', None, None,
     400, "invalid_utf8"),
    ("group-patch-int", "PATCH", "{group}", {"name": 1}, None, None, 400,
     None),
    ("group-patch-unknown", "PATCH", "{group}", {"leader": "bob"}, None,
     None, 400, "unknown_field"),
    ("group-patch-stale", "PATCH", "{group}", {"name": "n"}, None,
     {"If-Match": '"999"'}, 412, None),
    ("member-user-int", "POST", "{group}/members", {"user": 5}, None, None,
     400, None),
    ("member-no-user", "POST", "{group}/members", {"user": "nobody0000000"},
     None, None, 404, None),
    ("member-bad-role", "POST", "{group}/members",
     {"user": "{bob}", "role": "king"}, None, None, 400, None),
    ("member-unknown", "POST", "{group}/members",
     {"user": "{bob}", "admin": True}, None, None, 400, "unknown_field"),
    ("member-role-bad", "PATCH", "{group}/members/{dave}", {"role": "owner"},
     None, None, 400, None),
]


def fill(w, s: str) -> str:
    return (s.replace("{events}", f"/calendars/{w['cal']}/events")
            .replace("{event}", f"/calendars/{w['cal']}/events/{w['ev']}")
            .replace("{group}", f"/groups/{w['gid']}")
            .replace("{bob}", me(w["bob"]))
            .replace("{dave}", me(w["dave"])))


@pytest.mark.parametrize("case", BAD_INPUT, ids=[c[0] for c in BAD_INPUT])
def test_bad_input_is_refused_and_changes_nothing(world, case):
    _, method, path, body, ctype, headers, status, code = case[:8]
    w = world
    who = w[case[8]] if len(case) > 8 else w["alice"]
    before = snapshot(w)
    h = dict(headers or {})
    if ctype == "etag":
        h["If-Match"] = etag(w)
        ctype = None
    if isinstance(body, dict):
        body = json.dumps(body).replace("{bob}", me(w["bob"])).encode()
    r = raw(who, method, fill(w, path), body or b"",
            ctype or "application/json", h)
    assert r.status_code == status, r.text
    got = error_code(r)
    if code is not None:
        assert got == code, r.text
    assert snapshot(w) == before


@pytest.mark.parametrize("query,status,code", [
    ("from=yesterday&to=2026-12-02T00:00:00Z", 400, None),
    ("from=2026-12-02T00:00:00Z&to=2026-12-01T00:00:00Z", 422,
     "invalid_range"),
    ("from=2026-01-01T00:00:00Z&to=2028-01-01T00:00:00Z", 413,
     "range_too_large"),
    ("from=2026-12-01T00:00:00Z&to=2026-12-02T00:00:00Z&color=red", 400,
     "unknown_parameter"),
    ("from=2026-12-01T00:00:00Z&to=2026-12-02T00:00:00Z&consistency=x", 400,
     "bad_consistency"),
])
@pytest.mark.parametrize("path", ["/agenda", "/calendars/{cal}/events"])
def test_bad_query_parameters(world, path, query, status, code):
    r = world["alice"].req("GET", path.replace("{cal}", world["cal"])
                           + "?" + query)
    assert r.status_code == status, r.text
    if code is not None:
        assert error_code(r) == code


@pytest.mark.parametrize("query", [
    "since=not-a-token", "since=eyJ1c2VycyI6MX0", "target=user:",
    "target=nothing:x", "limit=abc", "limit=1.5", "since={token}&limit=-1",
    "since={token}&limit=x"])
def test_bad_changes_queries_are_400(world, query):
    a = world["alice"]
    if "{token}" in query:
        query = query.replace("{token}", get_ok(a, "/changes")["sync_token"])
    r = a.req("GET", "/changes?" + query)
    assert r.status_code == 400, r.text
    error_code(r)


@pytest.mark.parametrize("body,status", [
    ({"username": "Bad Name!", "password": PASSWORD, "display_name": "x",
      "email": "x@example.org"}, 400),
    ({"username": "shortpw", "password": "short", "display_name": "x",
      "email": "x@example.org"}, 400),
    ({"username": "withrole", "password": PASSWORD, "display_name": "x",
      "email": "x@example.org", "role": "admin"}, 400),
    ({"username": 5, "password": PASSWORD, "display_name": "x",
      "email": "x@example.org"}, 400),
    ({"username": "nomail", "password": PASSWORD}, 400),
])
def test_bad_registrations_create_nothing(stack, body, status):
    _, edge = stack
    c = Client(edge)
    if isinstance(body["username"], str) and body["username"] != "Bad Name!":
        body = dict(body, username=uname(body["username"][:4]))
    r = c.req("POST", "/auth/register", body, token=False)
    assert r.status_code == status, r.text
    error_code(r)
    if isinstance(body["username"], str):
        r = c.req("POST", "/auth/login", {"username": body["username"],
                                          "password": PASSWORD},
                  token=False)
        assert r.status_code == 401, r.text


def test_bad_logins_are_refused_and_issue_no_token(stack):
    """Login bodies are checked like every body: wrong types, missing or
    unknown fields, non-JSON, another media type — each a 4xx JSON error
    without a token; the control logs in."""
    _, edge = stack
    c = Client(edge).register_login(uname("l"))
    name = me(c)
    good = {"username": name, "password": PASSWORD}
    js = "application/json"
    cases = [
        (json.dumps({"username": 5, "password": PASSWORD}), js, 400),
        (json.dumps({"username": name, "password": ["x"]}), js, 400),
        (json.dumps({"username": name}), js, 400),
        (json.dumps({"password": PASSWORD}), js, 400),
        (json.dumps(dict(good, remember_me=True)), js, 400),
        (json.dumps([good]), js, 400),
        ('{"username": "' + name + '", "password": ', js, 400),
        (json.dumps({"username": name, "password": "\udc80"}), js, 400),
        (json.dumps(good), "text/plain", 415),
    ]
    for body, ctype, status in cases:
        r = raw(c, "POST", "/auth/login", body.encode(), ctype)
        assert r.status_code == status, (body, r.text)
        assert error_code(r)
        assert "access_token" not in r.text
    r = c.req("POST", "/auth/login", good, token=False)
    assert r.status_code == 200 and r.json()["access_token"], r.text


@pytest.mark.parametrize("what, status, code", [
    ("header", 400, "bad_request"),
    ("uri", 414, "uri_too_long"),
    ("body", 413, "too_large"),
])
def test_requests_nginx_refuses_early_answer_json(world, what, status, code):
    """Refusals that happen before any location (oversize header line or
    URI, a body over client_max_body_size) are JSON errors too, and change
    nothing."""
    c = world["alice"]
    before = snapshot(world)
    path = f"/calendars/{world['cal']}/events"
    headers = {}
    data = json.dumps(event_body(0)).encode()
    if what == "header":
        headers["X-Padding"] = "p" * 9000
    elif what == "uri":
        path += "?pad=" + "p" * 9000
    else:
        data = b'{"title":"' + b"x" * (300 * 1024) + b'"}'
    r = raw(c, "POST", path, data, headers=headers)
    assert r.status_code == status, r.text[:200]
    assert error_code(r) == code
    assert r.headers.get("Strict-Transport-Security")
    assert snapshot(world) == before


def test_registering_a_taken_name_is_409_and_keeps_the_account(world):
    w = world
    before = snapshot(w)
    r = Client(w["edge"]).req("POST", "/auth/register", {
        "username": me(w["alice"]), "password": "another password 1",
        "display_name": "Mallory", "email": "m@example.org"}, token=False)
    assert r.status_code == 409, r.text
    assert error_code(r) == "username_taken"
    assert snapshot(w) == before
    r = Client(w["edge"]).req("POST", "/auth/login", {
        "username": me(w["alice"]), "password": "another password 1"},
        token=False)
    assert r.status_code == 401


def test_the_controls_of_the_bad_input_table_succeed(world):
    """The same routes with good input work, so the refusals above are
    about the input (the table is able to fail)."""
    w = world
    a = w["alice"]
    r = a.req("POST", f"/calendars/{w['cal']}/events", EV_OK)
    assert r.status_code == 201, r.text
    new = unwrap(r, "event")
    path = f"/calendars/{w['cal']}/events/{new['id']}"
    r = a.req("PATCH", path, {"title": "renamed"},
              headers={"If-Match": r.headers["ETag"]})
    assert r.status_code == 200, r.text
    r = a.req("DELETE", path)
    assert r.status_code in (200, 204), r.text
    r = a.req("GET", f"/agenda?{DAY}")
    assert r.status_code == 200, r.text


# ---- JWT attacks ----------------------------------------------------------------

def attack_tokens(edge, good: str) -> dict[str, str]:
    key = jwt_key(edge)
    c = claims_of(good)
    now = int(time.time())
    hs = {"alg": "HS256", "typ": "JWT"}
    head, payload, sig = good.split(".")
    other = dict(c, sub="someoneelse")
    return {
        "alg-none": forge({"alg": "none", "typ": "JWT"}, c, None),
        "alg-None": forge({"alg": "None", "typ": "JWT"}, c, None),
        "alg-NONE": forge({"alg": "NONE", "typ": "JWT"}, c, None),
        "alg-none-with-sig": forge({"alg": "none"}, c, key),
        "alg-missing": forge({"typ": "JWT"}, c, key),
        "alg-HS512": forge({"alg": "HS512", "typ": "JWT"}, c, key,
                           hashlib.sha512),
        "alg-HS384": forge({"alg": "HS384", "typ": "JWT"}, c, key,
                           hashlib.sha384),
        "wrong-secret": forge(hs, c, b"not-the-secret-" * 4),
        "empty-secret": forge(hs, c, b""),
        "expired": forge(hs, dict(c, iat=now - 7200, nbf=now - 7200,
                                  exp=now - 3600), key),
        "not-yet-valid": forge(hs, dict(c, iat=now, nbf=now + 3600,
                                        exp=now + 7200), key),
        "issued-in-future": forge(hs, dict(c, iat=now + 3600, nbf=now,
                                           exp=now + 7200), key),
        "wrong-aud": forge(hs, dict(c, aud="someone-else"), key),
        "aud-list-without-ours": forge(hs, dict(c, aud=["x", "y"]), key),
        "wrong-iss": forge(hs, dict(c, iss="https://evil.example"), key),
        "no-exp": forge(hs, {k: v for k, v in c.items() if k != "exp"}, key),
        "no-jti": forge(hs, {k: v for k, v in c.items() if k != "jti"}, key),
        "no-sub": forge(hs, {k: v for k, v in c.items() if k != "sub"}, key),
        "exp-string": forge(hs, dict(c, exp=str(c["exp"])), key),
        "tampered-payload": head + "." + b64url_json(other) + "." + sig,
        "tampered-sig": head + "." + payload + "." +
                        ("A" if sig[0] != "A" else "B") + sig[1:],
        "no-sig": head + "." + payload + ".",
        "two-segments": head + "." + payload,
        "four-segments": good + ".AAAA",
        "empty-segments": "..",
        "not-base64": "!!!." + payload + "." + sig,
        "header-not-json": b64url(b"not json") + "." + payload + "." + sig,
        "payload-array": head + "." + b64url(b"[1,2]") + "." + sig,
        "huge": "a" * 5000 + "." + payload + "." + sig,
    }


ATTACKS = ["alg-none", "alg-None", "alg-NONE", "alg-none-with-sig",
           "alg-missing", "alg-HS512", "alg-HS384", "wrong-secret",
           "empty-secret", "expired", "not-yet-valid", "issued-in-future",
           "wrong-aud", "aud-list-without-ours", "wrong-iss", "no-exp", "no-jti",
           "no-sub", "exp-string", "tampered-payload", "tampered-sig",
           "no-sig", "two-segments", "four-segments", "empty-segments",
           "not-base64", "header-not-json", "payload-array", "huge"]


@pytest.fixture(scope="module")
def victim(stack):
    _, edge = stack
    return Client(edge).register_login(uname("v"))


def test_a_correctly_forged_token_is_accepted(stack, victim):
    """The control of the attack table: the test's own signing (the
    secret, the claims) is right, so each refusal below is about the one
    thing the attack changes."""
    _, edge = stack
    key = jwt_key(edge)
    c = claims_of(victim.token)
    now = int(time.time())
    tok = forge({"alg": "HS256", "typ": "JWT"},
                dict(c, iat=now - 5, nbf=now - 5, exp=now + 600,
                     jti=uuid.uuid4().hex), key)
    r = victim.req("GET", "/me", headers={"Authorization": f"Bearer {tok}"},
                   token=False)
    assert r.status_code == 200, r.text


@pytest.mark.parametrize("attack", ATTACKS)
def test_jwt_attacks_are_401(stack, victim, attack):
    _, edge = stack
    tok = attack_tokens(edge, victim.token)[attack]
    for method, path, body in (("GET", "/me", None),
                               ("PATCH", "/me", {"display_name": "pwned"}),
                               ("GET", f"/agenda?{DAY}", None)):
        r = victim.req(method, path, body,
                       headers={"Authorization": f"Bearer {tok}"},
                       token=False)
        assert r.status_code == 401, (attack, path, r.text)
        assert error_code(r)
        assert r.headers.get("WWW-Authenticate", "").startswith("Bearer")
    assert get_ok(victim, "/me")["user"]["display_name"] != "pwned"


# ---- an asymmetric key: ES256 pinned ----------------------------------------

def openssl(*args: str) -> bytes:
    return subprocess.run(["openssl", *args], check=True,
                          capture_output=True, timeout=30).stdout


def es256_sign(key: Path, data: bytes) -> bytes:
    """A JWS ES256 signature (r ‖ s, 32 bytes each) made by openssl, which
    writes the DER SEQUENCE { INTEGER r, INTEGER s }."""
    with tempfile.NamedTemporaryFile() as f:
        f.write(data)
        f.flush()
        der = openssl("dgst", "-sha256", "-sign", str(key), f.name)
    assert der[0] == 0x30
    pos = 2 if der[1] < 0x80 else 2 + (der[1] & 0x7F)
    out = b""
    for _ in range(2):
        assert der[pos] == 0x02
        n = der[pos + 1]
        out += der[pos + 2:pos + 2 + n].lstrip(b"\0").rjust(32, b"\0")
        pos += 2 + n
    return out


def forge_es256(key: Path, header: dict, claims: dict) -> str:
    head = b64url_json(header) + "." + b64url_json(claims)
    return head + "." + b64url(es256_sign(key, head.encode()))


@pytest.fixture
def es256_edge(stack, make_edge):
    """An edge of the same agents whose tokens are ES256: (edge, private
    key, public key, another private key)."""
    agents, _ = stack
    d = Path(tempfile.mkdtemp(prefix="agenda-es256-"))
    try:
        priv, pub, other = d / "jwt.pem", d / "jwt.pub", d / "other.pem"
        for k in (priv, other):
            openssl("ecparam", "-name", "prime256v1", "-genkey", "-noout",
                    "-out", str(k))
            k.chmod(0o600)
        openssl("ec", "-in", str(priv), "-pubout", "-out", str(pub))
        pub.chmod(0o600)    # the module refuses key files others can read
        e = make_edge(agents.topology)
        e.generate("--jwt-alg", "ES256", "--jwt-key-file", str(priv),
                   "--jwt-public-key-file", str(pub))
        e.start()
        yield e, priv, pub, other
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_es256_tokens_and_the_algorithm_confusion_attacks(es256_edge):
    """With an asymmetric key the module signs and checks ES256 only: a
    token "HS256-signed" with the public key as the HMAC secret (the
    classic confusion), one signed by another key, alg none, or an ES256
    signature under another alg name are all 401; the control, a token the
    test signs with the right key, is accepted."""
    edge, priv, pub, other = es256_edge
    c = Client(edge).register_login(uname("e"))
    head = json.loads(unb64url(c.token.split(".")[0]))
    assert head["alg"] == "ES256", head
    assert c.req("GET", "/me").status_code == 200

    claims = claims_of(c.token)
    now = int(time.time())
    fresh = dict(claims, iat=now - 5, nbf=now - 5, exp=now + 600)

    def status(tok):
        r = c.req("GET", "/me", headers={"Authorization": f"Bearer {tok}"},
                  token=False)
        return r.status_code

    good = forge_es256(priv, {"alg": "ES256", "typ": "JWT"},
                       dict(fresh, jti=uuid.uuid4().hex))
    assert status(good) == 200

    pem = pub.read_bytes()
    hs = {"alg": "HS256", "typ": "JWT"}
    attacks = {
        "hs256-with-public-key": forge(hs, fresh, pem),
        "hs256-with-public-key-stripped": forge(hs, fresh, pem.strip()),
        "hs256-with-public-key-der": forge(
            hs, fresh, openssl("ec", "-pubin", "-in", str(pub), "-outform",
                               "DER")),
        "es256-other-key": forge_es256(other, {"alg": "ES256", "typ": "JWT"},
                                       dict(fresh, jti=uuid.uuid4().hex)),
        "alg-none": forge({"alg": "none", "typ": "JWT"}, fresh, None),
        "es256-sig-named-rs256": forge_es256(
            priv, {"alg": "RS256", "typ": "JWT"},
            dict(fresh, jti=uuid.uuid4().hex)),
        "es256-sig-named-hs256": forge_es256(
            priv, {"alg": "HS256", "typ": "JWT"},
            dict(fresh, jti=uuid.uuid4().hex)),
    }
    for name, tok in attacks.items():
        assert status(tok) == 401, name


@pytest.mark.parametrize("case", ["hs384-32-byte-secret", "es256-not-a-pair",
                                  "es256-rsa-key", "rs256-1024-bits"])
def test_nginx_refuses_jwt_keys_that_would_fail_every_login(make_edge,
                                                            tmp_path, case):
    """`nginx -t` signs and verifies a probe token with the configured
    keys, so keys that pass gen-nginx's file checks but could never sign
    or verify stop the configuration instead of answering every login
    500 and every token 401."""
    alg = case.split("-")[0].upper()
    priv, pub = tmp_path / "jwt.pem", tmp_path / "jwt.pub"
    if case == "hs384-32-byte-secret":   # HS384 wants 48 bytes or more
        priv.write_bytes(b"k" * 32)
    elif case == "es256-not-a-pair":
        other = tmp_path / "other.pem"
        for k in (priv, other):
            openssl("ecparam", "-name", "prime256v1", "-genkey", "-noout",
                    "-out", str(k))
        openssl("ec", "-in", str(other), "-pubout", "-out", str(pub))
    else:
        bits = "1024" if case == "rs256-1024-bits" else "2048"
        openssl("genrsa", "-out", str(priv), bits)
        openssl("rsa", "-in", str(priv), "-pubout", "-out", str(pub))
    args = ["--jwt-alg", alg, "--jwt-key-file", str(priv)]
    for k in (priv, pub):
        if k.exists():
            k.chmod(0o600)
    if pub.exists():
        args += ["--jwt-public-key-file", str(pub)]
    e = make_edge()
    e.generate(*args)
    out = e.check()
    assert out.returncode != 0, out.stderr
    assert "do not work with " + alg in out.stderr, out.stderr


def test_gen_nginx_refuses_jwt_keys_and_timeouts_nginx_would_not_take(
        make_edge, tmp_path):
    e = make_edge()
    key = tmp_path / "k.pem"
    key.write_text("unused")
    key.chmod(0o600)
    shared = tmp_path / "shared.pem"  # the module would refuse it
    shared.write_text("unused")
    shared.chmod(0o640)
    gone = str(tmp_path / "absent.pem")
    for args, flag in (
            (("--jwt-alg", "ES256"), "--jwt-public-key-file"),
            (("--jwt-alg", "RS256"), "--jwt-public-key-file"),
            (("--jwt-alg", "HS256", "--jwt-public-key-file", str(key)),
             "--jwt-public-key-file"),
            (("--jwt-alg", "ES256", "--jwt-public-key-file", str(key)),
             "--jwt-key-file"),
            (("--jwt-alg", "ES256", "--jwt-key-file", gone,
              "--jwt-public-key-file", str(key)), "--jwt-key-file"),
            (("--jwt-alg", "ES256", "--jwt-key-file", str(key),
              "--jwt-public-key-file", gone), "--jwt-public-key-file"),
            (("--jwt-alg", "ES256", "--jwt-key-file", str(shared),
              "--jwt-public-key-file", str(key)), "--jwt-key-file"),
            (("--jwt-alg", "RS256", "--jwt-key-file", str(key),
              "--jwt-public-key-file", str(shared)), "--jwt-public-key-file"),
            (("--client-timeout", "500ms"), "--client-timeout")):
        with pytest.raises(subprocess.CalledProcessError) as err:
            e.generate(*args)
        assert flag in err.value.stderr, args


@needs_ws
@pytest.mark.parametrize("attack", ["alg-none", "wrong-secret", "expired",
                                    "tampered-payload", "wrong-aud"])
def test_jwt_attacks_on_the_websocket_are_401(stack, victim, attack):
    _, edge = stack
    tok = attack_tokens(edge, victim.token)[attack]
    assert ws_status(edge, f"access_token={tok}") == 401


@pytest.mark.parametrize("auth", ["", "Bearer", "Bearer ", "Token abc",
                                  "Bearer a b c"])
def test_malformed_authorization_headers_are_401(stack, auth):
    _, edge = stack
    r = Client(edge).req("GET", "/me", headers={"Authorization": auth},
                         token=False)
    assert r.status_code == 401, r.text


@needs_ws
def test_the_error_log_never_holds_a_subscription_token(stack, make_edge):
    """Every error log line about a request quotes its request line, query
    string included: the guard blanks access_token there before anything
    is logged.  An edge logging at info, where each refused subscription
    is a line, sees refusals before and after the token check and a
    subscription that works with the blanked parameter."""
    agents, _ = stack
    e = make_edge(agents.topology)
    e.generate("--log-level", "info")
    e.start()
    c = Client(e).register_login(uname("elog"))
    other = Client(e).register_login(uname("elog"))
    bad = attack_tokens(e, other.token)["tampered-payload"]
    assert ws_status(e, f"access_token={c.token}",
                     origin="https://elsewhere.example") == 403
    assert ws_status(e, f"last_event_id=1:&access_token={c.token}") == 400
    assert ws_status(e, f"channel=user/{me(other)}&ACCESS_TOKEN={c.token}") \
        == 403
    assert ws_status(e, f"access_token={bad}") == 401
    assert ws_status(e, f"x=1&access_token={c.token}") == 101
    text = (e.root / "logs" / "error.log").read_text(errors="replace")
    assert "subscription refused" in text and "access_token=***" in text
    assert "ACCESS_TOKEN=***" in text
    for tok in (c.token, bad, c.token.split(".")[2], bad.split(".")[2]):
        assert tok not in text


@needs_ws
def test_the_access_log_never_holds_a_token(stack):
    """A subscription carries its token in the query string: the access
    log (buffered, flushed within a second) records the request without
    it, and no request puts a token there."""
    _, edge = stack
    c = Client(edge).register_login(uname("log"))
    log = edge.root / "logs" / "access.log"
    start = log.stat().st_size  # nginx opens (creates) it at start
    marker = uname("mark")
    assert ws_status(edge, f"access_token={c.token}&x={marker}") == 101
    # this test's last request, known by its User-Agent (the combined log
    # format has it): the log is read until it holds both
    agent = uname("agent")
    assert c.req("GET", "/me", headers={"User-Agent": agent}).status_code \
        == 200
    deadline = time.monotonic() + 10
    text = ""
    while time.monotonic() < deadline:
        with open(log, "rb") as f:
            f.seek(start)
            text = f.read().decode(errors="replace")
        # the subscription is logged when its connection ends, which may
        # come after this request in the same pass of the event loop
        if agent in text and "/api/v1/notifications" in text:
            break
        time.sleep(0.2)
    assert agent in text, text
    assert "/api/v1/notifications" in text, text
    whole = log.read_text(errors="replace")
    assert marker not in whole  # no query string on that location
    assert c.token not in whole
    assert c.token.split(".")[2] not in whole


def test_tokens_issued_before_a_password_change_are_401(stack):
    _, edge = stack
    c = Client(edge).register_login(uname("r"))
    old = c.token
    ws_ok = websocket is not None and \
        ws_status(edge, f"access_token={old}") == 101
    r = c.req("POST", "/me/password", {"current_password": PASSWORD,
                                       "new_password": "a new passphrase!"})
    assert r.status_code in (200, 204), r.text
    r = c.req("GET", "/me", headers={"Authorization": f"Bearer {old}"},
              token=False)
    assert r.status_code == 401, r.text
    if websocket is not None:
        assert ws_ok
        assert ws_status(edge, f"access_token={old}") == 401
    r = c.req("POST", "/auth/login", {"username": me_name(c, old),
                                      "password": PASSWORD}, token=False)
    assert r.status_code == 401
    r = c.req("POST", "/auth/login", {"username": me_name(c, old),
                                      "password": "a new passphrase!"},
              token=False)
    assert r.status_code == 200, r.text
    c.token = r.json()["access_token"]
    assert c.req("GET", "/me").status_code == 200
    if websocket is not None:
        assert ws_status(edge, f"access_token={c.token}") == 101


def me_name(c, token) -> str:
    return claims_of(token)["sub"]


# ---- authorization: bob on alice's data -----------------------------------------

# (id, method, path, body, needs If-Match): bob's attempts
INTRUSIONS = [
    ("list-events", "GET", "{events}?" + DAY, None, False),
    ("read-event", "GET", "{event}", None, False),
    ("create-in-calendar", "POST", "{events}", EV_OK, False),
    ("put-event", "PUT", "{event}", EV_OK, True),
    ("patch-event", "PATCH", "{event}", {"title": "owned"}, True),
    ("delete-event", "DELETE", "{event}", None, False),
    ("delete-event-if-match", "DELETE", "{event}", None, True),
    ("rsvp", "POST", "{event}/rsvp", {"response": "accepted"}, False),
    ("changes-of-user", "GET", "/changes?target=user:{alice}", None, False),
    ("changes-of-calendar", "GET", "/changes?target=calendar:{alice}", None,
     False),
    ("changes-of-group", "GET", "/changes?target=group:{gid}", None, False),
    ("read-group", "GET", "{group}", None, False),
    ("patch-group", "PATCH", "{group}", {"name": "owned"}, False),
    ("delete-group", "DELETE", "{group}", None, False),
    ("join-group", "POST", "{group}/members", {"user": "{bob}"}, False),
    ("promote-self", "PATCH", "{group}/members/{bob}", {"role": "leader"},
     False),
    ("remove-leader", "DELETE", "{group}/members/{alice}", None, False),
    ("remove-member", "DELETE", "{group}/members/{dave}", None, False),
    ("group-calendar", "GET", "/calendars/g:{gid}/events?" + DAY, None,
     False),
    ("group-calendar-create", "POST", "/calendars/g:{gid}/events", EV_OK,
     False),
    ("audit", "GET", "/audit", None, False),
    ("cluster", "GET", "/cluster", None, False),
]


def fill_all(w, s: str) -> str:
    return (fill(w, s).replace("{alice}", w["cal"])
            .replace("{gid}", w["gid"]))


@pytest.mark.parametrize("case", INTRUSIONS, ids=[c[0] for c in INTRUSIONS])
def test_another_user_cannot_touch_alices_data(world, case):
    _, method, path, body, if_match = case
    w = world
    before = snapshot(w)
    h = {"If-Match": etag(w)} if if_match else {}
    if body is not None:
        body = json.loads(fill_all(w, json.dumps(body)))
    r = w["bob"].req(method, fill_all(w, path), body, headers=h)
    assert r.status_code in (403, 404), r.text
    error_code(r)
    # nothing of alice's leaks into the refusal
    assert "Standup 1" not in r.text and "Team" not in r.text
    assert snapshot(w) == before


def test_the_owner_can_do_what_the_intruder_cannot(world):
    """Controls: the same reads succeed for alice (and the invitee)."""
    w = world
    for path in ("{events}?" + DAY, "{event}", "{group}",
                 "/changes?target=user:{alice}",
                 "/changes?target=calendar:{alice}",
                 "/changes?target=group:{gid}",
                 "/calendars/g:{gid}/events?" + DAY):
        get_ok(w["alice"], fill_all(w, path))
    get_ok(w["carol"], fill(w, "{event}"))
    get_ok(w["dave"], fill(w, "{group}"))


def test_an_invitee_answers_only_for_themself(world):
    w = world
    carol = w["carol"]
    before = snapshot(w)
    r = carol.req("PATCH", fill(w, "{event}"), {"title": "carol's now"},
                  headers={"If-Match": etag(w)})
    assert r.status_code in (403, 404), r.text
    r = carol.req("DELETE", fill(w, "{event}"))
    assert r.status_code in (403, 404), r.text
    assert snapshot(w) == before
    r = carol.req("POST", fill(w, "{event}/rsvp"), {"response": "tentative"})
    assert r.status_code == 200, r.text
    ev = get_ok(w["alice"], fill(w, "{event}"))
    parts = json.dumps(ev)
    assert "tentative" in parts
    # bob answering for the invitation he does not have changes nothing
    r = w["bob"].req("POST", fill(w, "{event}/rsvp"),
                     {"response": "declined"})
    assert r.status_code in (403, 404)
    assert "declined" not in json.dumps(get_ok(w["alice"], fill(w,
                                                                "{event}")))


def test_nobody_is_invited_under_a_name_no_account_holds(stack):
    """An invitation stored under a free name would show the event to
    whoever registers that name next; the write is refused (422) instead,
    on creation and when a change adds someone, and writes nothing."""
    _, edge = stack
    alice = Client(edge).register_login(uname("a"))
    cal = me(alice)
    ghost = uname("g")
    title = f"secret plans {uuid.uuid4().hex[:6]}"
    r = alice.req("POST", f"/calendars/{cal}/events",
                  event_body(title=title, participants=[ghost.upper()]))
    assert r.status_code == 422, r.text
    assert error_code(r) == "unknown_participant"
    assert f"'{ghost}'" in r.json()["error"]["message"]
    events = get_ok(alice, f"/calendars/{cal}/events?{DAY}")["events"]
    assert title not in json.dumps(events)

    # the control: a registered invitee, then a change adding a free name
    bob = Client(edge).register_login(uname("b"))
    r = alice.req("POST", f"/calendars/{cal}/events",
                  event_body(title=title, participants=[me(bob)]))
    assert r.status_code == 201, r.text
    ev = unwrap(r, "event")
    path = f"/calendars/{cal}/events/{ev['id']}"
    r = alice.req("PATCH", path, {"participants": [me(bob), ghost]},
                  headers={"If-Match": r.headers["ETag"]})
    assert r.status_code == 422, r.text
    assert error_code(r) == "unknown_participant"
    after = get_ok(alice, path)
    assert unwrap_event(after)["participants"] == {me(bob): "needs_action"}

    # whoever takes the name afterwards was never invited
    squatter = Client(edge).register_login(ghost)
    inv = get_ok(squatter, "/invitations?status=needs_action")
    assert title not in json.dumps(inv)
    r = squatter.req("GET", path)
    assert r.status_code == 404, r.text
    # and, now that the account exists, inviting it works
    r = alice.req("PATCH", path, {"participants": [me(bob), ghost]},
                  headers={"If-Match": f'"{unwrap_event(after)["version"]}"'})
    assert r.status_code == 200, r.text


def unwrap_event(body: dict) -> dict:
    return body["event"] if isinstance(body.get("event"), dict) else body


def test_guessed_ids_look_like_missing_ones(world):
    """A foreign event and a nonexistent one answer alike (no oracle)."""
    w = world
    bob = w["bob"]
    real = bob.req("GET", fill(w, "{event}"))
    fake = bob.req("GET", f"/calendars/{w['cal']}/events/"
                   + "0" * len(w["ev"]))
    assert real.status_code == fake.status_code, (real.text, fake.text)


# ---- groups: member versus leader -------------------------------------------------

def test_group_member_rights_versus_leader_rights(world):
    w = world
    alice, dave, bob = w["alice"], w["dave"], w["bob"]
    g = f"/groups/{w['gid']}"
    before = get_ok(alice, g)
    for method, path, body in (
            ("PATCH", g, {"name": "dave's"}),
            ("DELETE", g, None),
            ("POST", g + "/members", {"user": me(bob)}),
            ("PATCH", f"{g}/members/{me(dave)}", {"role": "leader"}),
            ("DELETE", f"{g}/members/{w['cal']}", None)):
        r = dave.req(method, path, body)
        assert r.status_code == 403, (method, path, r.text)
        assert error_code(r)
    assert get_ok(alice, g) == before
    # the leader may; a new member, then its removal
    r = alice.req("PATCH", g, {"description": "the team"})
    assert r.status_code == 200, r.text
    r = alice.req("POST", g + "/members", {"user": me(bob)})
    assert r.status_code == 201, r.text
    assert get_ok(bob, g)
    r = alice.req("DELETE", f"{g}/members/{me(bob)}")
    assert r.status_code == 200, r.text
    r = bob.req("GET", g)
    assert r.status_code == 404, r.text


def group_of_two(edge, name):
    """A new group (its leader, one member, its id)."""
    lead = Client(edge).register_login(uname("l"))
    mem = Client(edge).register_login(uname("m"))
    r = lead.req("POST", "/groups", {"name": name})
    assert r.status_code == 201, r.text
    gid = unwrap(r, "group")["id"]
    assert lead.req("POST", f"/groups/{gid}/members",
                    {"user": me(mem)}).status_code == 201
    return lead, mem, gid


def test_a_member_may_leave_but_the_last_leader_may_not(stack):
    _, edge = stack
    lead, mem, gid = group_of_two(edge, "Leavers")
    r = lead.req("DELETE", f"/groups/{gid}/members/{me(lead)}")
    assert r.status_code == 409, r.text
    r = mem.req("DELETE", f"/groups/{gid}/members/{me(mem)}")
    assert r.status_code == 200, r.text
    assert mem.req("GET", f"/groups/{gid}").status_code == 404


# ---- notifications: group channels ------------------------------------------------

def recv_until(ws, kind: str, timeout=5.0) -> dict:
    deadline = time.monotonic() + timeout
    seen = []
    while time.monotonic() < deadline:
        ws.settimeout(max(0.1, deadline - time.monotonic()))
        try:
            msg = json.loads(ws.recv())
        except websocket.WebSocketTimeoutException:
            break
        seen.append(msg)
        if msg.get("type") == kind:
            return msg
    pytest.fail(f"no {kind}; got {seen}")


@needs_ws
def test_a_group_member_receives_group_events(stack):
    _, edge = stack
    lead, mem, gid = group_of_two(edge, "Notified")
    new = Client(edge).register_login(uname("n"))
    ws = ws_connect(edge, f"access_token={mem.token}&channel=group/{gid}")
    try:
        time.sleep(0.2)
        r = lead.req("POST", f"/groups/{gid}/members", {"user": me(new)})
        assert r.status_code == 201, r.text
        msg = recv_until(ws, "group.member_added")
        assert msg["id"] == gid and msg.get("user") == me(new)
        r = lead.req("PATCH", f"/groups/{gid}", {"name": "Renamed"})
        assert r.status_code == 200, r.text
        assert recv_until(ws, "group.updated")["id"] == gid
    finally:
        ws.close()


def ws_closed(ws, timeout=5.0) -> bool:
    """Whether the server closes ws within timeout (reading past any
    message before the close)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ws.settimeout(max(0.1, deadline - time.monotonic()))
        try:
            opcode, _ = ws.recv_data(control_frame=True)
        except websocket.WebSocketTimeoutException:
            return False
        except websocket.WebSocketConnectionClosedException:
            return True
        if opcode == websocket.ABNF.OPCODE_CLOSE:
            return True
    return False


def change_password(c: Client) -> str:
    """c's password changed (from PASSWORD): the new access token."""
    r = c.req("POST", "/me/password",
              {"current_password": PASSWORD,
               "new_password": "another horse battery staple"})
    assert r.status_code == 200, r.text
    return r.json()["access_token"]


@needs_ws
def test_removed_members_and_revoked_tokens_lose_their_subscriptions(stack):
    """A member removed from a group is told, then every subscription to
    the group's channel is closed: subscribing again goes through the
    guard, which refuses the former member and lets the others back in.
    A password change does the same to the user's own channel: the tokens
    it revoked cannot subscribe again, the new one can."""
    _, edge = stack
    lead, mem, gid = group_of_two(edge, "Kicks")
    group = f"channel=group/{gid}"
    ws_mem = ws_connect(edge, f"access_token={mem.token}&{group}")
    ws_lead = ws_connect(edge, f"access_token={lead.token}&{group}")
    try:
        time.sleep(0.2)
        r = lead.req("DELETE", f"/groups/{gid}/members/{me(mem)}")
        assert r.status_code == 200, r.text
        assert recv_until(ws_mem, "group.member_removed")["user"] == me(mem)
        assert ws_closed(ws_mem)
        assert ws_closed(ws_lead)
    finally:
        ws_mem.close()
        ws_lead.close()
    assert ws_status(edge, f"access_token={mem.token}&{group}") == 403
    assert ws_status(edge, f"access_token={lead.token}&{group}") == 101

    ws_own = ws_connect(edge, f"access_token={mem.token}")
    try:
        time.sleep(0.2)
        fresh = change_password(mem)
        assert recv_until(ws_own, "user.password_changed")
        assert ws_closed(ws_own)
    finally:
        ws_own.close()
    assert ws_status(edge, f"access_token={mem.token}") == 401
    assert ws_status(edge, f"access_token={fresh}") == 101


@needs_ws
def test_a_password_change_ends_group_subscriptions_of_revoked_tokens(stack):
    """A group's channel stays open for its other members when one of them
    changes their password, but that member's subscription made with the
    revoked token ends soon after (the edge watches its auth cache), and
    the revoked token cannot subscribe again; the leader's stays open."""
    _, edge = stack
    lead, mem, gid = group_of_two(edge, "Stolen")
    group = f"channel=group/{gid}"
    ws_mem = ws_connect(edge, f"access_token={mem.token}&{group}")
    ws_lead = ws_connect(edge, f"access_token={lead.token}&{group}")
    try:
        time.sleep(0.2)
        fresh = change_password(mem)
        assert ws_closed(ws_mem, timeout=5)
        assert not ws_closed(ws_lead, timeout=1.5)
        r = lead.req("PATCH", f"/groups/{gid}", {"name": "Still heard"})
        assert r.status_code == 200, r.text
        assert recv_until(ws_lead, "group.updated")["id"] == gid
    finally:
        ws_mem.close()
        ws_lead.close()
    assert ws_status(edge, f"access_token={mem.token}&{group}") == 401
    assert ws_status(edge, f"access_token={fresh}&{group}") == 101


@needs_ws
def test_a_subscription_ends_with_its_token(stack, make_edge):
    """A subscription lives as long as the token it was made with (plus
    the leeway, none here): tokens of 3 s, a subscription that gets its
    messages meanwhile, closed once the token has expired; the same
    token cannot subscribe again, a fresh one can."""
    agents, _ = stack
    e = make_edge(agents.topology)
    e.generate("--jwt-ttl", "3s", "--jwt-leeway", "0s")
    e.start()
    c = Client(e).register_login(uname("ttl"))
    ws = ws_connect(e, f"access_token={c.token}")
    try:
        r = c.req("POST", f"/calendars/{me(c)}/events", event_body(1))
        assert r.status_code == 201, r.text
        assert recv_until(ws, "event.created")  # open until then
        assert ws_closed(ws, timeout=10)
    finally:
        ws.close()
    assert ws_status(e, f"access_token={c.token}") == 401
    fresh = Client(e).register_login(uname("ttl"))
    assert ws_status(e, f"access_token={fresh.token}") == 101
    log = error_log(e)
    assert "[alert]" not in log and "exited on signal" not in log, log


@needs_ws
def test_group_channel_refusals(world):
    w = world
    edge, gid = w["edge"], w["gid"]
    # a stranger, a malformed id, a path trick, a nonexistent group
    for who, chan in ((w["bob"], f"group/{gid}"),
                      (w["bob"], f"group/{gid.upper()}"),
                      (w["bob"], f"group/{gid}/../../user/{w['cal']}"),
                      (w["bob"], f"user/{w['cal']}"),
                      (w["bob"], "group/" + "0" * 16),
                      (w["bob"], "group/"),
                      (w["dave"], "group/" + "0" * 16)):
        assert ws_status(edge, f"access_token={who.token}&channel={chan}") \
            == 403, chan
    # the members are let in (the control)
    for who in (w["alice"], w["dave"]):
        assert ws_status(edge, f"access_token={who.token}"
                         f"&channel=group/{gid}") == 101
    # a foreign Origin is refused even for a member
    assert ws_status(edge, f"access_token={w['dave'].token}"
                     f"&channel=group/{gid}",
                     origin="https://evil.example") == 403
    # a malformed message id is refused before anything else
    assert ws_status(edge, f"access_token={w['dave'].token}"
                     f"&channel=group/{gid}&last_event_id=1:") == 400


@needs_ws
def test_a_stranger_hears_nothing_of_a_group(stack):
    """bob, subscribed to his own channel, gets nothing when a group he is
    not in changes, while a member does."""
    _, edge = stack
    lead = Client(edge).register_login(uname("l"))
    bob = Client(edge).register_login(uname("b"))
    gid = unwrap(lead.req("POST", "/groups", {"name": "Quiet"}),
                 "group")["id"]
    ws_bob = ws_connect(edge, f"access_token={bob.token}")
    ws_lead = ws_connect(edge,
                         f"access_token={lead.token}&channel=group/{gid}")
    try:
        time.sleep(0.2)
        assert lead.req("PATCH", f"/groups/{gid}",
                        {"name": "Still quiet"}).status_code == 200
        recv_until(ws_lead, "group.updated")
        ws_bob.settimeout(0.5)
        with pytest.raises(websocket.WebSocketTimeoutException):
            msg = ws_bob.recv()
            pytest.fail(f"bob got {msg}")
    finally:
        ws_bob.close()
        ws_lead.close()


@needs_ws
def test_last_event_id_variants_do_not_crash_nginx(world):
    w = world
    edge = w["edge"]
    tok = w["dave"].token
    for bad in ("1:", "1%3A", "%31:", "1:%00", ":", "1:1:1", "99999999999"
                "999999999999:1"):
        assert ws_status(edge, f"access_token={tok}&last_event_id={bad}") \
            == 400, bad
    r = w["dave"].req("GET", "/me")
    assert r.status_code == 200
    assert "exited on signal" not in error_log(edge)


@pytest.mark.parametrize("method,status", [("POST", 405), ("GET", 400)])
def test_a_refused_subscription_body_is_not_a_second_request(world, method,
                                                            status):
    """A subscription request with a body is refused, and the body is
    never read as the connection's next request (it used to be: a request
    hidden in it was answered too, on the same connection)."""
    hidden = b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\n\r\n"
    request = (f"{method} /api/v1/notifications HTTP/1.1\r\n"
               f"Host: localhost\r\n"
               f"Authorization: Bearer {world['dave'].token}\r\n"
               f"Content-Length: {len(hidden)}\r\n\r\n").encode() + hidden
    got = raw_exchange(world["edge"], request)
    assert got.startswith(f"HTTP/1.1 {status} ".encode()), got[:200]
    assert got.count(b"HTTP/1.1 ") == 1, got
    if method == "POST":
        assert b"\r\nAllow: GET\r\n" in got, got


# ---- /cluster: the replicas' live state (admins) ----------------------------------

def test_cluster_shows_each_replicas_live_state_to_admins(world):
    w = world
    agents, edge = w["agents"], w["edge"]
    admin = make_admin(agents, edge)
    body = get_ok(admin, "/cluster")
    shards = {s["name"]: s for s in body["shards"]}
    assert set(shards) == {"events_am", "events_nz", "groups", "users"}
    for name, s in shards.items():
        leader = agents.wait_for_leader(name)
        assert s["leader"]["id"] == leader, s
        assert isinstance(s["leader"]["term"], int)
        assert isinstance(s["leader"]["commit_index"], int)
        roles = [r["status"].get("role") for r in s["replicas"]]
        assert roles.count("leader") == 1, s
        for r in s["replicas"]:
            assert r["status"]["reachable"] is True
            assert r["status"]["leader_id"] == leader
    # the ordinary users of the world are refused
    r = w["alice"].req("GET", "/cluster")
    assert r.status_code == 403
    assert error_code(r) == "forbidden"


# ---- rate limit -------------------------------------------------------------------

def test_login_rate_limit_answers_429_json_after_the_burst(stack,
                                                           make_edge):
    agents, _ = stack
    e = make_edge(agents.topology)
    e.generate("--auth-rate", "1r/m", "--auth-burst", "3")
    e.start()
    c = Client(e)
    statuses = []
    for _ in range(6):
        r = c.req("POST", "/auth/login", {"username": "nobody-at-all",
                                          "password": "whatever pass"},
                  token=False)
        statuses.append(r.status_code)
        if r.status_code == 429:
            assert error_code(r)
            assert r.headers.get("Retry-After")
            # the location answering it repeats every security header
            assert r.headers.get("Strict-Transport-Security")
            assert r.headers.get("X-Content-Type-Options") == "nosniff"
            assert "default-src 'none'" in r.headers.get(
                "Content-Security-Policy", "")
            assert r.headers.get("Referrer-Policy") == "no-referrer"
    # the burst of 3 plus the one the rate allows, then refusals
    assert statuses[:4] == [401] * 4, statuses
    assert statuses[4:] == [429, 429], statuses
    # registration counts against the same client's limit, and a refused
    # one creates no account
    name = uname("r")
    r = c.req("POST", "/auth/register",
              {"username": name, "password": PASSWORD,
               "display_name": "Late", "email": f"{name}@example.org"},
              token=False)
    assert r.status_code == 429, r.text
    assert error_code(r)
    st, ans = shard_op(agents, "users", False, "user.get",
                       {"username": name})
    assert st == 404, ans
    # (the same question about an account that exists: 200)
    known = me(Client(stack[1]).register_login(uname("k")))
    st, ans = shard_op(agents, "users", False, "user.get",
                       {"username": known})
    assert st == 200, ans
    # the rest of the API is not limited
    assert c.s.get(c.base + "/health", timeout=5).status_code == 200


def test_password_changes_are_rate_limited_per_token(stack):
    """Each attempt costs an argon2 check on the edge's thread pool, and a
    stolen token must not make them an unthrottled guess of the current
    password: after a burst of 5 (plus the one the rate of 6 a minute
    allows) a token is answered 429, without the check.  Another token of
    the same user (the owner logging in) is not held back by it."""
    _, edge = stack
    thief = Client(edge).register_login(uname("p"))
    name = me(thief)
    statuses = []
    for i in range(8):
        r = thief.req("POST", "/me/password",
                      {"current_password": f"guess number {i}",
                       "new_password": "another horse battery staple"})
        statuses.append(r.status_code)
        if r.status_code == 429:
            assert error_code(r) == "rate_limited", r.text
            assert r.headers.get("Retry-After")
    assert 429 not in statuses[:6], statuses
    assert statuses[6:] == [429, 429], statuses
    # the same token written another way is the same token
    for auth in (f"bearer {thief.token}", f"BEARER   {thief.token}"):
        r = thief.s.post(thief.base + "/me/password",
                         json={"current_password": "guess again",
                               "new_password": "another horse battery"},
                         headers={"Authorization": auth}, timeout=15)
        assert r.status_code == 429, (auth[:10], r.status_code, r.text)
    owner = Client(edge)
    r = owner.req("POST", "/auth/login",
                  {"username": name, "password": PASSWORD}, token=False)
    assert r.status_code == 200, r.text
    owner.token = r.json()["access_token"]
    change_password(owner)


# ---- what answers and logs keep ---------------------------------------------

def test_api_answers_are_never_stored_by_caches(stack):
    """Calendars, invitations and accounts are one person's: every API
    answer, errors and the health check included, says no-store."""
    _, edge = stack
    c = Client(edge).register_login(uname("c"))
    cal = me(c)
    answers = [
        c.req("GET", "/me"),
        c.req("POST", f"/calendars/{cal}/events", event_body()),
        c.req("GET", f"/calendars/{cal}/events?{DAY}"),
        c.req("GET", f"/agenda?{DAY}"),
        c.req("GET", "/calendars/nobody-here/events/0"),    # an error
        c.req("GET", "/me", token=False),                   # 401
        c.s.get(c.base + "/health", timeout=5),
    ]
    for r in answers:
        assert r.headers.get("Cache-Control") == "no-store", \
            (r.request.method, r.request.url, r.status_code, r.headers)


def test_access_tokens_in_query_strings_never_reach_the_access_log(stack):
    """The notifications URL carries the token (browsers cannot set
    headers on a WebSocket): its query string is withheld from the log
    whichever location answers — the API's, the error page that takes
    over a request with an oversized header, the plain-HTTP redirect."""
    _, edge = stack
    c = Client(edge).register_login(uname("l"))
    secrets = [f"secret{uuid.uuid4().hex}" for _ in range(4)]
    marker = f"log-probe-{uuid.uuid4().hex}"
    ua = {"User-Agent": marker}
    base = f"https://127.0.0.1:{edge.https_port}/api/v1"
    r = c.s.get(f"{base}/notifications?access_token={secrets[0]}",
                headers={**ua, "X-Filler": "x" * 9000}, timeout=10)
    assert r.status_code == 400, r.text
    r = c.s.get(f"{base}/me?x=1&access_token={secrets[1]}", headers=ua,
                timeout=10)
    assert r.status_code == 401, r.text
    r = c.s.get(f"http://127.0.0.1:{edge.http_port}/api/v1/notifications"
                f"?access_token={secrets[2]}", headers=ua, timeout=10,
                allow_redirects=False)
    assert r.status_code == 301
    r = c.s.get(f"{base}/health?ACCESS_TOKEN={secrets[3]}", headers=ua,
                timeout=10)
    assert r.status_code == 200
    log = edge.root / "logs" / "access.log"
    deadline = time.monotonic() + 10        # written at least every second
    while time.monotonic() < deadline:
        lines = [ln for ln in log.read_text().splitlines() if marker in ln]
        if len(lines) == 4:
            break
        time.sleep(0.2)
    assert len(lines) == 4, lines
    text = log.read_text()
    for s in secrets:
        assert s not in text
    assert all("?<query withheld: access_token>" in ln for ln in lines), lines


@needs_ws
def test_well_formed_message_ids_of_every_kind_do_not_crash_nginx(world):
    """nchan 1.3.6 aborts a worker (spool_fetch_msg's assertion, upstream
    issues 534, 670, 676 and 720) on message ids that are well formed:
    one from before anything was published, one of an empty channel, one
    newer than its newest message, one of expired messages.  A client
    reconnecting after a quiet while sends exactly these."""
    w = world
    edge = w["edge"]
    c = Client(edge).register_login(uname("q"))
    tok = c.token
    now = int(time.time())
    # a channel nchan does not know yet: the id is ignored, the
    # subscription made
    ws = ws_connect(edge, f"access_token={tok}&last_event_id={now}:0")
    ws.close()
    # the channel exists (a subscriber made it) and holds no message
    for mid in (f"{now}:0", "1:0", f"{now + 3600}:0", f"{now - 7200}:5",
                f"{now}:0", "0:0"):
        try:
            ws = ws_connect(edge, f"access_token={tok}&last_event_id={mid}")
            ws.close()
        except websocket.WebSocketBadStatusException as e:
            assert e.status_code == 400, mid
        for hdr in ({"Last-Event-ID": mid},):
            try:
                ws = ws_connect(edge, f"access_token={tok}", headers=hdr)
                ws.close()
            except websocket.WebSocketBadStatusException as e:
                assert e.status_code == 400, mid
    # a message, then ids around it
    r = c.req("PATCH", "/me", {"display_name": "Quiet One"})
    assert r.status_code == 200, r.text
    for mid in (f"{now}:0", f"{now + 3600}:0", f"{now - 7200}:0"):
        try:
            ws = ws_connect(edge, f"access_token={tok}&last_event_id={mid}")
            ws.close()
        except websocket.WebSocketBadStatusException as e:
            assert e.status_code == 400, mid
    time.sleep(0.5)
    assert c.req("GET", "/me").status_code == 200
    assert "exited on signal" not in error_log(edge)


@needs_ws
def test_open_notification_sockets_are_capped_per_token_and_address(
        stack, make_edge):
    """Each socket is held until its token expires: one account must not
    take a worker's connections with them.  Over the cap per token, then
    per address, a new socket is refused (429, JSON); closing one makes
    room."""
    agents, _ = stack
    e = make_edge(agents.topology)
    e.generate("--ws-per-token", "3", "--ws-per-address", "5")
    e.start()
    a = Client(e).register_login(uname("w"))
    b = Client(e).register_login(uname("w"))
    held = [ws_connect(e, f"access_token={a.token}") for _ in range(3)]
    try:
        with pytest.raises(websocket.WebSocketBadStatusException) as over:
            ws_connect(e, f"access_token={a.token}")
        assert over.value.status_code == 429
        assert "json" in (over.value.resp_headers or {}).get(
            "content-type", "")
        # the token's signature is what counts, whichever way it comes:
        # in the header, however "Bearer" is written; with a parameter the
        # module ignores then; or escaped, which is refused
        assert ws_status(e, "", headers={
            "Authorization": f"Bearer {a.token}"}) == 429
        assert ws_status(e, "", headers={
            "Authorization": f"bEARER {a.token}"}) == 429
        junk = uuid.uuid4().hex * 2
        assert ws_status(e, f"access_token={junk}", headers={
            "Authorization": f"Bearer {a.token}"}) == 429
        held.pop().close()
        time.sleep(0.3)
        escaped = "%" + format(ord(a.token[0]), "02X") + a.token[1:]
        assert ws_status(e, f"access_token={escaped}") == 401
        # over the cap, nothing in the error log quotes the token
        text = (e.root / "logs" / "error.log").read_text(errors="replace")
        assert a.token.split(".")[2] not in text
        time.sleep(0.3)
        held.append(ws_connect(e, f"access_token={a.token}"))
        # another token, same address: two more, then the address is full
        held += [ws_connect(e, f"access_token={b.token}") for _ in range(2)]
        assert ws_status(e, f"access_token={b.token}") == 429
    finally:
        for ws in held:
            ws.close()


@needs_ws
def test_a_removal_ends_group_subscriptions_when_its_writer_is_gone(stack):
    """A leader who removes a member and hangs up before the answer left
    that member subscribed to the group until the token expired: nginx
    cut the request short (499) before it published anything, and nchan
    refused a publication (the group channel's DELETE too) whose request's
    connection had seen its client's close.  Shard calls now outlive a
    client that hangs up, the close is hidden from nchan while the
    publications start, and the edge remembers the channel's close itself
    as a backstop: the subscription ends."""
    _, edge = stack
    lead, mem, gid = group_of_two(edge, "Hangups")
    ws = ws_connect(edge, f"access_token={mem.token}&channel=group/{gid}")
    try:
        time.sleep(0.3)
        send_and_hang_up(edge, "DELETE", f"/groups/{gid}/members/{me(mem)}",
                         lead.token)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            r = lead.req("GET", f"/groups/{gid}")
            assert r.status_code == 200, r.text
            members = [m["user"] for m in unwrap(r, "group")["members"]]
            if me(mem) not in members:
                break
            time.sleep(0.1)
        assert me(mem) not in members, "the removal did not commit"
        assert ws_closed(ws, 5.0), "the removed member is still subscribed"
    finally:
        ws.close()
    assert ws_status(edge, f"access_token={mem.token}&channel=group/{gid}") \
        == 403


@needs_ws
def test_members_do_not_learn_who_answered_a_private_group_event(stack):
    """A group's members see a private event of its calendar as busy time,
    without its participants: the invitation.responded message on the
    group's channel does not name who answered (for an event that is not
    private it does)."""
    _, edge = stack
    lead, mem, gid = group_of_two(edge, "Secrets")
    inv = Client(edge).register_login(uname("i"))
    cal = f"g:{gid}"
    ids = {}
    for vis in ("private", "default"):
        r = lead.req("POST", f"/calendars/{cal}/events",
                     event_body(participants=[me(inv)], visibility=vis))
        assert r.status_code == 201, r.text
        ids[vis] = unwrap(r, "event")["id"]
    r = mem.req("GET", f"/changes?target=calendar:{cal}")
    assert r.status_code == 200, r.text
    since = r.json()["sync_token"]
    ws = ws_connect(edge, f"access_token={mem.token}&channel=group/{gid}")
    try:
        ws.settimeout(5)
        time.sleep(0.3)
        for vis in ("private", "default"):
            r = inv.req("POST", f"/calendars/{cal}/events/{ids[vis]}/rsvp",
                        {"response": "accepted"})
            assert r.status_code == 200, r.text
            while True:
                msg = json.loads(ws.recv())
                if msg.get("type") == "invitation.responded":
                    break
            assert msg["id"] == ids[vis]
            if vis == "private":
                assert "actor" not in msg, msg
            else:
                assert msg["actor"] == me(inv), msg
    finally:
        ws.close()
    # and the group calendar's feed, as the member reads it
    r = mem.req("GET", f"/changes?target=calendar:{cal}&since={since}")
    assert r.status_code == 200, r.text
    answers = [c for c in r.json()["changes"]
               if c["type"] == "invitation.responded"]
    assert len(answers) == 2, answers
    assert answers[0]["actor"] == "" and "user" not in answers[0]["data"]
    assert answers[1]["actor"] == me(inv)
