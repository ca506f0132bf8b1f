"""The Ray executor: children as Ray tasks on a local instance or a cluster (paper §3, A.3).

The paper ran its children on a pool of 450 GPU workers fed from a global queue; here a Ray cluster
plays the pool. See `nasnet.search.executors` for the contract every executor follows.

A cluster given by address is reached the way Ray's own tools reach one they find by themselves:
when RAY_AUTH_MODE is unset and this machine has a token (RAY_AUTH_TOKEN, the file named by
RAY_AUTH_TOKEN_PATH, or ~/.ray/auth_token, in that order), token authentication is turned on and the
token is sent; a cluster without authentication ignores it. An address where nothing listens, or
where no head node answers, a missing token and a refused one are each one line saying what to do.
"""

from __future__ import annotations

import json
import math
import os
import re
import socket
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable

from ...atomic import write_text
from ...errors import NasnetError, first_line
from ..contract import OutcomeKind
from .base import Executor, Outcome, outcome_from_json, run_payload, worker_name

NODE_ID_CHARS = 12      # of a Ray node id (56 hex digits) in a trial's worker: host:pid@node
SOURCE_ROOT = Path(__file__).resolve().parents[3]    # the folder holding the nasnet package


def _ray_run(payload_json: str) -> str:
    import ray

    node = ray.get_runtime_context().get_node_id()
    return run_payload(payload_json, worker=f"{worker_name()}@{node[:NODE_ID_CHARS]}")


# -- reaching a cluster ---------------------------------------------------------------------------

_HOST_PORT = re.compile(r"^(?:ray://)?(?:\[(?P<ip6>[^\]]+)\]|(?P<host>[^:/\s\[\]]+)):(?P<port>\d{1,5})$")


def find_token() -> str | None:
    """Where this machine's Ray token comes from, looked up in Ray's order: RAY_AUTH_TOKEN, the file
    RAY_AUTH_TOKEN_PATH names, ~/.ray/auth_token; None when there is none. A RAY_AUTH_TOKEN_PATH that
    cannot be read, or is empty, is an error here (Ray itself would abort the process)."""
    if os.environ.get("RAY_AUTH_TOKEN", "").strip():
        return "RAY_AUTH_TOKEN"
    named = os.environ.get("RAY_AUTH_TOKEN_PATH")
    if named:
        try:
            text = Path(named).read_text()
        except (OSError, UnicodeDecodeError) as err:
            raise NasnetError(f"RAY_AUTH_TOKEN_PATH names {named}, which cannot be read "
                              f"({getattr(err, 'strerror', None) or type(err).__name__}): point it at a copy of "
                              "the cluster's token file, or unset it") from None
        if not text.strip():
            raise NasnetError(f"RAY_AUTH_TOKEN_PATH names {named}, which is empty: point it at a copy of the "
                              "cluster's token file, or unset it")
        return f"{named} (RAY_AUTH_TOKEN_PATH)"
    default = Path.home() / ".ray" / "auth_token"
    try:
        return str(default) if default.read_text().strip() else None
    except (OSError, UnicodeDecodeError):
        return None


def _auth_mode_off() -> str | None:
    """RAY_AUTH_MODE when it is set to something other than token (the token is then never sent)."""
    mode = os.environ.get("RAY_AUTH_MODE")
    return mode if mode is not None and mode.strip().lower() != "token" else None


def use_token() -> str | None:
    """Send this machine's token to the cluster, as `ray.init(address="auto")` and Ray's command line
    do for a cluster they find themselves (Ray leaves token authentication off for an explicit
    address unless RAY_AUTH_MODE=token is set): with RAY_AUTH_MODE unset and a token found (see
    `find_token`), RAY_AUTH_MODE becomes "token" in this process. Returns where the token comes
    from, or None. A Ray without token authentication (before 2.52) is left alone."""
    try:
        from ray._raylet import Config, get_authentication_mode  # noqa: F401 - present from Ray 2.52
    except ImportError:
        return None
    if _auth_mode_off():
        return None
    source = find_token()
    if source and os.environ.get("RAY_AUTH_MODE") is None:
        os.environ["RAY_AUTH_MODE"] = "token"
        Config.initialize("")       # Ray read its settings at import: let it see the mode (as Ray does)
    return source


