"""Session-wide test configuration.

The persistent cache (:mod:`symmaml.cache`) points at a temporary directory for the whole session,
before any test module is imported, so the tests never read or write the user's cache; the
command-line tests' subprocesses inherit it, so the session shares one warm cache.
"""
import os
import shutil
import tempfile

_CACHE = {}


def pytest_configure(config):
    _CACHE["saved"] = {k: os.environ.get(k) for k in ("SYMMAML_CACHE_DIR", "SYMMAML_CACHE")}
    _CACHE["dir"] = tempfile.mkdtemp(prefix="symmaml-test-cache-")
    os.environ["SYMMAML_CACHE_DIR"] = _CACHE["dir"]
    os.environ.pop("SYMMAML_CACHE", None)


def pytest_unconfigure(config):
    shutil.rmtree(_CACHE.pop("dir", ""), ignore_errors=True)
    for key, value in _CACHE.pop("saved", {}).items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
