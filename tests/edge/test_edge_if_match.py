"""Writes with a matching If-Match are answered, in JSON.

The flow checks If-Match itself (the shard answers 412 version_mismatch);
nginx's not_modified filter must not test it again: it compares with
headers_out.etag, which the module does not set, and used to turn the 200
of every conditional PATCH, PUT and DELETE into a 412 after the write was
applied, closing the connection without an answer (browsers then retry
the request on a new connection and get a 412 for their own write)."""
from __future__ import annotations

import uuid

import pytest

from edge_client import Client, event_body, me, uname, unwrap


@pytest.fixture(scope="module")
def alice(stack):
    _, edge = stack
    return Client(edge).register_login(uname("a"))


def new_event(client):
    r = client.req("POST", f"/calendars/{me(client)}/events",
                   event_body(participants=[]))
    assert r.status_code == 201, r.text
    ev = unwrap(r, "event")
    return f"/calendars/{ev['calendar']}/events/{ev['id']}", r.headers["ETag"]


@pytest.mark.parametrize("method,body", [
    ("PATCH", {"title": "renamed"}),
    ("PUT", event_body(title="replaced")),
    ("DELETE", None),
])
def test_a_write_with_the_current_etag_is_answered(alice, method, body):
    path, tag = new_event(alice)
    r = alice.req(method, path, body, headers={"If-Match": tag})
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"].startswith("application/json")
    if method != "DELETE":
        assert r.headers["ETag"] == '"2"'
        assert unwrap(r, "event")["version"] == 2


def test_a_read_with_if_match_is_the_api_answer_not_an_nginx_page(alice):
    path, _ = new_event(alice)
    r = alice.req("GET", path, headers={"If-Match": '"7"'})
    # openapi.yaml gives GET no If-Match: whatever the answer, it is the
    # API's JSON (nginx's HTML 412 page was what came back)
    assert r.status_code in (200, 412), r.text
    assert r.headers["Content-Type"].startswith("application/json")


def test_a_retry_with_a_corrected_if_match_is_applied(alice):
    """The same Idempotency-Key with another If-Match is another request:
    its first answer (412) is not replayed to the corrected one, while a
    true replay of either still gets that request's first answer."""
    path, tag = new_event(alice)
    key = {"Idempotency-Key": uuid.uuid4().hex}
    stale = alice.req("PATCH", path, {"title": "renamed"},
                      headers={**key, "If-Match": '"7"'})
    assert stale.status_code == 412, stale.text
    fixed = alice.req("PATCH", path, {"title": "renamed"},
                      headers={**key, "If-Match": tag})
    assert fixed.status_code == 200, fixed.text
    assert unwrap(fixed, "event")["version"] == 2
    again = alice.req("PATCH", path, {"title": "renamed"},
                      headers={**key, "If-Match": tag})
    assert again.status_code == 200, again.text
    assert unwrap(again, "event")["version"] == 2     # replayed, not redone
    assert alice.req("PATCH", path, {"title": "renamed"},
                     headers={**key, "If-Match": '"7"'}).status_code == 412
    assert unwrap(alice.req("GET", path), "event")["version"] == 2


@pytest.mark.parametrize("method,body,all_day", [
    # the writes the edge reads the event for first: a PUT, a PATCH of the
    # participants, a PATCH of an all-day event's time zone (its span)
    ("PUT", event_body(title="replaced", participants=[]), False),
    ("PATCH", {"participants": []}, False),
    ("PATCH", {"time_zone": "Asia/Tokyo"}, True),
])
def test_a_retried_write_that_was_applied_is_answered_its_result(
        alice, method, body, all_day):
    """A client whose answer was lost retries with the same key and
    If-Match; the event is now past that version (its own write made it),
    which the edge's read shows.  The retry gets the first answer, not a
    412 for the client's own change, and nothing is applied twice."""
    if all_day:
        r = alice.req("POST", f"/calendars/{me(alice)}/events",
                      {"title": "day", "all_day": True, "start": "2026-12-24",
                       "end": "2026-12-25", "time_zone": "Europe/Madrid"})
        assert r.status_code == 201, r.text
        ev = unwrap(r, "event")
        path = f"/calendars/{ev['calendar']}/events/{ev['id']}"
        tag = r.headers["ETag"]
    else:
        path, tag = new_event(alice)
    headers = {"Idempotency-Key": uuid.uuid4().hex, "If-Match": tag}
    first = alice.req(method, path, body, headers=headers)
    assert first.status_code == 200, first.text
    assert unwrap(first, "event")["version"] == 2
    again = alice.req(method, path, body, headers=headers)
    assert again.status_code == 200, again.text
    assert unwrap(again, "event") == unwrap(first, "event")
    # the same If-Match with another key is a new write, and stale
    other = alice.req(method, path, body, headers={
        "Idempotency-Key": uuid.uuid4().hex, "If-Match": tag})
    assert other.status_code == 412, other.text
    assert other.json()["error"]["code"] == "version_mismatch"
    # and one without a key too (answered at the edge, from its read)
    bare = alice.req(method, path, body, headers={"If-Match": tag})
    assert bare.status_code == 412, bare.text
    # a version still to come is refused, key or not
    ahead = alice.req(method, path, body, headers={
        "Idempotency-Key": uuid.uuid4().hex, "If-Match": '"9"'})
    assert ahead.status_code == 412, ahead.text
    assert unwrap(alice.req("GET", path), "event")["version"] == 2
