"""Tests of the sweep runner (symmaml.sweep) and the streaming sweeps of ``symmaml simulate`` and ``eval``.

The claim under test is that where and how a sweep runs never changes its output: the same bytes in
this process, on a 2-worker local Dask cluster started by symmaml, on an existing cluster (a
scheduler address), with any task size, after a worker is killed mid-sweep, and after an interrupted
sweep is resumed.  One Dask cluster serves the module (plus one that symmaml starts itself); the
simulations are tiny (a run costs microseconds), so the tests measure behaviour, not speed.
"""
from __future__ import annotations

import functools
import io
import itertools
import json
import os
import signal
import sys
import time

import numpy as np
import pytest

from symmaml import sim, sweep
from symmaml.cli import main
from symmaml.cli import evaluate as cli_evaluate
from symmaml.cli.common import Progress

SMALL = dict(p=6, m=2, n_t=3, n_v=2, n_r=3, alpha_r=0.3, sigma=1.0, nu=0.5, dist0=0.0)
GRID = sweep.Grid({**{k: [v] for k, v in SMALL.items()}, "alpha_t": [-0.5, 0.0, 0.25, 0.5], "n_r": [3, 5]})
FN = functools.partial(sweep.simulate_chunk, test_tasks=3, meta_test="reduced")
#: 300 runs in chunks of 64: five chunks per point, the last one shorter
RUNS, CHUNK = 300, 64
FIG2 = ["--p", "60", "--m", "3", "--n-t", "30", "--n-v", "2", "--n-r", "20", "--sigma", "1", "--nu", "0.5"]


def as_bytes(results) -> bytes:
    return json.dumps(list(results)).encode()


def reference() -> bytes:
    return as_bytes(sweep.run(FN, GRID, runs=RUNS, seed=11, workers=1, chunk_runs=CHUNK))


def slow_chunk(point, *, runs, seed, delay):
    """A chunk that also waits ``delay`` seconds (so that a worker can be killed while it computes)."""
    time.sleep(delay)
    return sweep.simulate_chunk(point, runs=runs, seed=seed, test_tasks=3, meta_test="reduced")


@pytest.fixture(scope="module")
def cluster():
    """One 2-worker LocalCluster for the module; tests reach it through its scheduler address."""
    distributed = pytest.importorskip("distributed")
    import cloudpickle

    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers cannot import this test module
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0",
                                  silence_logs=50) as c, distributed.Client(c) as client:
        yield c, client


# ----------------------------------------------------------------------------- seeds and chunks

def test_a_point_is_the_simulator_at_its_seed_and_chunks_concatenate():
    """Chunk 0 is the point's seed itself; chunk c >= 1 is seeded chunk_seed(seed, c); values concatenate."""
    pt = GRID[5]
    (one,) = sweep.run(FN, [pt], runs=64, seed=11, workers=1, chunk_runs=CHUNK)
    direct = sim.simulate(**pt, runs=64, seed=11, test_tasks=3)
    assert (one["mean"], one["stderr"], one["runs"]) == (direct["mean"], direct["stderr"], 64)
    (five,) = sweep.run(FN, [pt], runs=RUNS, seed=11, workers=1, chunk_runs=CHUNK)
    parts = [sim.simulate(**pt, runs=min(CHUNK, RUNS - c * CHUNK), seed=sweep.chunk_seed(11, c), test_tasks=3)
             ["per_run"] for c in range(5)]
    assert five == sweep.mean_stderr(np.concatenate(parts))
    assert len({sweep.chunk_seed(11, c) for c in range(1000)} | {11}) == 1000


def test_common_random_numbers_a_point_does_not_depend_on_the_rest_of_the_sweep():
    """Every point uses the sweep's seed: a point alone gives what it gives inside any sweep."""
    full = list(sweep.run(FN, GRID, runs=RUNS, seed=11, workers=1, chunk_runs=CHUNK))
    for i in (0, 5):
        (alone,) = sweep.run(FN, [GRID[i]], runs=RUNS, seed=11, workers=1, chunk_runs=CHUNK)
        assert alone == full[i]
    seeds = [100 + i for i in range(len(GRID))]  # independent points: seed i is point i's alone
    own = list(sweep.run(FN, GRID, runs=64, seeds=seeds, workers=1))
    assert own[3]["mean"] == sim.simulate(**GRID[3], runs=64, seed=103, test_tasks=3)["mean"]


