"""raft_agent is valgrind-clean: one replica of a working shard runs under
memcheck through elections, writes, reads, a snapshot install and a graceful
stop, and must report no error and no leak; with plain links and with
internal TLS (every connection and the snapshot through OpenSSL)."""
from __future__ import annotations

import re
import shutil

import pytest

from conftest import Cluster, write_many, verify_acked


def reports(folder) -> str:
    return "\n".join(p.read_text() for p in sorted(folder.glob("*.log")))


def parent_pid(log) -> int:
    """The "Parent PID" memcheck writes at the top of a report."""
    for line in log.read_text().splitlines()[:30]:
        if "Parent PID:" in line:
            return int(line.rsplit(":", 1)[1])
    raise AssertionError(f"no Parent PID in {log}")


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
    # one report per start, and one per received snapshot: the child that
    # read it first (raft_agent/snapshot_vet.h), also under memcheck
    pids = {int(p.stem) for p in logs}
    children = [p for p in logs if parent_pid(p) in pids]
    assert len(logs) - len(children) == 2, f"expected two starts: {logs}"
    assert len(children) >= 1, f"no snapshot was checked: {logs}"
    for log in logs:
        text = log.read_text()
        assert "ERROR SUMMARY: 0 errors" in text, text[-6000:]
        # (the checks' children end with _exit(): their parent's memory is
        # still there and summarised, but must not be lost either)
        assert re.search(r"(definitely|indirectly) lost: [1-9]",
                         text) is None, text[-6000:]
