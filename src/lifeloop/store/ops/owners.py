"""Who holds a claim: a dispatcher process named by host, process id and process start time.

An outbox claim records its owner, so a dispatcher that finds claims of a process that is gone on its
own host can take them back at once instead of waiting for the lease to run out. A process id alone is
not enough — the operating system reuses ids — so the owner also carries the process's start time: the
same pid with another start time is another process, and the claim's owner is dead.

Only claims of *this* host are judged; another host's process cannot be seen from here, so its claims
still wait out their lease. Hosts are told apart by host name: give every dispatcher machine (or
container) a host name of its own.
"""

from __future__ import annotations

import datetime as dt
import os
import socket
from dataclasses import dataclass
from functools import cache

# /proc/stat's boot time is "now - uptime" rounded to a second and can move by a second between reads
START_TOLERANCE = dt.timedelta(seconds=2)


@dataclass(frozen=True)
class Owner:
    """A dispatcher process: host name, process id, and when the process started (None where unknown)."""

    host: str
    pid: int
    started: dt.datetime | None = None

    @property
    def label(self) -> str:
        """``host:pid``, as messages and ``claimed_by`` show it."""
        return f"{self.host}:{self.pid}"

    @classmethod
    def current(cls) -> Owner:
        """This process."""
        return cls(host_name(), os.getpid(), process_start(os.getpid()))


def host_name() -> str:
    """This machine's name, as claims record it (at most 64 characters)."""
    return socket.gethostname()[:64]


@cache
def _boot_time() -> int | None:
    try:
        with open("/proc/stat", encoding="ascii") as f:
            for line in f:
                if line.startswith("btime "):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def process_start(pid: int) -> dt.datetime | None:
    """When process ``pid`` started (UTC), from /proc on Linux; None if it is gone (or a zombie) or not Linux."""
    boot = _boot_time()
    if boot is None:
        return None
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            raw = f.read()
    except OSError:
        return None
    # the command name (field 2) may hold spaces and parentheses: fields after the last ')' are fixed
    fields = raw[raw.rfind(")") + 2:].split()
    if fields[0] in ("Z", "X"):   # a zombie (killed, not yet reaped) or dead: gone for our purposes
        return None
    ticks = int(fields[19])   # field 22 of proc(5): start time in clock ticks since boot
    hz = os.sysconf("SC_CLK_TCK")
    return dt.datetime.fromtimestamp(boot, dt.UTC) + dt.timedelta(microseconds=ticks * 1_000_000 // hz)


def is_alive(owner: Owner) -> bool:
    """Whether ``owner`` (a process of this host) still runs: its pid exists and started when recorded."""
    if owner.pid <= 0:
        return False
    try:
        os.kill(owner.pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # it exists, under another user
    if owner.started is None:
        return True
    started = process_start(owner.pid)
    if started is None:
        return _boot_time() is None  # no /proc here: the pid exists, that is all we can know
    return abs(started - owner.started) <= START_TOLERANCE
