"""One runner for long sweeps: a function of (point, runs, seed) over a list of points, in process or on Dask.

A sweep is a top-level function ``fn(point, *, runs, seed)`` returning one value per run (an array whose
first axis has length ``runs``), a sequence of points, a number of runs per point and a seed.
:func:`run` yields one result per point (by default its mean, standard error and number of runs), in
point order, as soon as that point and every point before it are done, in bounded memory.

Seeding, and why splitting never changes a result.  A point's runs are drawn in *chunks* of
:data:`CHUNK_RUNS` runs (``chunk_runs``; the last one shorter).  Chunk ``c`` of a point whose seed is ``s`` calls
``fn(point, runs=..., seed=chunk_seed(s, c))``, where chunk 0 uses ``s`` itself (so a point of at most
``CHUNK_RUNS`` runs is exactly ``fn(point, runs=runs, seed=s)``) and chunk ``c >= 1`` a seed derived from
``(s, c)`` by ``numpy.random.SeedSequence``.  The per-run values of the chunks are concatenated in chunk
order before they are reduced.  Work is then grouped into tasks of whole chunks (``task_runs``), and tasks
run in this process or on Dask workers, in any order and possibly twice (a lost worker's tasks are
recomputed); none of this enters a result, so the output is byte-identical whatever the number of
workers, the task size or the scheduler.

The seed of a point.  By default every point uses the sweep's ``seed`` (common random numbers): the
points of a learning curve share their random draws, so differences between points are smooth, and a
point's result depends on its parameters, its runs and the seed only, never on what else is in the
sweep.  ``seeds=[...]`` gives each point its own seed instead (independent points).

Where the work runs (``workers``, ``scheduler``):

- ``workers=1``: in this process, without importing Dask;
- ``workers=N > 1``: a ``dask.distributed`` LocalCluster of N single-threaded worker processes, started
  and stopped here;
- ``scheduler="tcp://host:8786"`` (or the environment variable ``SYMMAML_SCHEDULER``): an existing Dask
  cluster, whose workers need the same symmaml and NumPy;
- ``workers=None`` (default): in this process, moving the rest of the sweep to a LocalCluster of one
  worker per CPU as soon as it is estimated to need more than :data:`AUTO_SECONDS` more (only if Dask
  is installed and there are several CPUs).

Dask is an optional extra (``pip install 'symmaml[dask]'``); without it anything but in-process work
raises :class:`DaskMissing`, one line naming the extra.

Resuming (``store=PATH``): every finished point is appended to a journal (JSON lines, flushed per point,
a header naming the sweep); a rerun with the same sweep reads the finished points back and computes only
the rest.  A torn last line (the process killed while writing) is dropped; a journal of another sweep is
refused.
"""
from __future__ import annotations

import functools
import hashlib
import inspect
import json
import math
import os
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np

__all__ = ["run", "add_arguments", "Grid", "CHUNK_RUNS", "AUTO_SECONDS", "chunk_seed", "mean_stderr", "simulate_chunk",
           "DaskMissing", "require_dask", "cpu_count", "SweepError"]

#: runs per chunk, the unit of randomness (a multiple of the simulator's block of 64 runs)
CHUNK_RUNS = 32_768
#: ``workers=None`` moves to a local cluster when the rest of the sweep is estimated above this (s)
AUTO_SECONDS = 10.0
#: seconds to wait for a Dask scheduler given by address
CONNECT_TIMEOUT = 30
#: domain tag of the chunk seeds (``SeedSequence(seed, spawn_key=(TAG, chunk))``)
_TAG = 0x5EE9
_DASK_MESSAGE = "this needs Dask; install it with pip install 'symmaml[dask]'"


class DaskMissing(ImportError):
    """Dask (``dask.distributed``) is needed and not installed: the message names the extra."""


class SweepError(ValueError):
    """A bad argument to the runner, or a journal that does not belong to this sweep."""


# ----------------------------------------------------------------------------- seeds and points

def chunk_seed(seed: int, chunk: int) -> int:
    """The seed of chunk ``chunk`` of a point seeded ``seed``: ``seed`` itself for chunk 0."""
    if chunk == 0:
        return int(seed)
    words = np.random.SeedSequence(int(seed), spawn_key=(_TAG, int(chunk))).generate_state(2, np.uint32)
    return int(words[0]) | (int(words[1]) << 32)