def test_grid_is_the_cartesian_product_in_order_and_lazy():
    values = {"a": [1, 2, 3], "b": [0.5], "c": [10, 20]}
    g = sweep.Grid(values)
    expected = [dict(zip(values, combo)) for combo in itertools.product(*values.values())]
    assert len(g) == 6 and list(g) == expected and g[-1] == expected[-1] and g.swept == ["a", "c"]
    cols = g.columns(1, 5)
    assert list(cols["a"]) == [e["a"] for e in expected[1:5]] and cols["b"] == 0.5
    big = sweep.Grid({"x": list(range(1000)), "y": list(range(1000)), "z": list(range(1000))})
    assert len(big) == 10**9 and big[10**9 - 1] == dict(x=999, y=999, z=999)


def test_bad_arguments_are_refused_naming_them():
    with pytest.raises(ValueError, match="runs must be an integer >= 1"):
        sweep.run(FN, GRID, runs=0)
    with pytest.raises(ValueError, match="seeds has 2 entries for 8 points"):
        sweep.run(FN, GRID, seeds=[1, 2])
    with pytest.raises(ValueError, match="workers must be an integer >= 1; got 0"):
        sweep.run(FN, GRID, workers=0)


# ----------------------------------------------------------------------------- Dask: same bytes

def test_same_bytes_in_process_on_a_cluster_and_with_any_task_size(cluster):
    """In process, on a LocalCluster symmaml starts (2 workers), and on an existing cluster with two task
    sizes (one chunk per task; several points per task): byte-identical results."""
    c, _ = cluster
    expected = reference()
    assert as_bytes(sweep.run(FN, GRID, runs=RUNS, seed=11, workers=2, chunk_runs=CHUNK)) == expected
    for task_runs in (1, 1000):
        got = sweep.run(FN, GRID, runs=RUNS, seed=11, scheduler=c.scheduler_address, task_runs=task_runs,
                        chunk_runs=CHUNK)
        assert as_bytes(got) == expected
    assert as_bytes(sweep.run(FN, GRID, runs=RUNS, seed=12, workers=1, chunk_runs=CHUNK)) != expected
    # one chunk of many runs per point: values that arrive unaligned from a worker (NumPy sums those
    # in another order) are summed as here; without the copy this failed at 20,000 runs
    one_chunk = as_bytes(sweep.run(FN, GRID[:3], runs=20_000, seed=11, workers=1))
    assert as_bytes(sweep.run(FN, GRID[:3], runs=20_000, seed=11, scheduler=c.scheduler_address)) == one_chunk


def test_by_default_a_long_sweep_moves_to_a_cluster_midway_with_the_same_bytes(cluster, monkeypatch):
    """workers=None starts in process and hands the rest to Dask once it looks long (here: at once)."""
    c, _ = cluster
    started, real = [], sweep._Cluster

    def existing(workers, scheduler):  # the module's cluster stands in for the one symmaml would start
        started.append(workers)
        return real(None, c.scheduler_address)

    monkeypatch.setattr(sweep, "_Cluster", existing)
    monkeypatch.setattr(sweep, "AUTO_SECONDS", 0.0)
    monkeypatch.setattr(sweep, "cpu_count", lambda: 2)
    monkeypatch.delenv("SYMMAML_SCHEDULER", raising=False)
    assert as_bytes(sweep.run(FN, GRID, runs=RUNS, seed=11, chunk_runs=CHUNK)) == reference()
    assert started == [2]


def test_a_worker_killed_mid_sweep_loses_and_duplicates_nothing(cluster):
    """SIGKILL one worker process while it holds tasks: Dask recomputes them elsewhere; same bytes."""
    c, client = cluster
    fn = functools.partial(slow_chunk, delay=0.1)
    expected = reference()
    before = client.run(os.getpid)
    results = sweep.run(fn, GRID, runs=RUNS, seed=11, scheduler=c.scheduler_address, task_runs=1,
                        chunk_runs=CHUNK)
    got = [next(results)]  # the sweep is under way: 40 tasks of 0.1 s or more, 8 in flight
    deadline = time.monotonic() + 30
    while not (busy := sorted(w for w, tasks in client.processing().items() if tasks)):
        assert time.monotonic() < deadline, "no worker is computing"
        time.sleep(0.01)
    os.kill(before[busy[0]], signal.SIGKILL)
    got += list(results)
    assert len(got) == len(GRID) and as_bytes(got) == expected
    client.wait_for_workers(2, timeout=60)
    assert set(client.run(os.getpid).values()) != set(before.values())  # the killed worker was replaced


def test_cli_simulate_same_bytes_in_process_and_on_a_cluster(cluster, capsys):
    c, _ = cluster
    argv = ["simulate", *FIG2, "--alpha-t", "-1,0,1", "--alpha-r", "0.2", "--runs", "70", "--test-tasks", "2"]
    for extra in ([], ["--json"]):
        assert main(argv + extra + ["--workers", "1"]) == 0
        local = capsys.readouterr().out
        assert main(argv + extra + ["--scheduler", c.scheduler_address]) == 0
        assert capsys.readouterr().out == local


