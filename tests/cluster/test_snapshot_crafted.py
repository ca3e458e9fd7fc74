"""A replica survives snapshots that would crash LMDB (raft_agent/
snapshot_vet.h): a fake peer speaks the peer protocol to a running agent
and sends it LMDB files, with a correct checksum, damaged as a crafted
snapshot could be: a leaf page's first record claiming a 2 GB value
(which LMDB hands out without comparing it with the page: the check
refuses it), or a branch page without keys (LMDB aborts: the checking
child dies, not the agent).  Each is refused with SNAP_ACK FAILED (or
accepted, when the damaged page is one of the free pages of the replica
environment used as the snapshot, which nobody reads); the agent keeps
running, installs nothing, and still accepts a sound snapshot
afterwards."""
from __future__ import annotations

import itertools
import socket
import struct
import threading
import time

from conftest import Cluster, write_many

MAGIC, VERSION = 0xA6E1, 1
HELLO, RAFT_MSG, SNAP_CHUNK, SNAP_ACK = 1, 2, 3, 4
RAFT_MSG_SNAPSHOT = 9
DONE, FAILED = 1, 2
PAGE = 4096
# LMDB's page layout (lmdb.h's MDB_page and MDB_node, little-endian)
PAGE_FLAGS, PAGE_LOWER, PAGE_PTRS = 10, 12, 16
P_BRANCH, P_LEAF = 0x01, 0x02
P_NOT_NODES = 0x04 | 0x08 | 0x20  # overflow, meta, LEAF2
NODE_FLAGS, F_SUBDATA = 4, 0x02  # a database's record: fixed size read