def token_message(address: str, source: str | None) -> str:
    """What to do when the cluster at `address` refuses this machine (token authentication)."""
    copy = ("copy the head node's ~/.ray/auth_token to this machine's ~/.ray/auth_token, or point "
            "RAY_AUTH_TOKEN_PATH at a copy (`ray get-auth-token` on the head node prints the token)")
    off = _auth_mode_off()
    if off is not None:
        return (f"the Ray cluster at {address} requires its token, and RAY_AUTH_MODE={off} here keeps it from "
                "being sent: unset RAY_AUTH_MODE (or set it to token)" + ("" if find_token() else f"; {copy}"))
    if source is None:
        return (f"the Ray cluster at {address} requires its token (token authentication) and this machine has "
                f"none (looked in RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH, ~/.ray/auth_token): {copy}")
    if source == "RAY_AUTH_TOKEN":
        return (f"the Ray cluster at {address} refused the token in RAY_AUTH_TOKEN: set it to the cluster's "
                "token (`ray get-auth-token` on the head node prints it), or unset it to use ~/.ray/auth_token")
    return f"the Ray cluster at {address} refused the token from {source}, which is not the cluster's: {copy}"


def is_auth_error(err: BaseException | None) -> bool:
    """Whether Ray failed because the cluster refused this machine's token (or its lack of one)."""
    seen = 0
    while err is not None and seen < 8:
        text = str(err)
        if type(err).__name__ == "AuthenticationError" or "InvalidAuthToken" in text or "Unauthenticated" in text:
            return True
        err, seen = err.__cause__ or err.__context__, seen + 1
    return False


def check_reachable(address: str, timeout: float = 10.0) -> None:
    """A host:port that does not answer is reported at once (ray.init would retry for minutes)."""
    m = _HOST_PORT.match(address)
    if not m:
        return                       # "auto" and the like: Ray finds the cluster itself
    host, port = m["ip6"] or m["host"], int(m["port"])
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError as err:
        if isinstance(err, socket.gaierror):
            why = f"unknown host {host!r}"
        elif isinstance(err, ConnectionRefusedError):
            why = "nothing listens there"
        else:
            why = err.strerror or str(err) or type(err).__name__
        raise NasnetError(f"cannot reach the Ray cluster at {address} ({why}): start it with `ray start --head "
                          "--port PORT` on the head node, or give its address as HOST:PORT") from None


@contextmanager
def _stderr_silenced():
    """File descriptor 2 goes to /dev/null for a moment (Ray's C++ client writes there directly)."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):
        yield
        return
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def probe(address: str, source: str | None, timeout: float = 20.0) -> None:
    """Ask the GCS at `address` for the cluster's id with Ray's own GCS client (milliseconds), so that
    a missing or refused token, or a port where no Ray head node answers, is one line now rather than
    after ray.init's retries, each logged (twenty seconds for a token, many minutes for a wrong port).
    Any other outcome is left to ray.init."""
    if address.startswith("ray://") or not _HOST_PORT.match(address):
        return
    try:
        from ray._raylet import InnerGcsClient
    except ImportError:
        return
    try:
        with _stderr_silenced():           # Ray's C++ client logs every attempt there
            InnerGcsClient.standalone(address, None, int(timeout * 1000))
    except Exception as err:   # noqa: BLE001 - only a refusal and silence are reported here
        if is_auth_error(err):
            raise NasnetError(token_message(address, source)) from None
        if "Timed out while waiting for GCS" in str(err):
            raise NasnetError(f"no Ray cluster answers at {address}: something listens there, but not the head "
                              "node's GCS (give the head node's host and the --port of `ray start --head`)") from None


def connect(ray, address: str, **kwargs) -> None:
    """`ray.init(address=...)` with this machine's token (see `use_token`) and one-line errors."""
    source = use_token()
    check_reachable(address)
    probe(address, source)
    try:
        ray.init(address=address, **kwargs)
    except Exception as err:
        if is_auth_error(err):
            raise NasnetError(token_message(address, source)) from None
        if isinstance(err, ConnectionError):
            raise NasnetError(f"cannot connect to the Ray cluster at {address}: {first_line(err)}") from None
        raise


