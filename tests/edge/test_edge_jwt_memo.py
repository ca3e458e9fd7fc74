"""The token memo (agenda_jwt_memo, agenda_jwt_memo.h) through nginx: a
token every worker has already verified still stops working the second
it expires — for the REST API and for a notifications subscription — and
the directive is generated and checked by `nginx -t`.

Tokens here live 2 s with no leeway, so expiry comes within the test;
one worker, so every request after the first is answered from its memo.
"""
from __future__ import annotations

import time

import pytest

from conftest import started_stack
from edge_client import Client, claims_of, needs_ws, uname, ws_status

TTL_S = 2


@pytest.fixture(scope="module")
def short_stack(request, tls_dir):
    with started_stack(request, tls_dir, "edge-memo",
                       ("--jwt-ttl", f"{TTL_S}s", "--jwt-leeway", "0",
                        "--auth-rate", "100r/s", "--auth-burst", "200"),
                       replicas=1) as s:
        yield s


def until_expired(token: str) -> None:
    """Sleep until the token's exp has passed by the edge's (1 s) clock."""
    wait = claims_of(token)["exp"] - time.time() + 1.1
    if wait > 0:
        time.sleep(wait)


def test_a_remembered_token_expires_on_time(short_stack):
    _, edge = short_stack
    c = Client(edge).register_login(uname("memo"))
    for _ in range(5):
        r = c.req("GET", "/me")
        assert r.status_code == 200, r.text
    until_expired(c.token)
    r = c.req("GET", "/me")
    assert r.status_code == 401, r.text
    assert r.json()["error"]["code"] == "invalid_token"
    assert "expired" in r.json()["error"]["message"]
    # and stays refused once the memo forgot it
    assert c.req("GET", "/me").status_code == 401


@needs_ws
def test_a_remembered_token_cannot_subscribe_after_expiry(short_stack):
    _, edge = short_stack
    c = Client(edge).register_login(uname("memows"))
    assert c.req("GET", "/me").status_code == 200  # remembered now
    assert ws_status(edge, f"access_token={c.token}") == 101
    until_expired(c.token)
    assert ws_status(edge, f"access_token={c.token}") == 401


def test_jwt_memo_directive_is_generated_and_checked(make_edge):
    e = make_edge()
    e.generate()
    assert "agenda_jwt_memo 1024;" in e.conf.read_text()
    e.generate("--jwt-memo", "0")
    conf = e.conf.read_text()
    assert "agenda_jwt_memo 0;" in conf
    r = e.check()
    assert r.returncode == 0, r.stderr
    e.conf.write_text(conf.replace("agenda_jwt_memo 0;",
                                   "agenda_jwt_memo 65537;"))
    r = e.check()
    assert r.returncode != 0
    assert '"agenda_jwt_memo" must be 0..65536' in r.stderr, r.stderr