def oversized_values(env: bytes):
    """env with, in turn, each leaf page's first record claiming a value of
    0x7fffffff bytes (but a database's own record, whose size LMDB never
    reads)."""
    for p in range(2, len(env) // PAGE):
        base = p * PAGE
        flags, lower = struct.unpack_from("<HH", env, base + PAGE_FLAGS)
        if not flags & P_LEAF or flags & P_NOT_NODES or lower <= PAGE_PTRS:
            continue
        node, = struct.unpack_from("<H", env, base + PAGE_PTRS)
        if not PAGE_PTRS <= node <= PAGE - 8:
            continue
        node_flags, = struct.unpack_from("<H", env, base + node + NODE_FLAGS)
        if node_flags & F_SUBDATA:
            continue
        bad = bytearray(env)
        struct.pack_into("<HH", bad, base + node, 0xFFFF, 0x7FFF)
        yield bytes(bad)


def empty_branches(env: bytes):
    """env with, in turn, each branch page saying it has no keys."""
    for p in range(2, len(env) // PAGE):
        base = p * PAGE
        flags, = struct.unpack_from("<H", env, base + PAGE_FLAGS)
        if not flags & P_BRANCH:
            continue
        bad = bytearray(env)
        struct.pack_into("<H", bad, base + PAGE_LOWER, PAGE_PTRS)
        yield bytes(bad)


def _crc32c_table() -> list[int]:
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_CRC_TABLE = _crc32c_table()


def crc32c(data: bytes, crc: int = 0) -> int:
    c = crc ^ 0xFFFFFFFF
    t = _CRC_TABLE
    for b in data:
        c = t[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


def frame(kind: int, payload: bytes) -> bytes:
    head = struct.pack("<HBBI", MAGIC, VERSION, kind, len(payload))
    return head + struct.pack("<I", crc32c(head + payload)) + payload


def hello(cluster: str, shard: str, node: int) -> bytes:
    c, s = cluster.encode(), shard.encode()
    return frame(HELLO, bytes([len(c)]) + c + bytes([len(s)]) + s
                 + struct.pack("<I", node))


def whole_file_chunk(index: int, term: int, data: bytes) -> bytes:
    return frame(SNAP_CHUNK,
                 struct.pack("<QQQQIB", index, term, len(data), 0,
                             crc32c(data), 1) + data)


def snapshot_msg(sender: int, to: int, term: int, index: int,
                 snap_term: int) -> bytes:
    """The core's SNAPSHOT message: install (index, snap_term)."""
    return frame(RAFT_MSG, struct.pack(
        "<BIIQQQQQBQQQQI", RAFT_MSG_SNAPSHOT, sender, to, term, index,
        snap_term, index, 0, 0, 0, 0, index, snap_term, 0))


class FakePeer:
    """Node 2 of the shard, played by the test: it connects to the agent
    (which then accepts its chunks) and listens on node 2's port, where the
    agent connects back to send its acks."""

    def __init__(self, c: Cluster, rid: int, me: int):
        self.cluster, self.rid = c, rid
        self.acks: list[tuple[int, int]] = []  # (index, status)
        self.dialled = 0  # connections the agent made to us
        self.cond = threading.Condition()
        self.srv = socket.create_server(
            ("127.0.0.1", c.replicas[me].raft_port))
        self.srv.settimeout(0.2)
        self.stopping = False
        self.reader = threading.Thread(target=self._accept, daemon=True)
        self.reader.start()
        self.out = socket.create_connection(
            ("127.0.0.1", c.replicas[rid].raft_port), timeout=5)
        self.out.sendall(hello("agenda-test", Cluster.SHARD, me))
        # acks travel on the agent's own connection to us: wait for it
        with self.cond:
            assert self.cond.wait_for(lambda: self.dialled > 0, 30), \
                "the agent never connected to the fake peer"

    def _accept(self) -> None:
        while not self.stopping:
            try:
                conn, _ = self.srv.accept()
            except (socket.timeout, OSError):
                continue
            with self.cond:
                self.dialled += 1
                self.cond.notify_all()
            threading.Thread(target=self._read, args=(conn,),
                             daemon=True).start()

    def _read(self, conn: socket.socket) -> None:
        buf = b""
        conn.settimeout(0.2)
        while not self.stopping:
            try:
                more = conn.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                return
            if not more:
                return
            buf += more
            while len(buf) >= 12:
                _, _, kind, n = struct.unpack_from("<HBBI", buf)
                if len(buf) < 12 + n:
                    break
                payload, buf = buf[12:12 + n], buf[12 + n:]
                if kind == SNAP_ACK:
                    index, _, status = struct.unpack("<QQB", payload)
                    with self.cond:
                        self.acks.append((index, status))
                        self.cond.notify_all()

    def send(self, index: int, term: int, data: bytes,
             timeout: float = 30.0, before: bytes = b"") -> int:
        """Sends data as a whole snapshot (after the frames before, in the
        same write); the status the agent answers."""
        with self.cond:
            seen = len(self.acks)
        self.out.sendall(before + whole_file_chunk(index, term, data))
        deadline = time.monotonic() + timeout
        with self.cond:
            while len(self.acks) == seen:
                left = deadline - time.monotonic()
                assert left > 0, "the agent did not answer the snapshot"
                assert self.cluster.running(self.rid), \
                    "the agent died:\n" + self.cluster.log_tail(self.rid)
                self.cond.wait(min(left, 0.5))
            return self.acks[seen][1]

    def close(self) -> None:
        self.stopping = True
        self.out.close()
        self.srv.close()


def test_crafted_snapshots_crash_only_the_checking_child(cluster_factory):
    c: Cluster = cluster_factory()
    leader, source, (index, term), sound, _ = source_snapshot(c)
    # the old leader alone, and the test in the place of the source
    c.start(leader)
    c.wait_http([leader])
    peer = FakePeer(c, leader, source)
    try:
        # the control: the sound file is accepted (and the assumed header
        # right), then a junk transfer replaces it, refused
        assert peer.send(index, term, sound) == DONE
        assert peer.send(index + 1, term + 1, b"\x5a" * 3 * PAGE) == FAILED
        # a few of each (the agent forks a check at most every 100 ms)
        tried = 0
        for bad in (*itertools.islice(oversized_values(sound), 8),
                    *itertools.islice(empty_branches(sound), 8)):
            tried += 1
            status = peer.send(index, term, bad)
            assert status in (DONE, FAILED), status
            assert c.running(leader), c.log_tail(leader)
            if status == DONE:  # a page nobody reads: make room again
                assert peer.send(index + 1, term + 1,
                                 b"\x5a" * 3 * PAGE) == FAILED
        log = c.replicas[leader].log_path.read_text(errors="replace")
        refused = log.count("refused: stored data is corrupt")
        crashes = log.count("crashed the checking process (signal 6)")
        assert tried >= 4 and refused >= 2 and crashes >= 1, \
            (tried, refused, crashes, log)
        assert c.running(leader)
        assert c.metric(leader, "agenda_raft_snapshots_received_total") == 0
        assert peer.send(index, term, sound) == DONE
    finally:
        peer.close()


def source_snapshot(c: Cluster) -> tuple[int, int, int, bytes, dict]:
    """A shard with some writes, stopped: (its old leader, the follower
    whose environment serves as the snapshot, that snapshot's applied
    index and term, the file, that follower's digest)."""
    c.start_all()
    leader = c.wait_for_leader()
    write_many(c, 300, "crafted")  # enough for branch pages
    c.wait_converged()
    # a follower's environment holds what a snapshot holds, its applied
    # state (its last applied entry is of the leader's term); it stops
    # first, so that no later entry reaches it
    source = c.others(leader)[0]
    st, digest = c.status(source), c.digest(source)
    assert c.stop(source) == 0
    for rid in c.others(source):
        assert c.stop(rid) == 0
    env = (c.replicas[source].data_dir / "data.mdb").read_bytes()
    assert len(env) % PAGE == 0 and len(env) > 4 * PAGE
    return leader, source, (st["applied_index"], st["term"]), env, digest


def test_a_snapshot_the_core_took_is_installed_whatever_comes_next(
        cluster_factory):
    """Once a replica's core has stepped the SNAPSHOT message for a
    received file, the install that follows in the next ready batch must
    find that file: a chunk of another transfer arriving right after the
    message (here in the same write, so in the same turn of the event
    loop) is refused instead of replacing it.  The replica, wiped before,
    then holds exactly the state of the snapshot's source."""
    c: Cluster = cluster_factory()
    leader, source, (index, term), env, digest = source_snapshot(c)
    target = next(r for r in c.others(source) if r != leader)
    c.wipe(target)
    c.start(target)
    c.wait_http([target])
    peer = FakePeer(c, target, source)
    try:
        assert peer.send(index, term, env) == DONE
        take = snapshot_msg(source, target, term, index, term)
        assert peer.send(index + 1, term + 1, b"\x5a" * 3 * PAGE,
                         before=take) == FAILED
        deadline = time.monotonic() + 20
        while c.metric(target, "agenda_raft_snapshots_received_total") < 1:
            assert c.running(target), c.log_tail(target)
            assert time.monotonic() < deadline, c.log_tail(target)
            time.sleep(0.05)
        st = c.status(target)
        assert st["applied_index"] == index, st
        assert c.digest(target) == digest
    finally:
        peer.close()


def test_a_follower_that_keeps_refusing_snapshots_is_sent_fewer(
        cluster_factory):
    """A wiped follower that cannot take a snapshot (here the file its
    check writes cannot be created: a directory has its name) refuses
    every one.  The leader sends it the next one only after a wait that
    doubles with each refusal (0.5 s, 1 s, 2 s, ...), not at every
    heartbeat; once the follower can take it again, it catches up."""
    c: Cluster = cluster_factory(raft={"snapshot_threshold": 60})
    c.start_all()
    leader = c.wait_for_leader()
    victim = c.others(leader)[0]
    assert c.stop(victim) == 0
    c.wipe(victim)
    write_many(c, 200, "refusing")
    deadline = time.monotonic() + 10
    while c.status(leader)["first_index"] <= 1:
        assert time.monotonic() < deadline, c.status(leader)
        write_many(c, 20, f"more{int(time.monotonic() * 1000)}")
    blocker = c.replicas[victim].data_dir / "snapshot-vetted.mdb.tmp"
    blocker.mkdir(parents=True)
    c.start(victim)
    c.wait_http([victim])
    time.sleep(8)
    log = c.replicas[victim].log_path.read_text(errors="replace")
    refused = log.count("refused:")
    # 0.5 + 1 + 2 + 4 s of waits fit in 8 s: at most 5 transfers (the
    # heartbeats would have made it dozens)
    assert 2 <= refused <= 6, (refused, log[-3000:])
    assert c.metric(victim, "agenda_raft_snapshots_received_total") == 0
    blocker.rmdir()
    c.wait_converged(timeout=40)
    assert c.metric(victim, "agenda_raft_snapshots_received_total") >= 1


def test_a_restart_removes_what_snapshot_transfers_left(cluster: Cluster):
    """Copies made to send a snapshot, and files of one being received,
    are as large as the database: what a crash left of them is removed
    when the replica starts again, not left to fill the disk."""
    rid = cluster.ids[0]
    cluster.kill(rid)
    data = cluster.replicas[rid].data_dir
    names = ["snapshot-send.mdb", "snapshot-send.mdb.tmp",
             "snapshot-recv.mdb", "snapshot-vetted.mdb",
             "snapshot-vetted.mdb.tmp"]
    for name in names:
        (data / name).write_bytes(b"\0" * 65536)
    cluster.start(rid)
    cluster.wait_http([rid])
    left = [name for name in names if (data / name).exists()]
    assert not left, f"left in {data}: {left}"
    assert (data / "data.mdb").exists()
