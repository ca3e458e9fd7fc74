"""All-day events occupy the days of their own time zone.

An all-day event on 2026-12-24 in Asia/Tokyo is busy from Tokyo's
midnight (2026-12-23T15:00Z) to the next (2026-12-24T15:00Z): the edge
works those instants out from the tz database (agenda_zoneinfo) and the
shard stores them with the dates.  Free/busy, the agenda's windows and
its order follow them; the dates the client gave stay as they were."""
from __future__ import annotations

from urllib.parse import urlencode

import pytest

from edge_client import Client, me, uname, unwrap


@pytest.fixture(scope="module")
def alice(stack):
    _, edge = stack
    return Client(edge).register_login(uname("tz"))


def create(client, **kw):
    body = {"title": "Eve", "all_day": True, "start": "2026-12-24",
            "end": "2026-12-25", "time_zone": "Asia/Tokyo"}
    body.update(kw)
    r = client.req("POST", f"/calendars/{me(client)}/events", body)
    assert r.status_code == 201, r.text
    return unwrap(r, "event")


def write(client, method, path, body, version):
    """PATCH or PUT with If-Match: the event as answered."""
    r = client.req(method, path, body, headers={"If-Match": f'"{version}"'})
    assert r.status_code == 200, r.text
    return unwrap(r, "event")


def agenda_ids(client, frm, to):
    r = client.req("GET", "/agenda?" + urlencode({"from": frm, "to": to}))
    assert r.status_code == 200, r.text
    return [e["id"] for e in r.json()["events"]]


def test_a_tokyo_day_is_busy_from_tokyo_midnight(alice):
    ev = create(alice, title="Tokyo eve")
    assert (ev["start"], ev["end"]) == ("2026-12-24", "2026-12-25")
    assert ev["start_at"] == "2026-12-23T15:00:00Z"
    assert ev["end_at"] == "2026-12-24T15:00:00Z"

    r = alice.req("GET", "/freebusy?" + urlencode(
        {"users": me(alice), "from": "2026-12-20T00:00:00Z",
         "to": "2026-12-28T00:00:00Z"}))
    assert r.status_code == 200, r.text
    busy = r.json()["users"][me(alice)]
    assert {"start": "2026-12-23T15:00:00Z",
            "end": "2026-12-24T15:00:00Z"} in busy, busy

    # Tokyo's 23rd and 25th do not hold it; its 24th, and Los Angeles'
    # 23rd (which overlaps Tokyo's 24th), do
    assert ev["id"] not in agenda_ids(alice, "2026-12-23T00:00:00+09:00",
                                      "2026-12-24T00:00:00+09:00")
    assert ev["id"] not in agenda_ids(alice, "2026-12-25T00:00:00+09:00",
                                      "2026-12-26T00:00:00+09:00")
    assert ev["id"] in agenda_ids(alice, "2026-12-24T00:00:00+09:00",
                                  "2026-12-25T00:00:00+09:00")
    assert ev["id"] in agenda_ids(alice, "2026-12-23T00:00:00-08:00",
                                  "2026-12-24T00:00:00-08:00")


def test_the_agenda_orders_all_day_events_by_their_own_midnight(alice):
    # 16:00Z on the 23rd is after Tokyo's 24th began (15:00Z) and before
    # London's (00:00Z on the 24th)
    timed = alice.req("POST", f"/calendars/{me(alice)}/events",
                      {"title": "call", "start": "2026-12-23T16:00:00Z",
                       "end": "2026-12-23T16:30:00Z", "time_zone": "UTC"})
    assert timed.status_code == 201, timed.text
    timed = unwrap(timed, "event")
    tokyo = create(alice, title="order tokyo")
    london = create(alice, title="order london", time_zone="Europe/London")
    ids = agenda_ids(alice, "2026-12-23T12:00:00Z", "2026-12-24T12:00:00Z")
    mine = [i for i in ids if i in (timed["id"], tokyo["id"], london["id"])]
    assert mine == [tokyo["id"], timed["id"], london["id"]], ids