class Grid(Sequence):
    """The Cartesian product of named value lists, indexed lazily (the last name varies fastest).

    ``Grid({"alpha_t": [...], "alpha_r": [...]})[i]`` is the i-th point as a dict, in
    ``itertools.product`` order; :meth:`columns` gives a slice of points as arrays, for vectorised work.
    Memory is that of the value lists, however many points.
    """

    def __init__(self, values: dict):
        self.names = list(values)
        self.values = {n: (v if isinstance(v, (list, tuple, np.ndarray)) else list(v)) for n, v in values.items()}
        for n, v in self.values.items():
            if not v:
                raise SweepError(f"no values for {n}")
        self.sizes = [len(self.values[n]) for n in self.names]
        self._len = math.prod(self.sizes)
        self._arrays = {}

    @property
    def swept(self) -> list:
        """The names with more than one value."""
        return [n for n, k in zip(self.names, self.sizes) if k > 1]

    def __len__(self) -> int:
        return self._len

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(self._len))]
        if i < 0:
            i += self._len
        if not 0 <= i < self._len:
            raise IndexError("grid index out of range")
        point = {}
        for n, k in zip(reversed(self.names), reversed(self.sizes)):
            i, d = divmod(i, k)
            v = self.values[n][d]
            point[n] = v.item() if isinstance(v, np.generic) else v
        return {n: point[n] for n in self.names}

    def indices(self, start: int, stop: int) -> dict:
        """For points ``start..stop-1``: the index into each name's value list (arrays)."""
        idx = np.arange(start, stop, dtype=np.int64)
        out = {}
        for n, k in zip(reversed(self.names), reversed(self.sizes)):
            idx, out[n] = np.divmod(idx, k)
        return {n: out[n] for n in self.names}

    def columns(self, start: int, stop: int) -> dict:
        """Points ``start..stop-1`` as columns: an array per swept name, the value itself for the others."""
        digits = self.indices(start, stop)
        return {n: (self.array(n)[digits[n]] if k > 1 else self.values[n][0])
                for n, k in zip(self.names, self.sizes)}

    def array(self, name: str) -> np.ndarray:
        """The values of ``name`` as an array (made once)."""
        if name not in self._arrays:
            self._arrays[name] = np.asarray(self.values[name])
        return self._arrays[name]


# ----------------------------------------------------------------------------- point functions

def mean_stderr(values) -> dict:
    """The default reduction: mean of the per-run values, its standard error (inf for one run), runs."""
    values = np.asarray(values, dtype=float)
    runs = values.shape[0]
    mean = float(values.mean())
    stderr = float(values.std(ddof=1) / math.sqrt(runs)) if runs > 1 else math.inf
    return dict(mean=mean, stderr=stderr, runs=runs)


def simulate_chunk(point: dict, *, runs: int, seed: int, progress=None, **options) -> np.ndarray:
    """The per-run test losses of ``symmaml.sim.simulate(**point, runs=runs, seed=seed, **options)``."""
    from .sim import simulate

    kwargs = dict(options)
    if progress is not None:
        kwargs["progress"] = progress
    return simulate(**point, runs=runs, seed=seed, **kwargs)["per_run"]


def _accepts_progress(fn) -> bool:
    try:
        return "progress" in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False


