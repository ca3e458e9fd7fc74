"""/digest is computed on a thread of its own (node_digest.c).

It reads the whole replicated state: done on the event loop, as it was, a
large shard's leader served nothing meanwhile and could lose leadership.
held_digest.so holds the digest's thread while a flag file exists: the
replica must go on committing writes and answering meanwhile, refuse a
second digest (503 busy), and once released answer the digest of the
state as of the request (its applied index then), which is what the
followers report at that index."""
import threading
import time

from conftest import BUILD


def test_a_digest_in_progress_does_not_hold_the_replica(cluster_factory,
                                                        tmp_path):
    shim = BUILD / "held_digest.so"
    assert shim.exists(), f"{shim} missing: make {shim}"
    flag = tmp_path / "hold"
    held = tmp_path / "hold.held"
    c = cluster_factory()
    for rid in c.ids:
        c.wrappers[rid] = ["env", f"LD_PRELOAD={shim}",
                           f"AGENDA_HOLD_DIGEST={flag}"]
    leader = c.start_all()
    client = c.client()
    client.put("before", b"1")
    before = c.wait_converged()

    flag.touch()
    got = {}
    t = threading.Thread(target=lambda: got.update(
        r=c.http(leader, "GET", "/digest", timeout=60)))
    t.start()
    try:
        deadline = time.monotonic() + 20
        while not held.exists():
            assert time.monotonic() < deadline, "the digest never began"
            time.sleep(0.02)
        # the replica still serves: a write commits, /status answers, and
        # a second digest is refused while the first runs
        ack = client.put("during", b"2")
        assert c.http(leader, "GET", "/status").status_code == 200
        busy = c.http(leader, "GET", "/digest")
        assert busy.status_code == 503, busy.text
        assert busy.json()["error"]["code"] == "busy"
        assert busy.headers["Retry-After"] == "1"
    finally:
        flag.unlink()
        t.join(60)
    r = got["r"]
    assert r.status_code == 200, r.text
    # the state as of the request: before the write made meanwhile
    assert r.json()["digest"] == before
    assert r.json()["applied_index"] < ack.index
    after = c.wait_converged()
    assert after != before