def test_an_unreachable_scheduler_is_one_line(capsys):
    pytest.importorskip("distributed")
    argv = ["simulate", *FIG2, "--alpha-t", "0.2", "--alpha-r", "0.1", "--runs", "10"]
    for address, reason in (("tcp://127.0.0.1:1", "Connection refused"), ("nonsense", "missing port")):
        assert main(argv + ["--scheduler", address]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"symmaml: error: cannot reach the Dask scheduler at '{address}'") and reason in err
        assert err.count("\n") == 1


# ----------------------------------------------------------------------------- without Dask

def test_without_dask_one_worker_works_and_anything_else_names_the_extra(monkeypatch, capsys):
    for name in ("dask", "distributed"):
        monkeypatch.setitem(sys.modules, name, None)  # any import of them now fails
    monkeypatch.delenv("SYMMAML_SCHEDULER", raising=False)
    expected = reference()
    assert as_bytes(sweep.run(FN, GRID, runs=RUNS, seed=11, workers=1, chunk_runs=CHUNK)) == expected
    assert as_bytes(sweep.run(FN, GRID, runs=RUNS, seed=11, chunk_runs=CHUNK)) == expected  # default
    with pytest.raises(sweep.DaskMissing, match=r"install it with pip install 'symmaml\[dask\]'"):
        sweep.run(FN, GRID, runs=RUNS, workers=2)
    argv = ["simulate", *FIG2, "--alpha-t", "0.2", "--alpha-r", "0.1", "--runs", "10"]
    assert main(argv + ["--workers", "2"]) == 2
    assert capsys.readouterr().err == "symmaml: error: this needs Dask; install it with pip install 'symmaml[dask]'\n"
    monkeypatch.setenv("SYMMAML_SCHEDULER", "tcp://127.0.0.1:1")
    assert main(argv) == 2 and "symmaml[dask]" in capsys.readouterr().err
    assert main(argv + ["--workers", "1"]) == 0  # --workers 1 overrides the environment


# ----------------------------------------------------------------------------- resume

def test_an_interrupted_sweep_resumes_computing_only_what_is_missing(tmp_path, monkeypatch):
    calls = []

    def counting(point, *, runs, seed):
        calls.append(point["alpha_t"])
        return FN(point, runs=runs, seed=seed)

    store = tmp_path / "sweep.journal"
    results = sweep.run(counting, GRID, runs=RUNS, seed=11, workers=1, chunk_runs=CHUNK, store=store)
    first = [next(results) for _ in range(3)]
    results.close()  # interrupted after 3 of 8 points
    with open(store, "a") as f:
        f.write('{"i": 3, "point": {"p": 6')  # and killed while writing the 4th
    calls.clear()
    rest = list(sweep.run(counting, GRID, runs=RUNS, seed=11, workers=1, chunk_runs=CHUNK, store=store))
    assert as_bytes(rest) == reference() and rest[:3] == first
    assert len(calls) == 5 * (len(GRID) - 3)  # five chunks for each missing point, none for the others
    calls.clear()
    assert as_bytes(sweep.run(counting, GRID, runs=RUNS, seed=11, workers=1, chunk_runs=CHUNK, store=store)) \
        == reference() and calls == []
    with pytest.raises(ValueError, match="holds another sweep"):
        list(sweep.run(counting, GRID, runs=RUNS, seed=12, workers=1, chunk_runs=CHUNK, store=store))


def test_cli_simulate_out_is_atomic_and_resumes(tmp_path, monkeypatch, capsys):
    argv = ["simulate", *FIG2, "--alpha-t", "-1:1:6", "--alpha-r", "0.2", "--runs", "40", "--test-tasks", "2",
            "--workers", "1"]
    assert main(argv) == 0
    expected = capsys.readouterr().out
    out = tmp_path / "sweep.csv"
    real, calls = sweep.simulate_chunk, []

    @functools.wraps(real)  # the same name: the journal knows the sweep by its function
    def interrupted(point, **kw):
        calls.append(point["alpha_t"])
        if len(calls) == 4:
            raise KeyboardInterrupt
        return real(point, **kw)

    monkeypatch.setattr(sweep, "simulate_chunk", interrupted)
    assert main(argv + ["--out", str(out)]) == 130
    assert not out.exists() and (tmp_path / "sweep.csv.partial").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["sweep.csv.partial"]  # no temporary file left
    calls.clear()

    @functools.wraps(real)
    def counting(point, **kw):
        calls.append(point["alpha_t"])
        return real(point, **kw)

    monkeypatch.setattr(sweep, "simulate_chunk", counting)
    assert main(argv + ["--out", str(out)]) == 0
    assert out.read_text() == expected and len(calls) == 3
    assert not (tmp_path / "sweep.csv.partial").exists()
    assert main(argv + ["--out", str(tmp_path / "no" / "x.csv")]) == 2
    assert "directory" in capsys.readouterr().err