def _describe(fn) -> dict:
    """A stable description of a (possibly partial) function, for the journal's identity."""
    if isinstance(fn, functools.partial):
        return dict(_describe(fn.func), args=[repr(a) for a in fn.args],
                    keywords={k: repr(v) for k, v in sorted(fn.keywords.items())})
    return dict(function=f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', repr(fn))}")


def add_arguments(parser) -> None:
    """``--workers`` and ``--scheduler`` on a script's ``argparse`` parser: where its sweeps run (never
    what they give)."""
    parser.add_argument("--workers", type=int, default=None,
                        help="1: in this process; N: a local Dask cluster of N processes (default: as symmaml.sweep "
                             "decides; the results do not depend on it)")
    parser.add_argument("--scheduler", default=None, help="address of an existing Dask cluster")


# ----------------------------------------------------------------------------- Dask

def require_dask():
    """Import ``dask.distributed`` or raise :class:`DaskMissing` (one line naming the extra)."""
    try:
        import distributed  # noqa: F401
    except ImportError:
        raise DaskMissing(_DASK_MESSAGE) from None
    return distributed


def dask_available() -> bool:
    try:
        require_dask()
    except DaskMissing:
        return False
    return True


def cpu_count() -> int:
    """CPUs this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


class _Cluster:
    """A Dask client: on a LocalCluster of ``workers`` processes we start (and stop), or on ``scheduler``."""

    def __init__(self, workers: int | None, scheduler: str | None):
        distributed = require_dask()
        import logging

        self.cluster = None
        # our own client, never the process's default one (a caller may have another on another loop)
        if scheduler:
            try:
                _reachable(scheduler)  # a Client that fails to connect lingers, and complains at exit
                self.client = distributed.Client(scheduler, timeout=CONNECT_TIMEOUT, set_as_default=False)
            except (OSError, ValueError) as e:  # refused, timed out, or not an address
                raise SweepError(f"cannot reach the Dask scheduler at {scheduler!r}: "
                                 f"{str(e).splitlines()[0] if str(e) else type(e).__name__}") from None
        else:
            self.cluster = distributed.LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                                    dashboard_address=":0", silence_logs=logging.ERROR)
            self.client = distributed.Client(self.cluster, set_as_default=False)
        self.distributed = distributed

    @property
    def threads(self) -> int:
        return max(1, sum(self.client.nthreads().values()))

    def close(self) -> None:
        try:
            self.client.close()
        finally:
            if self.cluster is not None:
                self.cluster.close()


def _reachable(address: str) -> None:
    """Raise ValueError for a malformed scheduler address, OSError if its TCP port does not answer."""
    import socket

    from distributed.comm import parse_address
    from distributed.comm.addressing import parse_host_port

    protocol, location = parse_address(address)
    if protocol in ("tcp", "tls"):
        host, port = parse_host_port(location)
        socket.create_connection((host, port), timeout=CONNECT_TIMEOUT).close()


def _run_task(fn, units) -> list:
    """One task: the chunks ``units`` = [(point, runs, seed), ...]; their per-run values, in order."""
    return [np.asarray(fn(point, runs=r, seed=s)) for point, r, s in units]


# ----------------------------------------------------------------------------- journal

def _canonical(obj) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), allow_nan=True)


def _jsonable(x):
    """``x`` with NumPy scalars made Python numbers (so it round-trips through JSON exactly)."""
    if isinstance(x, dict):
        return {k: _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, np.generic):
        return x.item()
    return x


class _Journal:
    """Finished points of a sweep, one JSON line each after a header line; appended and flushed per point."""

    def __init__(self, path, identity: dict):
        self.path = Path(path)
        self.identity = identity
        self.header = _canonical(dict(symmaml_sweep=1, identity=identity))
        self.file = None

    def resume(self, points) -> int:
        """Check an existing journal, drop a torn tail; the number of finished points (a prefix)."""
        if not self.path.exists():
            return 0
        done, good = 0, 0
        with open(self.path, "rb") as f:
            first = f.readline()
            if not first.endswith(b"\n"):
                first = b""
            if first and first.decode("utf-8", "replace").rstrip("\n") != self.header:
                raise SweepError(f"{self.path} holds another sweep (its header differs from this one's); "
                                 f"remove it or write elsewhere")
            good = len(first)
            for line in f:
                if not line.endswith(b"\n"):
                    break
                try:
                    entry = json.loads(line)
                except ValueError:
                    break
                if entry.get("i") != done or done >= len(points):
                    break
                if _canonical(entry.get("point")) != _canonical(_jsonable(points[done])):
                    raise SweepError(f"{self.path}: point {done} differs from this sweep's; "
                                     f"remove it or write elsewhere")
                done += 1
                good += len(line)
        if good == 0:
            self.path.unlink()
            return 0
        with open(self.path, "r+b") as f:  # drop a torn or foreign tail
            f.truncate(good)
        return done

    def finished(self) -> Iterator[dict]:
        """The results recorded so far, in point order."""
        with open(self.path, encoding="utf-8") as f:
            f.readline()
            for line in f:
                yield json.loads(line)["result"]

    def open(self) -> None:
        new = not self.path.exists()
        if new and self.path.parent != Path(""):
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self.file = open(self.path, "a", encoding="utf-8")
        if new:
            self.file.write(self.header + "\n")
            self.file.flush()
        self._synced = time.monotonic()

    def append(self, i: int, point, result: dict) -> None:
        entry = dict(i=i, point=_jsonable(point), result=_jsonable(result))  # keys kept in their order
        self.file.write(json.dumps(entry, separators=(",", ":")) + "\n")
        self.file.flush()
        if time.monotonic() - self._synced > 1.0:
            os.fsync(self.file.fileno())
            self._synced = time.monotonic()

    def close(self) -> None:
        if self.file is not None:
            self.file.flush()
            os.fsync(self.file.fileno())
            self.file.close()
            self.file = None


# ----------------------------------------------------------------------------- the runner

def _check_int(name: str, v, minimum: int) -> int:
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)) or v < minimum:
        raise SweepError(f"{name} must be an integer >= {minimum}; got {v!r}")
    return int(v)


def run(fn: Callable, points: Sequence, *, runs=1, seed: int = 0, seeds: Sequence[int] | None = None,
        reduce: Callable = mean_stderr, workers: int | None = None, scheduler: str | None = None,
        task_runs: int | None = None, progress: Callable | None = None, store=None,
        key=None, chunk_runs: int = CHUNK_RUNS) -> Iterator[dict]:
    """Run ``fn`` over ``points``; yield ``reduce(per-run values)`` for each point, in point order.

    fn: a top-level function ``fn(point, *, runs, seed)`` returning an array with one row per run
    (``progress=`` too if it accepts it: called with the runs finished, in process only).
    points: a sequence (a list, or a lazy :class:`Grid`).  runs: runs per point (an int, or one per
    point).  seed / seeds: the sweep's seed (common to every point) or one seed per point.
    workers, scheduler: where it runs (module docstring).  task_runs: runs per task (whole chunks;
    by default sized to the work and the workers); never changes a result.  progress: called as
    ``progress(points_done, runs_done)`` as points finish.  store: a journal path for resuming;
    key: anything JSON-able that, with the rest of the arguments, identifies the sweep in the journal.
    chunk_runs: runs per chunk; part of the sweep's definition, like the seed (it sets which runs share
    a seed), so changing it changes the draws; the default is the one ``symmaml simulate`` uses.
    """
    n = len(points)
    runs_list = None if isinstance(runs, (int, np.integer)) and not isinstance(runs, bool) else list(runs)
    if runs_list is None:
        runs = _check_int("runs", runs, 1)
        total_runs = runs * n
    else:
        if len(runs_list) != n:
            raise SweepError(f"runs has {len(runs_list)} entries for {n} points")
        runs_list = [_check_int("runs", r, 1) for r in runs_list]
        total_runs = sum(runs_list)
    if seeds is None:
        seed = _check_int("seed", seed, 0)
    else:
        seeds = [_check_int("seeds", s, 0) for s in seeds]
        if len(seeds) != n:
            raise SweepError(f"seeds has {len(seeds)} entries for {n} points")
    if workers is not None:
        workers = _check_int("workers", workers, 1)
    scheduler = scheduler if workers is None or workers > 1 else None  # workers=1: in process, always
    if scheduler is None and workers is None:
        scheduler = os.environ.get("SYMMAML_SCHEDULER") or None
    if task_runs is not None:
        task_runs = _check_int("task_runs", task_runs, 1)
    chunk_runs = _check_int("chunk_runs", chunk_runs, 1)
    if (workers or 1) > 1 or scheduler:
        require_dask()
    return _run(fn, points, n, runs, runs_list, total_runs, seed, seeds, reduce, workers, scheduler,
                task_runs, progress, store, key, chunk_runs)


def _run(fn, points, n, runs, runs_list, total_runs, seed, seeds, reduce, workers, scheduler, task_runs,
         progress, store, key, chunk_runs):
    runs_of = (lambda i: runs) if runs_list is None else runs_list.__getitem__
    seed_of = (lambda i: seed) if seeds is None else seeds.__getitem__

    journal, start = None, 0
    if store is not None:
        identity = dict(fn=_describe(fn), n=n, chunk_runs=chunk_runs,
                        runs=runs if runs_list is None else hashlib.sha256(_canonical(runs_list).encode()).hexdigest(),
                        seed=seed if seeds is None else hashlib.sha256(_canonical(seeds).encode()).hexdigest(),
                        reduce=_describe(reduce), key=_jsonable(key), versions=_versions())
        journal = _Journal(store, identity)
        start = journal.resume(points)
        done_runs = start * runs if runs_list is None else sum(runs_list[:start])
        if start:
            yield from journal.finished()
            if progress is not None:
                progress(start, done_runs)
        journal.open()
    else:
        done_runs = 0

    def units():  # (point index, chunk index, chunks of the point, point, runs, seed), in order
        for i in range(start, n):
            r, s, point = runs_of(i), seed_of(i), points[i]
            chunks = -(-r // chunk_runs)
            for c in range(chunks):
                yield i, c, chunks, point, min(chunk_runs, r - c * chunk_runs), chunk_seed(s, c)

    remaining = total_runs - done_runs
    state = dict(point=start, runs=done_runs, parts=[])

    def finish(unit, values):
        """Collect one chunk's values; a point complete -> its result (else None)."""
        i, c, chunks, point, r, _ = unit
        # values from a worker may sit unaligned in its message, and NumPy sums unaligned data in
        # another order (the last bit of a mean changes): reduce an aligned copy, as in process
        state["parts"].append(np.require(values, requirements=("A", "C")))
        state["runs"] += r
        if c + 1 < chunks:
            return None
        parts, state["parts"] = state["parts"], []
        result = reduce(parts[0] if len(parts) == 1 else np.concatenate(parts))
        if journal is not None:
            journal.append(i, point, result)
        state["point"] = i + 1
        if progress is not None:
            progress(state["point"], state["runs"])
        return result

    source = units()
    try:
        if scheduler or (workers or 1) > 1:
            yield from _on_dask(fn, source, finish, remaining, workers, scheduler, task_runs, chunk_runs)
        else:
            yield from _in_process(fn, source, finish, remaining, workers, task_runs, chunk_runs, progress,
                                   state)
    finally:
        if journal is not None:
            journal.close()


