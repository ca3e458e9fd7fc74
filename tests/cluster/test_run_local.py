"""config/run-local, the README's run command, with the agents only
(AGENDA_EDGE=0; the edge is covered by tests/edge) on free ports, in a var
directory of its own (AGENDA_VAR_DIR): it starts every agent of the
topology and stays in the foreground; a second run with the same var
directory is refused while the first runs; `--stop` from elsewhere ends it
and everything it started; and `--stop` after a killed run stops that
run's agents by their pid files, but never a process whose PID merely
matches one (a PID reused since, even by a process called raft_agent).
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from conftest import AGENT, REPO, free_ports

RUN_LOCAL = REPO / "config" / "run-local"


@pytest.fixture
def local(tmp_path):
    """The environment of a run: its topology (the repository's, on free
    ports), var and data directories under tmp_path."""
    topo = json.loads((REPO / "config" / "topology.json").read_text())
    replicas = [r for s in topo["shards"] for r in s["replicas"]]
    ports = iter(free_ports(2 * len(replicas)))
    for r in replicas:
        r["http_port"], r["raft_port"] = next(ports), next(ports)
    path = tmp_path / "topology.json"
    path.write_text(json.dumps(topo))
    env = dict(os.environ, AGENDA_TOPOLOGY=str(path), AGENDA_EDGE="0",
               AGENDA_VAR_DIR=str(tmp_path / "var"),
               AGENDA_DATA_DIR=str(tmp_path / "data"))
    started: list[subprocess.Popen] = []
    yield {"env": env, "var": tmp_path / "var", "n": len(replicas),
           "started": started}
    # whatever a failed test left: stopped by PID only — run-local's own
    # --stop, then any agent still running from this test's configs (one
    # whose pid file a failure overwrote)
    subprocess.run([str(RUN_LOCAL), "--stop"], env=env,
                   capture_output=True, timeout=60)
    for p in started:
        if p.poll() is None:
            p.kill()
            p.wait(10)
    for pid in ours(tmp_path):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def ours(root: Path) -> list[int]:
    """PIDs of the processes whose command line names a file under root."""
    found = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            cmd = (d / "cmdline").read_bytes()
        except OSError:
            continue
        if str(root).encode() in cmd:
            found.append(int(d.name))
    return found


def run(local) -> subprocess.Popen:
    p = subprocess.Popen([str(RUN_LOCAL), str(AGENT.parent)],
                         env=local["env"], stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         text=True, start_new_session=True)
    local["started"].append(p)
    return p


def agent_pids(local) -> dict[str, int]:
    out = {}
    for f in (local["var"] / "run").glob("*.pid"):
        out[f.stem] = int(f.read_text().split()[0])
    return out


def wait_up(local, p: subprocess.Popen) -> None:
    """Until run-local prints its table (every agent answered /health)."""
    lines = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = p.stdout.readline()
        if not line:
            break
        lines.append(line)
        if "Ctrl-C stops" in line:
            return
    pytest.fail("run-local did not come up:\n" + "".join(lines[-40:]))


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def stop(local) -> subprocess.CompletedProcess:
    return subprocess.run([str(RUN_LOCAL), "--stop"], env=local["env"],
                          capture_output=True, text=True, timeout=60)


def stops_cleanly(local, p: subprocess.Popen) -> None:
    """--stop asks the running run-local p, which stops its agents and
    exits 0 (what both printed, should it not)."""
    s = stop(local)
    assert s.returncode == 0, s.stdout + s.stderr
    rc = p.wait(30)
    assert rc == 0, ("--stop said:\n" + s.stdout + s.stderr
                     + "\nrun-local said, last:\n" + p.stdout.read()[-3000:])
    assert "asking the running run-local" in s.stdout, s.stdout


def test_run_refuses_a_second_run_and_stops_on_request(local):
    first = run(local)
    wait_up(local, first)
    pids = agent_pids(local)
    assert len(pids) == local["n"] and all(map(alive, pids.values()))

    second = subprocess.run([str(RUN_LOCAL), str(AGENT.parent)],
                            env=local["env"], capture_output=True,
                            text=True, timeout=60)
    assert second.returncode != 0
    assert "another run-local" in second.stderr or \
        "still running" in second.stderr, second.stderr
    assert agent_pids(local) == pids and all(map(alive, pids.values()))

    r = stop(local)
    assert r.returncode == 0, r.stdout + r.stderr
    assert first.wait(30) == 0
    deadline = time.monotonic() + 10
    while any(map(alive, pids.values())) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(map(alive, pids.values()))
    assert agent_pids(local) == {}


def test_stop_after_a_killed_run_spares_reused_pids(local):
    first = run(local)
    wait_up(local, first)
    pids = agent_pids(local)
    # the run dies without cleaning up: its agents stay, pid files too
    os.kill(first.pid, signal.SIGKILL)
    first.wait(10)
    assert all(map(alive, pids.values()))

    # two pid files now name other processes: one unrelated, one even
    # called raft_agent (argv[0]), both started after the file was written
    run_dir = local["var"] / "run"
    decoys = [subprocess.Popen(["sleep", "60"]),
              subprocess.Popen(["bash", "-c", "exec -a raft_agent sleep 60"])]
    local["started"].extend(decoys)
    time.sleep(0.2)
    names = sorted(pids)[:2]
    for name, d in zip(names, decoys):
        start = (run_dir / f"{name}.pid").read_text().split()[1]
        (run_dir / f"{name}.pid").write_text(f"{d.pid} {start}\n")
    with open(f"/proc/{decoys[1].pid}/cmdline", "rb") as f:
        assert f.read().split(b"\0")[0] == b"raft_agent"

    r = stop(local)
    assert r.returncode == 0, r.stdout + r.stderr
    assert all(d.poll() is None for d in decoys), r.stdout
    # the agents whose pid files were replaced are orphans now: stopped
    # here by PID, as any test stops what it started
    for name in names:
        os.kill(pids[name], signal.SIGTERM)
    deadline = time.monotonic() + 10
    while any(map(alive, pids.values())) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(map(alive, pids.values()))
    for d in decoys:
        d.kill()
        d.wait(10)


def test_the_var_directory_layout(local):
    """What the README and run-local's header promise is where it is."""
    p = run(local)
    wait_up(local, p)
    var: Path = local["var"]
    assert (var / "run" / "run-local.supervisor").read_text().strip() == \
        str(p.pid)
    assert len(list((var / "agents").glob("*.json"))) == local["n"]
    assert len(list((var / "log").glob("*.log"))) == local["n"]
    for f in (var / "run").glob("*.pid"):
        pid, start = f.read_text().split()
        with open(f"/proc/{pid}/stat") as st:
            assert st.read().rsplit(")", 1)[1].split()[19] == start
    stops_cleanly(local, p)


def test_two_runs_started_together_make_one(local):
    """Both would find no pid file (they are written once the configs are
    generated) and start every agent twice over: the var directory's lock
    lets one through, and tells the other why."""
    a, b = run(local), run(local)
    codes = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not codes:
        codes = [p.returncode for p in (a, b) if p.poll() is not None]
        time.sleep(0.05)
    assert codes == [1], codes
    loser, winner = (a, b) if a.poll() is not None else (b, a)
    assert "another run-local is starting or running" in loser.stdout.read()
    wait_up(local, winner)
    pids = agent_pids(local)
    assert len(pids) == local["n"] and all(map(alive, pids.values()))
    stops_cleanly(local, winner)