def test_moving_an_all_day_event_moves_its_span(alice):
    ev = create(alice, title="moving")
    path = f"/calendars/{ev['calendar']}/events/{ev['id']}"
    # another time zone only: the dates stay, the instants follow
    ev = write(alice, "PATCH", path, {"time_zone": "America/New_York"}, 1)
    assert (ev["start"], ev["end"]) == ("2026-12-24", "2026-12-25")
    assert ev["start_at"] == "2026-12-24T05:00:00Z"
    assert ev["end_at"] == "2026-12-25T05:00:00Z"
    # another end date only: the kept time zone's midnight
    ev = write(alice, "PATCH", path, {"end": "2026-12-27"}, 2)
    assert ev["start_at"] == "2026-12-24T05:00:00Z"
    assert ev["end_at"] == "2026-12-27T05:00:00Z"
    # a title only: unchanged
    ev = write(alice, "PATCH", path, {"title": "moved"}, 3)
    assert ev["end_at"] == "2026-12-27T05:00:00Z"
    # PUT replaces it all, in Madrid
    ev = write(alice, "PUT", path, {"title": "put", "all_day": True,
                                    "start": "2026-07-01",
                                    "end": "2026-07-02",
                                    "time_zone": "Europe/Madrid"}, 4)
    assert ev["start_at"] == "2026-06-30T22:00:00Z"
    assert ev["end_at"] == "2026-07-01T22:00:00Z"
    # a stale If-Match moves nothing
    r = alice.req("PATCH", path, {"time_zone": "Asia/Tokyo"},
                  headers={"If-Match": '"4"'})
    assert r.status_code == 412, r.text
    r = alice.req("GET", path)
    assert unwrap(r, "event")["start_at"] == "2026-06-30T22:00:00Z"


def test_a_day_the_clocks_skip_midnight_begins_when_they_jump(alice):
    # Sao Paulo went from 00:00 -03 to 01:00 -02 on 2018-11-04
    ev = create(alice, title="skipped midnight", start="2018-11-04",
                end="2018-11-05", time_zone="America/Sao_Paulo")
    assert ev["start_at"] == "2018-11-04T03:00:00Z"
    assert ev["end_at"] == "2018-11-05T02:00:00Z"


def test_the_client_cannot_set_the_span_itself(alice):
    r = alice.req("POST", f"/calendars/{me(alice)}/events",
                  {"title": "forged", "all_day": True, "start": "2026-12-24",
                   "end": "2026-12-25", "time_zone": "UTC",
                   "start_at": "2026-12-20T00:00:00Z"})
    assert r.status_code == 400, r.text
    assert r.json()["error"]["code"] == "unknown_field"


def test_a_day_a_zone_skipped_occupies_its_utc_day(alice):
    """Samoa went from 2011-12-29 to 2011-12-31: the 30th has no instant
    there, so an event on it alone occupies the UTC day (a span of its own
    would be empty and the shard would refuse it)."""
    ev = create(alice, title="skipped day", start="2011-12-30",
                end="2011-12-31", time_zone="Pacific/Apia")
    assert ev["start_at"] == "2011-12-30T00:00:00Z"
    assert ev["end_at"] == "2011-12-31T00:00:00Z"
    # the day after it is Samoa's, at +14
    ev = create(alice, title="after the skip", start="2011-12-31",
                end="2012-01-01", time_zone="Pacific/Apia")
    assert ev["start_at"] == "2011-12-30T10:00:00Z"


def test_an_all_day_event_made_timed_loses_its_span(alice):
    ev = create(alice, title="to timed")
    path = f"/calendars/{ev['calendar']}/events/{ev['id']}"
    ev = write(alice, "PATCH", path, {"all_day": False,
                                      "start": "2026-12-24T10:00:00+09:00",
                                      "end": "2026-12-24T11:00:00+09:00"}, 1)
    assert ev["start"] == "2026-12-24T01:00:00Z"
    assert "start_at" not in ev and "end_at" not in ev
    # and back to all-day, in Tokyo again
    ev = write(alice, "PATCH", path, {"all_day": True, "start": "2026-12-24",
                                      "end": "2026-12-25"}, 2)
    assert ev["start_at"] == "2026-12-23T15:00:00Z"


def test_the_longest_all_day_event_is_not_refused_for_an_hour(alice):
    """366 days of dates (the most an event may last) from a summer-time
    day to a winter-time one span an hour more in Madrid: rather than
    refuse dates the API accepts, the event occupies UTC days."""
    ev = create(alice, title="a year", start="2027-10-30", end="2028-10-30",
                time_zone="Europe/Madrid")
    assert ev["start_at"] == "2027-10-30T00:00:00Z"
    assert ev["end_at"] == "2028-10-30T00:00:00Z"
