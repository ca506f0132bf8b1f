"""A real Ray cluster on this machine, for tests: `ray start --head` and `ray start --address` nodes.

Every node gets its own free ports and temporary directory (so clusters of tests running side by side
do not collide), token authentication with a token in the cluster's own HOME (`home/.ray/auth_token`,
the default place), and `src/` on its PYTHONPATH (Ray workers import this nasnet). Each `ray start`
runs in a new session; its daemons and workers stay in that session, so a node is stopped by
killing exactly that session's processes. Never `ray stop`: it stops every Ray on the machine.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RAY_VARS = ("RAY_ADDRESS", "RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH")


def free_ports(n: int) -> list[int]:
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def session_pids(sid: int) -> list[int]:
    """Live (not zombie) processes of session `sid`."""
    out = []
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[3]) == sid and fields[0] not in "ZX":
            out.append(int(entry.name))
    return out


class Cluster:
    """Nodes started with `ray start`; `stop()` kills them all (call it in a finalizer)."""

    def __init__(self):
        # short: Ray's unix sockets live under the temporary directory (108-byte path limit)
        self.root = Path(tempfile.mkdtemp(prefix="nr", dir="/tmp"))
        self.home = self.root / "home"
        (self.home / ".ray").mkdir(parents=True)
        (self.home / ".ray" / "auth_token").write_text(secrets.token_hex(32))
        self.sessions: list[int] = []
        self.port: int | None = None
        self.logs: list[Path] = []

    def env(self, **extra: str) -> dict:
        """The environment of a process on this cluster's machine: its HOME, no RAY_* settings, this
        checkout's src/ first on PYTHONPATH."""
        env = {k: v for k, v in os.environ.items() if k not in RAY_VARS}
        path = os.environ.get("PYTHONPATH")
        env.update(HOME=str(self.home), RAY_USAGE_STATS_ENABLED="0",
                   PYTHONPATH=str(ROOT / "src") + (os.pathsep + path if path else ""), **extra)
        return env

    def _start(self, args: list[str], timeout: float) -> int:
        n = len(self.sessions)
        tmp = self.root / f"n{n}"
        log = self.root / f"start{n}.log"
        self.logs.append(log)
        agent, grpc, metrics, runtime_env = free_ports(4)
        cmd = [sys.executable, "-m", "ray.scripts.scripts", "start", *args, "--temp-dir", str(tmp),
               "--node-ip-address", "127.0.0.1", "--disable-usage-stats", "--object-store-memory", str(100 * 2**20),
               "--min-worker-port", "0", "--max-worker-port", "0", "--dashboard-agent-listen-port", str(agent),
               "--dashboard-agent-grpc-port", str(grpc), "--metrics-export-port", str(metrics),
               "--runtime-env-agent-port", str(runtime_env)]
        # Every node: token authentication (as Ray's docs say: RAY_AUTH_MODE=token on each node, same token).
        env = self.env(RAY_AUTH_MODE="token")
        with open(log, "w") as out:
            proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        self.sessions.append(proc.pid)          # a new session's id is its leader's pid
        try:
            rc = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            rc = None
        if rc != 0:
            raise RuntimeError(f"ray start {' '.join(args)} failed ({rc}):\n{log.read_text()[-3000:]}")
        return proc.pid

    def start_head(self, num_cpus: int = 1, timeout: float = 180) -> int:
        port, client, dashboard = free_ports(3)
        sid = self._start(["--head", "--port", str(port), "--num-cpus", str(num_cpus), "--include-dashboard", "false",
                           "--dashboard-port", str(dashboard), "--ray-client-server-port", str(client)], timeout)
        self.port = port
        return sid

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def add_node(self, num_cpus: int = 1, timeout: float = 180) -> int:
        return self._start(["--address", self.address, "--num-cpus", str(num_cpus)], timeout)

    def node_id(self, sid: int) -> str:
        """The Ray node id of the node started as session `sid` (from its raylet's command line)."""
        for pid in session_pids(sid):
            try:
                argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if argv and Path(argv[0].decode()).name == "raylet":
                for arg in argv:
                    if arg.startswith(b"--node_id="):
                        return arg.split(b"=", 1)[1].decode()
        raise RuntimeError(f"no raylet in session {sid}")

    def kill(self, sid: int, timeout: float = 30) -> None:
        """SIGKILL every process of the node started as session `sid` and wait until they are gone."""
        deadline = time.monotonic() + timeout
        while True:
            pids = session_pids(sid)
            if not pids:
                return
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"processes {pids} of session {sid} survive SIGKILL")
            time.sleep(0.05)

    def stop(self) -> None:
        try:
            for sid in reversed(self.sessions):
                self.kill(sid)
        finally:
            shutil.rmtree(self.root, ignore_errors=True)