# -- Ray ------------------------------------------------------------------------------------------

def _proc_children(pid: int) -> list[int]:
    """All descendants of a process (Linux /proc; empty elsewhere)."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[-1].split()
        except OSError:
            continue
        parents.setdefault(int(fields[1]), []).append(int(entry.name))
    out, todo = [], [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def _proc_start(pid: int) -> str | None:
    """A process's start time in clock ticks since boot: with the pid, it names one process."""
    try:
        return (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[-1].split()[19]
    except (OSError, IndexError):
        return None


class ProcessRecord:
    """The processes of a local Ray instance, written to a file so a later driver can remove them.

    When a driver is SIGKILLed, its raylet and GCS die with it, but Ray's agents (and, for a while,
    idle workers) survive as orphans. Their environment is overwritten by their process titles, so
    they are recognised by (pid, start time) pairs recorded while the driver lived: a background
    thread records the driver's descendants during `ray.init`, and `refresh` adds later ones.
    """

    def __init__(self, path: Path):
        self.path = Path(path)
        self.procs: dict[int, str] = {}
        self._stop = None
        self._last = 0.0

    def refresh(self) -> None:
        self._last = time.monotonic()
        changed = False
        for pid in _proc_children(os.getpid()):
            start = _proc_start(pid)
            if start is not None and self.procs.get(pid) != start:
                self.procs[pid] = start
                changed = True
        if changed:
            write_text(self.path, json.dumps(sorted(self.procs.items())))

    def maybe_refresh(self, every: float = 5.0) -> None:
        if time.monotonic() - self._last > every:
            self.refresh()

    def start_polling(self, interval: float = 0.25) -> None:
        import threading

        stop = self._stop = threading.Event()

        def poll():
            while not stop.wait(interval):
                self.refresh()

        threading.Thread(target=poll, name="nasnet-ray-record", daemon=True).start()

    def stop_polling(self) -> None:
        if self._stop is not None:
            self._stop.set()
            self._stop = None
        self.refresh()

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)


def kill_stale_ray(record: Path) -> int:
    """Kill the recorded processes of a local Ray instance whose driver died (see `ProcessRecord`).

    Only a process that still has the recorded pid and start time is killed, so a reused pid is
    never touched. Returns how many were killed; the record is removed.
    """
    import signal

    try:
        procs = json.loads(Path(record).read_text())
    except (OSError, ValueError):
        return 0
    killed = 0
    for pid, start in procs:
        if pid != os.getpid() and _proc_start(pid) == start:
            try:
                os.kill(pid, signal.SIGKILL)
                killed += 1
            except OSError:
                pass
    Path(record).unlink(missing_ok=True)
    return killed


def _ray_errors_to_stderr() -> None:
    """Ray's driver prints raylet errors ("A worker died ...") on stdout; send them to stderr.

    Failures are recorded in the trial store anyway; stdout stays clean for `--json` output.
    Uses a private Ray hook, so it is skipped quietly if Ray changes.
    """
    try:
        from ray._private import worker as ray_worker
    except ImportError:
        return
    original = getattr(ray_worker, "print_to_stdstream", None)
    if original is None or getattr(original, "_nasnet", False):
        return

    def to_stderr(data, *args, **kwargs):
        return original({**data, "is_err": True}, *args, **kwargs)

    to_stderr._nasnet = True
    ray_worker.print_to_stdstream = to_stderr


