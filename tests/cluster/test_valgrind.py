"""raft_agent is valgrind-clean: one replica of a working shard runs under
memcheck through elections, writes, reads, a snapshot install and a graceful
stop, and must report no error and no leak; with plain links and with
internal TLS (every connection and the snapshot through OpenSSL)."""
from __future__ import annotations

import shutil

import pytest

from conftest import Cluster, write_many, verify_acked


def reports(folder) -> str:
    return "\n".join(p.read_text() for p in sorted(folder.glob("*.log")))


@pytest.mark.skipif(shutil.which("valgrind") is None,
                    reason="valgrind is not installed (make deps)")
@pytest.mark.parametrize("internal_tls", [False, True],
                         ids=["plain", "internal-tls"])
def test_agent_under_valgrind(cluster_factory, internal_tls):
    # Slow timing: memcheck makes the wrapped agent ~20x slower.
    c: Cluster = cluster_factory(raft={"tick_ms": 20, "election_ticks": 25,
                                       "heartbeat_ticks": 3,
                                       "snapshot_threshold": 60},
                                 internal_tls=internal_tls)
    vg_logs = c.root / "valgrind"
    vg_logs.mkdir()
    c.wrappers[1] = ["valgrind", "--error-exitcode=99", "--leak-check=full",
                     "--errors-for-leak-kinds=definite,indirect",
                     "--show-leak-kinds=definite,indirect",
                     f"--log-file={vg_logs}/%p.log"]
    for rid in c.ids:
        c.start(rid)
    c.wait_http(c.ids, timeout=60)
    c.wait_for_leader(timeout=30)

    acks = write_many(c, 40, "vg-a")
    # Make node 1 catch up by snapshot: stop it, compact past it, restart.
    assert c.stop(1, timeout=60) == 0, reports(vg_logs)[-6000:]
    c.wipe(1)
    acks += write_many(c, 150, "vg-b")
    c.start(1)
    c.wait_http([1], timeout=60)
    c.wait_converged(timeout=60)
    assert c.metric(1, "agenda_raft_snapshots_received_total") >= 1
    verify_acked(c, acks[-20:])
    rc = c.stop(1, timeout=60)
    assert rc == 0, f"valgrind reported errors (exit {rc}):\n" \
        f"{reports(vg_logs)[-6000:]}"
    logs = sorted(vg_logs.glob("*.log"))
    assert len(logs) == 2, f"expected one report per start, got {logs}"
    for log in logs:
        text = log.read_text()
        assert "ERROR SUMMARY: 0 errors" in text, text[-6000:]
        assert "definitely lost" not in text, text[-6000:]