# ----------------------------------------------------------------------------- progress

def test_progress_reaches_every_point_and_the_bar_shows_points_and_eta(capsys):
    seen = []
    list(sweep.run(FN, GRID, runs=RUNS, seed=11, workers=1, chunk_runs=CHUNK,
                   progress=lambda k, r: seen.append((k, r))))
    assert seen[-1] == (len(GRID), len(GRID) * RUNS)
    assert all(a <= b for a, b in zip(seen, seen[1:]))  # monotone, also within a chunk
    assert len(seen) > len(GRID) * 5  # the simulator reported blocks, not only finished points
    bar = Progress(100, enabled=True, points=4)
    bar.set(0, 0)
    time.sleep(0.15)
    bar.set(2, 50)
    bar.close()
    err = capsys.readouterr().err
    assert "2/4 points" in err and "ETA" in err and err.endswith("\n")


# ----------------------------------------------------------------------------- eval streams

def test_eval_streams_chunks_with_the_same_bytes_as_one_table(monkeypatch, capsys):
    """Chunks of 7 points (40 points, several swept names) print what one table of row dicts printed."""
    from symmaml.maml import average_test_loss

    args = ["eval", "over", *FIG2, "--alpha-t", "-1:1:5", "--alpha-r", "0.1,0.2", "--p", "60,70,80,90"]
    f = average_test_loss("over").numeric()
    ref_grid = sweep.Grid({n: [v] for n, v in dict(p=0, m=3, n_t=30, n_v=2, n_r=20, alpha_t=0, alpha_r=0,
                                                     sigma=1.0, nu=0.5, dist0=0.0).items()})
    rows = [dict(ref_grid[0], p=p, alpha_t=a, alpha_r=r)
            for p, a, r in itertools.product([60, 70, 80, 90], np.linspace(-1, 1, 5).tolist(), [0.1, 0.2])]
    cols = {n: (np.array([r[n] for r in rows], dtype=float) if n in ("p", "alpha_t", "alpha_r") else rows[0][n])
            for n in rows[0]}
    for row, v in zip(rows, f(**cols)):  # all points in one call, as eval did before it streamed
        row["value"] = float(v)
    monkeypatch.setattr(cli_evaluate, "CHUNK", 7)
    assert main(args + ["--json"]) == 0
    out = capsys.readouterr().out
    table = dict(regime="over", order="leading", backend="numpy", swept=["p", "alpha_t", "alpha_r"], rows=rows)
    assert out == json.dumps(table, indent=1) + "\n"
    assert main(args) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 41 and lines[1].endswith("," + repr(rows[0]["value"]))


def test_eval_writes_each_chunk_before_computing_the_next():
    grid = sweep.Grid({n: [1] for n in ("p", "m", "n_t", "n_v", "n_r", "alpha_r", "sigma", "nu", "dist0")}
                      | {"alpha_t": list(range(10))})
    out, sizes = io.StringIO(), []

    def chunks():
        for start in range(0, 10, 3):
            sizes.append(len(out.getvalue()))
            stop = min(10, start + 3)
            yield start, stop, [float(k) for k in range(start, stop)], None

    cli_evaluate._stream(out, grid, chunks(), False, {}, False)
    assert sizes[0] == 0 and all(a < b for a, b in zip(sizes, sizes[1:]))
    assert out.getvalue().count("\n") == 11


def test_cli_nn_train_same_bytes_in_process_and_on_a_cluster(cluster, capsys):
    """The network experiment as one sweep of (point, run) tasks: each run is seeded by its index, so
    the rows are byte-identical in process and on the cluster (a tiny network: the check is of the
    bookkeeping, not of the physics)."""
    pytest.importorskip("jax")
    c, _ = cluster
    argv = ["nn", "train", "--width", "8", "--d", "6", "--m", "2", "--n-t", "4", "--n-v", "2", "--n-r", "4",
            "--alpha-t", "-1,0", "--alpha-r", "0.3", "--sigma", "0.5", "--nu", "0.3", "--beta", "0,0.2",
            "--runs", "3", "--test-tasks", "8", "--test-points", "4", "--seed", "2", "--quiet"]
    assert main(argv + ["--workers", "1"]) == 0
    local = capsys.readouterr().out
    assert main(argv + ["--scheduler", c.scheduler_address]) == 0
    assert capsys.readouterr().out == local and len(local.splitlines()) == 5