def _versions() -> dict:
    from . import __version__

    return dict(symmaml=__version__, numpy=np.__version__)


def _in_process(fn, source, finish, remaining, workers, task_runs, chunk_runs, progress, state):
    """Chunks in order in this process; with ``workers=None`` hand the rest to Dask when it is long."""
    with_progress = progress is not None and _accepts_progress(fn)
    busy, computed = 0.0, 0  # seconds spent in fn (not in the caller between results), runs
    auto = workers is None and cpu_count() > 1
    for unit in source:
        _, _, _, point, r, s = unit
        t0 = time.monotonic()
        if with_progress:
            base = state["runs"]
            values = fn(point, runs=r, seed=s,
                        progress=lambda k, base=base: progress(state["point"], base + k))
        else:
            values = fn(point, runs=r, seed=s)
        busy += time.monotonic() - t0
        computed += r
        result = finish(unit, np.asarray(values))
        if result is not None:
            yield result
        if auto and computed < remaining and busy * (remaining - computed) / computed > AUTO_SECONDS:
            auto = dask_available()  # asked once
            if auto:
                yield from _on_dask(fn, source, finish, remaining - computed, cpu_count(), None, task_runs,
                                    chunk_runs)
                return


def _tasks(source, task_runs: int, max_units: int = 4096):
    """Group consecutive chunks into tasks of about ``task_runs`` runs."""
    task, size = [], 0
    for unit in source:
        task.append(unit)
        size += unit[4]
        if size >= task_runs or len(task) >= max_units:
            yield task
            task, size = [], 0
    if task:
        yield task


