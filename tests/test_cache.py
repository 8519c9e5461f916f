"""The persistent cache (symmaml.cache): where it is, what it keys on, and that it never trusts a bad entry.

Each test points ``SYMMAML_CACHE_DIR`` at its own temporary directory (the session's shared cache,
set in conftest.py, is left alone), and uses small objects or the leading-order results (about a
second to derive), so the file costs a few seconds.
"""
import json
import os
import pickle
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import sympy as sp

from symmaml import cache
from symmaml.export.numeric import numeric_function
from symmaml.maml import average_test_loss
from symmaml.symbols import alpha_t, m, n_v, p, sigma

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    d = tmp_path / "cache"
    monkeypatch.setenv("SYMMAML_CACHE_DIR", str(d))
    monkeypatch.delenv("SYMMAML_CACHE", raising=False)
    return d


def counting(fn):
    """``fn`` made persistent, with a count of the calls that really ran."""
    calls = []

    def body(x, y=1):
        calls.append((x, y))
        return fn(x, y)

    body.__module__, body.__qualname__ = "tests.test_cache", f"counting_{fn.__name__}"
    return cache.persistent(body), calls


def test_cache_dir_honours_the_environment(cache_dir, monkeypatch, tmp_path):
    assert cache.cache_dir() == cache_dir
    monkeypatch.delenv("SYMMAML_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    if sys.platform.startswith("linux"):
        assert cache.cache_dir() == tmp_path / "xdg" / "symmaml"
        monkeypatch.setenv("XDG_CACHE_HOME", "relative/ignored")  # the XDG spec: only absolute paths count
        assert cache.cache_dir() == Path.home() / ".cache" / "symmaml"
    monkeypatch.setenv("SYMMAML_CACHE", "0")
    assert cache.store() is None


def test_a_value_is_stored_once_and_read_back(cache_dir):
    f, calls = counting(lambda x, y: {"sum": x + y, "expr": sp.Rational(x, 3) * p**2 + alpha_t})
    first = f(2)
    assert f(2) == first == f(2, y=1) and len(calls) == 1  # the same key however the arguments are passed
    assert f(3) != first and len(calls) == 2
    files = cache.store().entries()
    assert len(files) == 2 and all(oct(path.stat().st_mode & 0o777) == "0o600" for path in files)
    assert oct((cache_dir / cache.generation()).stat().st_mode & 0o777) == "0o700"
    assert (cache_dir / "CACHEDIR.TAG").read_text().startswith("Signature: 8a477f597d28d172789f06886806bc55")
    header = json.loads(files[0].read_bytes().split(b"\n")[1])
    assert set(header) == {"key", "size", "sha256"} and "counting_" in header["key"]


@pytest.mark.parametrize("damage", ["flip a payload byte", "truncate", "header", "another key", "empty"])
def test_a_corrupt_entry_is_detected_removed_and_derived_again(cache_dir, damage):
    f, calls = counting(lambda x, y: [x] * 1000)
    assert f(7) == [7] * 1000 and len(calls) == 1
    st = cache.store()
    key = cache.key_of(f.uncached, (7,), {})
    path = st.file(key)
    data = bytearray(path.read_bytes())
    if damage == "flip a payload byte":
        data[-10] ^= 0x40
    elif damage == "truncate":
        data = data[: len(data) // 2]
    elif damage == "header":
        data = data.replace(b'"size"', b'"sise"')
    elif damage == "another key":  # a valid entry, but written for f(8): never read as f(7)
        f(8)
        data = bytearray(st.file(cache.key_of(f.uncached, (8,), {})).read_bytes())
    else:
        data = bytearray()
    path.write_bytes(bytes(data))
    assert st.get(key) is None and not path.exists()  # refused and removed
    assert f(7) == [7] * 1000 and calls.count((7, 1)) == 2  # derived again...
    assert st.get(key) is not None  # ...and stored again


def test_a_stale_generation_is_never_read(cache_dir, monkeypatch):
    f, calls = counting(lambda x, y: x * 10)
    f(1)
    old = cache.generation()
    monkeypatch.setattr(cache, "generation", lambda: "0.1.0-" + "f" * 16)  # the engine changed
    assert f(1) == 10 and len(calls) == 2
    info = cache.info()
    assert info["entries"] == 1 and info["stale_generations"] == 1 and info["stale_bytes"] > 0
    assert (cache_dir / old).is_dir()
    (cache_dir / "unrelated.txt").write_text("not ours")
    assert cache.clear() > 0
    assert not (cache_dir / old).exists() and (cache_dir / "unrelated.txt").read_text() == "not ours"
    assert cache.info()["entries"] == 0


def test_the_generation_hashes_the_engine_source(tmp_path):
    package = Path(cache.__file__).resolve().parent
    copy = tmp_path / "symmaml"
    shutil.copytree(package, copy, ignore=shutil.ignore_patterns("__pycache__"))
    base = cache.engine_hash(copy)
    assert base == cache.engine_hash(package) and len(base) == 16
    (copy / "cli" / "derive.py").write_text((copy / "cli" / "derive.py").read_text() + "\n# cli\n")
    assert cache.engine_hash(copy) == base  # the command line changes no derived object
    (copy / "maml" / "leading.py").write_text((copy / "maml" / "leading.py").read_text() + "\n# changed\n")
    assert cache.engine_hash(copy) != base


def test_an_unwritable_cache_never_stops_a_computation(tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv("SYMMAML_CACHE_DIR", str(blocker / "cache"))  # a directory below a file
    monkeypatch.setattr(cache, "_WARNED", [])
    f, calls = counting(lambda x, y: x + 1)
    with pytest.warns(RuntimeWarning, match="cannot write"):
        assert f(1) == 2
    assert f(1) == 2 and len(calls) == 2  # nothing stored, and one warning per process


def test_unstable_keys_are_not_cached(cache_dir):
    f, calls = counting(lambda x, y: 1)
    f(object())
    assert cache.store().entries() == []


def test_fast_pickles_rebuild_identical_expressions():
    r = average_test_loss("under")
    for obj in (r.expr, sp.Piecewise((p, p > m * n_v), (sp.nan, True)), sp.sqrt(p + sigma) ** 3 - 2 * alpha_t):
        back = cache.loads(cache.dumps(obj))
        assert back == obj and hash(back) == hash(obj) and sp.srepr(back) == sp.srepr(obj)
    assert cache.loads(cache.dumps(r)).expr == r.expr


def test_a_result_and_its_numeric_function_come_back_from_disk(cache_dir, monkeypatch):
    """average_test_loss reads the stored result; its numeric function is rebuilt from stored source,
    without lambdify, and gives the same numbers."""
    from symmaml.maml.loss import _average_test_loss
    from symmaml.maml.model import PAPER

    def derive(regime, order):  # below the in-process lru_cache
        return _average_test_loss.__wrapped__(regime, order, PAPER)

    fresh = derive("over", "leading")
    assert fresh.cache_key.startswith("symmaml.maml.loss._average_test_loss(")
    point = dict(p=60, m=3, n_t=30, n_v=2, n_r=20, alpha_t=np.linspace(-2, 2, 5), alpha_r=0.2, sigma=1.0, nu=0.5)
    expected = fresh.numeric()(**point)
    loaded = derive("over", "leading")
    assert loaded is not fresh and loaded.expr == fresh.expr and loaded.conditions == fresh.conditions
    assert loaded.cache_key == fresh.cache_key and len(loaded.derivation) == len(fresh.derivation)

    def no_lambdify(*args, **kwargs):
        raise AssertionError("lambdify called although the compiled function is cached")

    with monkeypatch.context() as patched:
        patched.setattr(sp, "lambdify", no_lambdify)
        assert np.array_equal(loaded.numeric()(**point), expected)
    assert loaded.latex(standalone=True) == fresh.latex(standalone=True)  # the documents too, byte for byte
    assert loaded.markdown() == fresh.markdown()


def test_a_function_reading_names_outside_the_namespace_is_not_stored(cache_dir):
    from sympy.utilities.lambdify import implemented_function

    g = implemented_function("g", lambda x: x + 1)
    f = numeric_function(g(p) + sigma, conditions=(), name="toy", cache_key="toy implemented")
    assert f(p=3, m=1, n_t=1, n_v=1, n_r=1, alpha_t=0, alpha_r=0, sigma=0.5, nu=0) == 4.5
    keys = [json.loads(path.read_bytes().split(b"\n")[1])["key"] for path in cache.store().entries()]
    assert keys and not [k for k in keys if "numpy" in k]  # g is not in the namespace a source is rebuilt in


WRITER = textwrap.dedent("""
    import sys
    from symmaml import cache
    st = cache.store()
    size = int(sys.argv[1])
    for i in range(40):
        st.put("shared key", bytes([size % 251]) * size)
        data = st.get("shared key")
        assert data is None or (len(set(data)) == 1 and len(data) in (1000, 50000, 500000)), len(data)
    print("ok")
""")


def test_processes_writing_one_key_at_once_leave_a_valid_entry(cache_dir):
    """Four processes write the same key 40 times each (payloads of three sizes) and read it back:
    every read is a complete payload of one writer, and so is the entry left at the end."""
    env = dict(os.environ)
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(size)], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, cwd=REPO)
             for size in (1000, 50000, 500000, 50000)]
    outs = [proc.communicate(timeout=300) for proc in procs]
    assert all(proc.returncode == 0 and out.strip() == "ok" for proc, (out, _) in zip(procs, outs)), outs
    data = cache.store().get("shared key")
    assert data is not None and len(set(data)) == 1 and len(data) in (1000, 50000, 500000)
    assert not [p for p in (cache_dir / cache.generation()).iterdir() if p.name.startswith(".tmp-")]


def test_pickled_results_leave_compiled_functions_behind():
    r = average_test_loss("over")
    r.numeric()(p=60, m=3, n_t=30, n_v=2, n_r=20, alpha_t=0.2, alpha_r=0.2, sigma=1.0, nu=0.5)
    state = pickle.loads(pickle.dumps(r)).__dict__
    assert "_numeric_cache" not in state and state["expr"] == r.expr
