"""A leader's wall clock that jumps does not make the shard forget the
request ids of the last five minutes (raft_agent/leader_clock.h).

Commands carry the time their leader stamped, and every replica forgets a
request id five minutes of that time after its write.  libfaketime moves
the leader's CLOCK_REALTIME two hours forward while it leads (its
monotonic clock, and so its timers and elections, unchanged); the writes
it stamps next must not take the earlier request ids with them: a client
retrying a write from before the jump is answered with the first result,
not applied a second time.  (A clock moved back, which loses no id, and
the rates at which stamps follow either jump are checked without a
cluster in tests/unit/test_leader_clock.c.)"""
from pathlib import Path

import pytest

FAKETIME = Path("/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1")


def test_a_leader_clock_jump_keeps_request_ids(cluster_factory, tmp_path):
    if not FAKETIME.exists():
        pytest.fail(f"{FAKETIME} missing: config/deps.sh installs faketime")
    c = cluster_factory()
    offset = {}
    for rid in c.ids:
        offset[rid] = tmp_path / f"clock-{rid}"
        offset[rid].write_text("+0\n")
        c.wrappers[rid] = ["env", f"LD_PRELOAD={FAKETIME}",
                           f"FAKETIME_TIMESTAMP_FILE={offset[rid]}",
                           "FAKETIME_NO_CACHE=1",
                           "FAKETIME_DONT_FAKE_MONOTONIC=1"]
    leader = c.start_all()
    cl = c.client()
    first = cl.put("before-jump", b"1", idem="retried-write")
    assert not first.replayed
    offset[leader].write_text("+7200\n")
    # writes the jumped clock stamps: each forgets what it may
    for i in range(30):
        ack = cl.put(f"after-{i}", b"x")
        assert ack.node == leader, "leadership moved: the test proves nothing"
    again = cl.put("before-jump", b"1", idem="retried-write")
    assert again.replayed, "the retry was applied a second time"
    assert again.index == first.index
    remembered = c.metric(leader, "agenda_sessions_remembered")
    assert remembered >= 31, remembered  # every write, none forgotten