def _on_dask(fn, source, finish, remaining, workers, scheduler, task_runs, chunk_runs):
    """The chunks of ``source`` as Dask tasks; results handed to ``finish`` in order."""
    cluster = _Cluster(workers, scheduler)
    try:
        threads = cluster.threads
        if task_runs is None:  # about 8 tasks per worker, at most one chunk each
            task_runs = max(1024, min(chunk_runs, -(-remaining // (8 * threads))))
        tasks = _tasks(source, task_runs)
        ahead = 4 * threads  # tasks in flight, and the most finished ones held out of order
        token = uuid.uuid4().hex[:12]
        client, distributed = cluster.client, cluster.distributed
        pending, done, index, futures = {}, {}, {}, distributed.as_completed(loop=client.loop)
        next_submit, next_emit = 0, 0
        exhausted = False

        def submit():
            nonlocal next_submit, exhausted
            while not exhausted and next_submit - next_emit < ahead:
                task = next(tasks, None)
                if task is None:
                    exhausted = True
                    return
                fut = client.submit(_run_task, fn, [(u[3], u[4], u[5]) for u in task],
                                    key=f"symmaml-sweep-{token}-{next_submit}", pure=False)
                index[fut.key] = next_submit
                pending[next_submit] = (fut, task)
                futures.add(fut)
                next_submit += 1

        submit()
        for fut in futures:
            done[index.pop(fut.key)] = fut.result()  # raises the task's own error
            while next_emit in done:
                values = done.pop(next_emit)
                _, task = pending.pop(next_emit)
                next_emit += 1
                for unit, v in zip(task, values):
                    result = finish(unit, v)
                    if result is not None:
                        yield result
            submit()
    finally:
        cluster.close()
