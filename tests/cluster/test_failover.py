"""Fault injection on a real three-replica shard: kill -9, SIGSTOP,
network isolation (iptables), restart, wipe, graceful transfer.

Each test proves that no acknowledged write is lost, that replicas end with
equal digests, and reports the failover time it observed (fault → next
committed write) through conftest.report_failover.
"""
import os
import socket
import subprocess
import threading
import time
import uuid

import pytest
import requests

from conftest import (AGENT, Firewall, Writers, report_failover, verify_acked,
                      write_many)


def assert_unique_indexes(acks):
    """Distinct keys, each written once: distinct log indexes.  Two acks
    naming one index would mean one entry acknowledged for two writes."""
    seen = {}
    for a in acks:
        assert a.index not in seen, (
            f"index {a.index} acknowledged for both {seen[a.index].key} and {a.key}")
        seen[a.index] = a


def wait_first_ack_after(writers, t, exclude, timeout=15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert not writers.errors, f"writers failed: {writers.errors}"
        a = writers.first_ack_after(t, exclude=exclude)
        if a is not None:
            return a
        time.sleep(0.005)
    pytest.fail(f"no write committed within {timeout}s of the fault")


def wait_role_not_leader(c, rid, timeout=5.0):
    deadline = time.monotonic() + timeout
    st = None
    while time.monotonic() < deadline:
        st = c.status(rid)
        if st is not None and st["role"] != "leader":
            return st
        time.sleep(0.01)
    pytest.fail(f"node {rid} still claims leadership after {timeout}s: {st}")


def check_replays(c, acks):
    """Retry already acknowledged writes with their Idempotency-Key: the
    first result comes back (same index, Idempotent-Replayed: true) and the
    write is not applied again, even after the key was overwritten."""
    cl = c.client(budget=20.0)
    probe = c.wait_for_leader()
    dup0 = c.metric(probe, "agenda_sessions_duplicates_total")
    attempts_extra = 0
    for a in acks:
        r1 = cl.put(a.key, a.value, idem=a.idem)
        assert r1.replayed, f"retry of acknowledged {a.key} ({a.idem}) was not a replay"
        assert r1.index == a.index, (
            f"retry of {a.key} answered index {r1.index}, first answer was {a.index}")
        newer = cl.put(a.key, b"overwritten-" + a.value)
        assert not newer.replayed and newer.index > a.index
        r2 = cl.put(a.key, a.value, idem=a.idem)
        assert r2.replayed and r2.index == a.index, (
            f"second retry of {a.key}: replayed={r2.replayed} index={r2.index}")
        got = cl.get(a.key)
        assert got == b"overwritten-" + a.value, (
            f"retrying {a.key} with its old Idempotency-Key applied it again: "
            f"read {got!r}")
        attempts_extra += r1.attempts + newer.attempts + r2.attempts - 3
    c.wait_converged()
    dup1 = c.metric(probe, "agenda_sessions_duplicates_total")
    # Each replay is one log entry applied as a duplicate (plus any client
    # retries the requests needed).
    assert 2 * len(acks) <= dup1 - dup0 <= 2 * len(acks) + attempts_extra, (
        f"node {probe} counted {dup1 - dup0} duplicates for {2 * len(acks)} replays")


# ---- 1 --------------------------------------------------------------------------------

def test_kill_leader_while_writing(request, cluster):
    c = cluster
    leader = c.wait_for_leader()
    w = Writers(c, n=4, prefix="kl").start()
    try:
        w.wait_count(150)
        t_fault = time.monotonic()
        c.kill(leader)
        first = wait_first_ack_after(w, t_fault, exclude={leader})
        failover = first.t_ack - t_fault
        report_failover(request, failover, "kill -9 leader")
        new_leader = c.wait_for_leader(exclude={leader})
        assert new_leader != leader
        w.wait_count(w.count() + 100)
        c.start(leader)
        c.wait_http([leader])
        w.wait_count(w.count() + 100)
    finally:
        acks = w.stop()
    assert_unique_indexes(acks)
    c.wait_converged(timeout=20)
    verify_acked(c, acks)

    # Replays: writes that needed retries, those acknowledged around the
    # fault, and a few others.
    retried = [a for a in acks if a.attempts > 1]
    around = sorted(acks, key=lambda a: abs(a.t_ack - t_fault))[:10]
    subset = {a.key: a for a in retried[:15] + around + acks[:5]}
    check_replays(c, list(subset.values()))
    print(f"{len(acks)} writes acknowledged, {len(retried)} needed retries; "
          f"failover {failover:.3f}s")


# ---- 2 --------------------------------------------------------------------------------

def test_paused_leader_steps_down(request, cluster):
    c = cluster
    leader = c.wait_for_leader()
    others = c.others(leader)
    cl = c.client()
    old = cl.put("paused-key", b"old")
    write_many(c, 20, "pa")

    c.pause(leader)
    t_fault = time.monotonic()
    cl_maj = c.client(nodes=others, req_timeout=3.0)
    new = cl_maj.put("paused-key", b"new")
    failover = new.t_ack - t_fault
    report_failover(request, failover, "SIGSTOP leader")
    assert new.index > old.index
    new_leader = c.wait_for_leader(among=others)
    new_term = c.status(new_leader)["term"]
    more = write_many(c, 20, "pb", nodes=others)
    # Stay stopped well past the election timeout.
    election_timeout = c.raft["tick_ms"] * c.raft["election_ticks"] / 1000
    time.sleep(max(0.0, t_fault + max(1.0, 4 * election_timeout) - time.monotonic()))

    # Reads that reach the old leader while it is still stopped: the first
    # requests it may serve after SIGCONT.
    results = []
    lock = threading.Lock()

    def read_old():
        try:
            r = requests.get(c.url(leader, "/kv/paused-key"), timeout=(2.0, 10.0))
            out = (r.status_code, r.content)
        except requests.RequestException as e:
            out = (type(e).__name__, b"")
        with lock:
            results.append(("queued",) + out)

    queued = [threading.Thread(target=read_old, daemon=True) for _ in range(3)]
    for t in queued:
        t.start()
    time.sleep(0.2)
    c.resume(leader)
    t_cont = time.monotonic()
    sess = requests.Session()
    stepdown = None
    while time.monotonic() - t_cont < 1.0:
        try:
            r = sess.get(c.url(leader, "/kv/paused-key"), timeout=(1.0, 6.0))
            out = ("after", r.status_code, r.content)
        except requests.RequestException as e:
            out = ("after", type(e).__name__, b"")
        with lock:
            results.append(out)
        if stepdown is None:
            st = c.status(leader)
            if st is not None and st["role"] != "leader":
                stepdown = time.monotonic() - t_cont
        time.sleep(0.005)
    for t in queued:
        t.join(12)
    assert not any(t.is_alive() for t in queued)
    st = wait_role_not_leader(c, leader)
    if stepdown is None:
        stepdown = time.monotonic() - t_cont
    print(f"old leader {leader} stepped down {stepdown:.3f}s after SIGCONT: {st['role']} "
          f"term {st['term']}; queued reads: {[r[1] for r in results if r[0] == 'queued']}")

    bad = [r for r in results
           if not (r[1] in (421, 503) or (r[1] == 200 and r[2] == b"new"))]
    assert not bad, f"the old leader served stale or wrong linearizable reads: {bad}"
    assert len(results) >= 4

    # Settled: the old leader redirects (or serves the new value).
    r = requests.get(c.url(leader, "/kv/paused-key"), timeout=(1.0, 6.0))
    assert r.status_code == 421 or (r.status_code == 200 and r.content == b"new"), \
        (r.status_code, r.content)
    if r.status_code == 421:
        assert c.by_addr.get(r.headers.get("X-Raft-Leader")) in others
    assert st["term"] >= new_term, (st, new_term)
    c.wait_converged()
    verify_acked(c, [new] + more)
    print(f"{sum(1 for x in results if x[1] == 421)} redirects, "
          f"{sum(1 for x in results if x[1] == 200)} fresh reads, "
          f"{sum(1 for x in results if x[1] == 503)} unavailable")


# ---- 3 --------------------------------------------------------------------------------

def test_isolated_leader(request, cluster):
    ok, why = Firewall.usable()
    if not ok:
        pytest.skip(f"cannot isolate a loopback agent: {why}")
    c = cluster
    leader = c.wait_for_leader()
    followers = c.others(leader)
    before = write_many(c, 30, "ib")
    L = c.replicas[leader]
    F = [c.replicas[f] for f in followers]

    # Cut Raft traffic both ways, keep HTTP to the old leader: followers
    # connect to the leader's raft port (INPUT), the leader's process
    # (its own gid) connects to theirs (OUTPUT, owner match).
    c.firewall.add("INPUT", ["-i", "lo", "-p", "tcp", "--dport", str(L.raft_port)])
    c.firewall.add("OUTPUT", ["-o", "lo", "-p", "tcp", "-m", "owner",
                              "--gid-owner", str(L.gid), "-m", "multiport",
                              "--dports", ",".join(str(f.raft_port) for f in F)])
    t_fault = time.monotonic()

    # Writes to the isolated leader must never be acknowledged.
    sent = []  # (key, value, idem, outcome)
    lock = threading.Lock()

    def write_isolated(i):
        s = requests.Session()
        for j in range(3):
            key, idem = f"iso{i}-{j}", f"iso-{uuid.uuid4().hex}"
            value = f"{key}:{idem}".encode()
            try:
                r = s.put(c.url(leader, f"/kv/{key}"), data=value,
                          headers={"Idempotency-Key": idem}, timeout=(1.0, 8.0))
                outcome = (r.status_code, r.text[:200])
            except requests.RequestException as e:
                outcome = (type(e).__name__, "")
            with lock:
                sent.append((key, value, idem, outcome))

    iso = [threading.Thread(target=write_isolated, args=(i,), daemon=True)
           for i in range(3)]
    for t in iso:
        t.start()

    first = c.client(nodes=followers, req_timeout=3.0).put("maj-0", b"majority")
    failover = first.t_ack - t_fault
    report_failover(request, failover, "isolated leader")
    new_leader = c.wait_for_leader(among=followers)
    during = write_many(c, 40, "im", nodes=followers)

    # The old leader loses its quorum and must not serve linearizable reads:
    # it never saw maj-0.
    st = wait_role_not_leader(c, leader, timeout=5.0)
    print(f"isolated leader {leader} stepped down: role {st['role']} term {st['term']}")
    r = requests.get(c.url(leader, "/kv/maj-0"), timeout=(1.0, 8.0))
    assert r.status_code in (421, 503), (
        f"isolated old leader answered a linearizable read: {r.status_code} {r.text}")

    for t in iso:
        t.join(30)
    assert not any(t.is_alive() for t in iso)
    acked = [s for s in sent if s[3][0] == 200]
    assert not acked, f"the isolated leader acknowledged writes: {acked}"
    assert len(sent) == 9
    print("isolated writes:", sorted({str(s[3][0]) for s in sent}))

    c.firewall.clear()
    t_heal = time.monotonic()
    c.wait_converged(timeout=20)
    print(f"healed: converged {time.monotonic() - t_heal:.3f}s after removing the rules")
    print(f"leader after healing: {c.wait_for_leader()} (elected during the "
          f"partition: {new_leader})")

    # Unacknowledged writes: absent, or present once.  Retrying with the same
    # key completes them exactly once (a replay iff already applied).
    cl = c.client()
    for key, value, idem, outcome in sent:
        v = cl.get(key)
        assert v in (None, value), f"{key}: unexpected value {v!r}"
        again = cl.put(key, value, idem=idem)
        assert again.replayed == (v is not None), (
            f"{key} (first outcome {outcome}) was {'present' if v else 'absent'} "
            f"but the retry answered replayed={again.replayed}")
        assert cl.get(key) == value
    c.wait_converged()
    verify_acked(c, before + [first] + during)


# ---- 4 --------------------------------------------------------------------------------

def test_restart_and_wipe(request, cluster):
    c = cluster
    leader = c.wait_for_leader()
    f1, f2 = c.others(leader)
    acks = write_many(c, 60, "ra")

    # Catch up by log.
    t0 = time.monotonic()
    assert c.stop(f1) == 0
    acks += write_many(c, 60, "rb")
    c.start(f1)
    c.wait_http([f1])
    c.wait_converged(timeout=20)
    print(f"follower {f1} caught up by log {time.monotonic() - t0:.3f}s after its stop")
    assert c.metric(f1, "agenda_raft_snapshots_received_total") == 0
    verify_acked(c, acks)

    # Catch up by snapshot: an empty replica after log compaction.
    leader = c.wait_for_leader()
    victim = f2 if f2 != leader else f1
    sent0 = c.metric(leader, "agenda_raft_snapshots_sent_total")
    assert c.stop(victim) == 0
    c.wipe(victim)
    threshold = c.raft["snapshot_threshold"]
    acks += write_many(c, 2 * threshold + 50, "rc")
    leader = c.wait_for_leader(exclude={victim})
    deadline = time.monotonic() + 10
    while c.status(leader)["first_index"] <= 1:
        assert time.monotonic() < deadline, (
            f"the leader did not compact its log: {c.status(leader)}")
        acks += write_many(c, 20, f"rd{int(time.monotonic() * 1000)}")
    first_index = c.status(leader)["first_index"]
    t1 = time.monotonic()
    c.start(victim)
    c.wait_http([victim])
    c.wait_converged(timeout=30)
    print(f"wiped follower {victim} caught up {time.monotonic() - t1:.3f}s after its "
          f"restart (leader first_index {first_index})")
    sent1 = c.metric(c.wait_for_leader(), "agenda_raft_snapshots_sent_total")
    received = c.metric(victim, "agenda_raft_snapshots_received_total")
    assert sent1 > sent0 or received >= 1, (
        f"no snapshot was sent ({sent0} → {sent1}) or received ({received})")
    st = c.status(victim)
    assert st["snapshot_index"] > 0 and st["first_index"] > 1, st
    verify_acked(c, acks)

    # Every replica still knows the writes made before its restart (f1
    # rebuilt its sessions index from its own table) or before its wipe
    # (the victim, from the snapshot's): their retries are replays on the
    # leader, and a replica that applied one again would hold the old value
    # and no longer converge (check_replays waits for equal digests).
    for rid in c.ids:
        assert c.metric(rid, "agenda_sessions_remembered") >= len(acks), rid
    check_replays(c, acks[:20] + acks[60:80])


# ---- 5 --------------------------------------------------------------------------------

def test_kill_all_and_restart(request, cluster):
    c = cluster
    c.wait_for_leader()
    w = Writers(c, n=4, prefix="ka").start()
    try:
        w.wait_count(150)
        t_fault = time.monotonic()
        c.kill_all()
        before_kill = w.count()
        time.sleep(0.3)
        for rid in c.ids:
            c.start(rid)
        c.wait_http(c.ids)
        first = wait_first_ack_after(w, t_fault + 0.3, exclude=())
        failover = first.t_ack - t_fault
        report_failover(request, failover, "kill -9 all, restart after 0.3s")
        c.wait_for_leader()
        w.wait_count(w.count() + 100)
    finally:
        acks = w.stop()
    assert_unique_indexes(acks)
    assert before_kill >= 150
    c.wait_converged(timeout=20)
    verify_acked(c, acks)


# ---- 6 --------------------------------------------------------------------------------

def wait_new_leader(c, old, old_term, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for rid, s in c.statuses(c.others(old)).items():
            if s["role"] == "leader" and s["term"] > old_term:
                return rid
        time.sleep(0.005)
    pytest.fail(f"no new leader within {timeout}s after leaving {old}: {c.statuses()}")


def test_graceful_transfer(request, cluster):
    c = cluster
    l1 = c.wait_for_leader()
    w = Writers(c, n=3, prefix="gt").start()
    try:
        w.wait_count(60)
        term1 = c.status(l1)["term"]
        t0 = time.monotonic()
        r = requests.post(c.url(l1, "/transfer-leader"), timeout=5)
        assert r.status_code == 202, (r.status_code, r.text)
        l2 = wait_new_leader(c, l1, term1)
        transfer = time.monotonic() - t0
        first = wait_first_ack_after(w, t0, exclude={l1})
        report_failover(request, first.t_ack - t0, "transfer-leader")
        print(f"POST /transfer-leader: node {l2} leads after {transfer:.3f}s")
        assert transfer < 3.0
        r = requests.post(c.url(l1, "/transfer-leader"), timeout=5)
        assert r.status_code == 421, "a follower accepted /transfer-leader"

        w.wait_count(w.count() + 60)
        term2 = c.status(l2)["term"]
        t1 = time.monotonic()
        c.replicas[l2].proc.send_signal(15)
        l3 = wait_new_leader(c, l2, term2)
        handover = time.monotonic() - t1
        rc = c._wait_exit(l2, 8)
        assert rc == 0, f"node {l2} exit status after SIGTERM: {rc}"
        first = wait_first_ack_after(w, t1, exclude={l2})
        report_failover(request, first.t_ack - t1, "SIGTERM leader")
        print(f"SIGTERM: node {l3} leads after {handover:.3f}s")
        assert handover < 3.0
        w.wait_count(w.count() + 60)
        c.start(l2)
        c.wait_http([l2])
        w.wait_count(w.count() + 60)
    finally:
        acks = w.stop()
    assert_unique_indexes(acks)
    c.wait_converged(timeout=20)
    verify_acked(c, acks)


# ---- one process per replica's storage -------------------------------------------------

def test_a_second_agent_on_a_replicas_storage_refuses_to_start(cluster):
    """Two processes on one replica's storage would be two voters with one
    identity (a container still stopping while its replacement starts on
    the same volume).  A second agent pointed at a running replica's data
    directory (with another replica's ports, free) exits at once, saying
    why, and the replica it would have doubled goes on serving."""
    c = cluster
    leader = c.wait_for_leader()
    f1, f2 = c.others(leader)
    acks = write_many(c, 20, "la")
    assert c.stop(f2) == 0          # its ports are the impostor's
    r = subprocess.run(
        [str(AGENT), "--config", str(c.agent_config(f2)),
         "--data-dir", str(c.replicas[f1].data_dir)],
        stdin=subprocess.DEVNULL, capture_output=True, text=True,
        timeout=20)
    assert r.returncode != 0, r.stdout + r.stderr
    assert "agent.lock" in r.stdout + r.stderr, r.stdout + r.stderr
    assert c.running(f1)
    acks += write_many(c, 20, "lb")
    c.start(f2)
    c.wait_http([f2])
    c.wait_converged(timeout=20)
    verify_acked(c, acks)


def test_an_agent_out_of_descriptors_pauses_accepting_instead_of_spinning(
        cluster):
    """Connections to the HTTP API past the agent's file limit: accept()
    fails (EMFILE) and the listening socket stays readable, so an agent
    that kept calling accept() would spin at full CPU with its log
    flooded.  It pauses instead, and serves again once descriptors are
    free."""
    c = cluster
    leader = c.wait_for_leader()
    victim = c.others(leader)[0]
    assert c.stop(victim) == 0
    c.wrappers[victim] = ["prlimit", "--nofile=48:48"]
    c.start(victim)
    c.wait_http([victim])
    c.wait_converged(timeout=20)
    pid = c.replicas[victim].proc.pid
    idle = []
    try:
        for _ in range(80):     # far more than the descriptors left
            idle.append(socket.create_connection(
                ("127.0.0.1", c.replicas[victim].http_port), timeout=5))
        time.sleep(0.5)

        def cpu():
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf(
                "SC_CLK_TCK")
        t0, c0 = time.monotonic(), cpu()
        time.sleep(2.0)
        share = (cpu() - c0) / (time.monotonic() - t0)
        assert share < 0.3, f"the agent used {share:.0%} of a CPU"
        assert c.log_tail(victim, 400).count("accept failed") < 60
    finally:
        for s in idle:
            s.close()
    deadline = time.monotonic() + 10
    while c.status(victim) is None:
        assert time.monotonic() < deadline, "it does not serve again"
        time.sleep(0.1)
    acks = write_many(c, 10, "fd")
    c.wait_converged(timeout=20)
    verify_acked(c, acks)
