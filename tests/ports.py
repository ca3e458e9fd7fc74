"""Listening ports for the processes a test starts (agents, nginx).

Binding port 0 hands out a port of the kernel's ephemeral range, the range
every outgoing connection also takes its local port from: an agent dialing
its peers, nginx its upstreams, a test's own clients.  Between the choice
and the listen() one of those connections could take the port, and the
process would fail with "Address already in use" (seen once in CI: nginx
after the agents of its stack had connected to each other).  So the ports
come from below that range, where no connect() lands, each checked free by
binding it.
"""
from __future__ import annotations

import random
import socket
from pathlib import Path

LOWEST = 10000


def _ephemeral_low() -> int:
    try:
        text = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text()
        return int(text.split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_ports(n: int, reserved=()) -> list[int]:
    """n distinct ports below the ephemeral range that were free a moment
    ago, none of them in reserved."""
    high = _ephemeral_low() - 1
    if high - LOWEST < 4 * n:
        raise RuntimeError(f"too few ports below {high + 1} for {n}")
    rng = random.SystemRandom()
    ports: list[int] = []
    while len(ports) < n:
        p = rng.randint(LOWEST, high)
        if p in reserved or p in ports:
            continue
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            s.bind(("127.0.0.1", p))
        except OSError:
            continue
        finally:
            s.close()
        ports.append(p)
    return ports