class RayExecutor(Executor):
    """Runs payloads as Ray tasks: a local instance started on demand, or an existing cluster.

    The address is `address`, else RAY_ADDRESS, else a local instance with `workers x
    cpus_per_child` CPUs (no dashboard); a cluster is reached with this machine's token (`connect`),
    and each result's worker names the Ray node that ran it (host:pid@node). `workers` = 0 keeps as
    many children in flight as the cluster's CPUs (and GPUs) allow. Each task asks for `cpus_per_child` CPUs and
    `gpus_per_child` GPUs (fractional: Ray packs several children on one GPU). Ray's own task retries
    are off; the driver decides about retries. With `record` set (a file in the run directory), a
    local instance's processes are recorded there, and what a SIGKILLed driver of the same run left
    behind is removed first (`kill_stale_ray`).
    """

    name = "ray"

    @classmethod
    def from_config(cls, config, record: Path | None = None,
                    log: Callable[[str], None] | None = None) -> "RayExecutor":
        """The executor an ExecutorConfig describes; `record`: where a local instance lists its processes;
        `log`: where its notes to the user go."""
        return cls(config.workers, config.ray_address, config.cpus_per_child, config.gpus_per_child,
                   config.child_timeout, record, log=log)

    def __init__(self, workers: int = 1, address: str | None = None, cpus_per_child: float = 1.0,
                 gpus_per_child: float = 0.0, child_timeout: float | None = None, record: Path | None = None,
                 log: Callable[[str], None] | None = None):
        try:
            import ray
        except ImportError:
            raise NasnetError("the ray executor needs Ray: pip install 'nasnet[ray]'") from None
        self._ray = ray
        self.child_timeout = child_timeout
        address = address or os.environ.get("RAY_ADDRESS") or None
        self._owns = False
        self._record = None
        if record is not None and address is None:
            killed = kill_stale_ray(record)
            if killed and log is not None:
                log(f"removed {killed} process(es) left by an earlier driver's Ray instance")
        if not ray.is_initialized():
            kwargs: dict[str, Any] = dict(logging_level="ERROR", log_to_driver=False)
            try:
                if address:
                    connect(ray, address, **kwargs)
                else:
                    self._start_local(workers, cpus_per_child, gpus_per_child, record, kwargs)
            except ConnectionError as err:          # connect() reports its own; this is the local instance
                raise NasnetError(f"cannot start a local Ray instance: {first_line(err)}") from None
        _ray_errors_to_stderr()
        # max_calls=0: a worker process runs child after child, as the process executor's do, instead of
        # a new interpreter, torch import and CUDA context per child. Ray makes a task that asks for GPUs
        # one-per-process by default (max_calls=1) when num_gpus is given to ray.remote; given to
        # .options() as here it does not, and max_calls can only be set in ray.remote: said explicitly.
        self._remote = ray.remote(max_calls=0)(_ray_run).options(num_cpus=cpus_per_child, num_gpus=gpus_per_child,
                                                                 max_retries=0, retry_exceptions=False)
        self._refs: dict[Any, tuple[Any, float]] = {}     # ref -> (key, submitted_at)
        self._timed_out: set = set()
        self._check_resources(cpus_per_child, gpus_per_child)
        self.capacity = int(workers) if workers else self._fitting(cpus_per_child, gpus_per_child)

    def _start_local(self, workers: int, cpus_per_child: float, gpus_per_child: float, record: Path | None,
                     kwargs: dict[str, Any]) -> None:
        """A local Ray instance of `workers x cpus_per_child` CPUs, its processes recorded in `record`."""
        if not _auth_mode_off():
            find_token()        # a RAY_AUTH_TOKEN_PATH Ray cannot read would abort the process
        if record is not None:
            self._record = ProcessRecord(record)
            self._record.start_polling()
        # the instance's workers inherit this environment: make sure they import this nasnet
        saved_path = os.environ.get("PYTHONPATH")
        here = str(SOURCE_ROOT)
        if here not in (saved_path or "").split(os.pathsep):
            os.environ["PYTHONPATH"] = here + (os.pathsep + saved_path if saved_path else "")
        try:
            self._ray.init(num_cpus=max(1, math.ceil(workers * cpus_per_child)) if workers else None,
                           num_gpus=None if gpus_per_child > 0 else 0, include_dashboard=False,
                           object_store_memory=200 * 1024**2, **kwargs)
        finally:
            if saved_path is None:
                os.environ.pop("PYTHONPATH", None)
            else:
                os.environ["PYTHONPATH"] = saved_path
            if self._record is not None:
                self._record.stop_polling()
        self._owns = True

    def _fitting(self, cpus: float, gpus: float) -> int:
        """As many children at once as the cluster's resources allow."""
        total = self._ray.cluster_resources()
        fits = [total.get("CPU", 1) / cpus]
        if gpus:
            fits.append(total.get("GPU", 0) / gpus)
        return max(1, int(min(fits) + 1e-9))

    def _check_resources(self, cpus: float, gpus: float) -> None:
        """A child asking for more than any node has would wait forever: say so now."""
        nodes = [n.get("Resources", {}) for n in self._ray.nodes() if n.get("Alive")]
        if nodes and not any(n.get("CPU", 0) >= cpus and n.get("GPU", 0) >= gpus for n in nodes):
            most_cpu = max(n.get("CPU", 0) for n in nodes)
            most_gpu = max(n.get("GPU", 0) for n in nodes)
            self.close()
            raise NasnetError(f"no Ray node can run a child asking for {cpus:g} CPUs and {gpus:g} GPUs "
                              f"(the largest node has {most_cpu:g} CPUs, {most_gpu:g} GPUs); lower "
                              "`executor.cpus_per_child` / `executor.gpus_per_child`")

    def submit(self, key, payload):
        ref = self._remote.remote(json.dumps(payload, allow_nan=False))
        self._refs[ref] = (key, time.time())

    def wait(self, timeout=None):
        ray = self._ray
        if not self._refs:
            return []
        if self._record is not None:
            self._record.maybe_refresh()       # Ray starts workers and helpers lazily
        ready, _ = ray.wait(list(self._refs), num_returns=1, timeout=timeout)
        if ready:
            ready, _ = ray.wait(list(self._refs), num_returns=len(self._refs), timeout=0)
        outcomes = []
        for ref in ready:
            key, submitted = self._refs.pop(ref)
            if ref in self._timed_out:
                self._timed_out.discard(ref)
                why = f"TimeoutError: cancelled after the {self.child_timeout} s child timeout"
                outcomes.append(Outcome(key, OutcomeKind.ERROR, error=why, started_at=submitted,
                                        finished_at=time.time()))
                continue
            try:
                outcomes.append(outcome_from_json(key, ray.get(ref)))
            except ray.exceptions.RayError as err:
                first = str(err).strip().splitlines()[0] if str(err).strip() else ""
                outcomes.append(Outcome(key, OutcomeKind.INFRA, error=f"{type(err).__name__}: {first}"[:2000],
                                        started_at=submitted, finished_at=time.time()))
        if self.child_timeout:
            now = time.time()
            for ref, (_key, submitted) in list(self._refs.items()):
                if now - submitted > self.child_timeout and ref not in self._timed_out:
                    self._timed_out.add(ref)
                    ray.cancel(ref, force=True)
        return outcomes

    def cancel_all(self):
        # Not force=True: killing workers right before shutdown can abort Ray's core worker in the
        # driver. A plain cancel interrupts a running child (KeyboardInterrupt in its worker).
        for ref in list(self._refs):
            try:
                self._ray.cancel(ref, force=False)
            except Exception:   # noqa: BLE001 - best effort while shutting down
                pass
        self._refs.clear()
        self._timed_out.clear()

    def close(self):
        if self._owns:                 # shutting the local instance down stops its children
            self._refs.clear()
        else:
            self.cancel_all()
        if self._owns:
            self._ray.shutdown()
            if self._record is not None:
                self._record.remove()
