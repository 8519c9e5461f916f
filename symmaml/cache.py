r"""A persistent on-disk cache of what the engine derives and compiles.

Deriving a corrected result takes up to a minute and compiling its numeric function up to
half of that; both are stored here so that a later process gets them in milliseconds.

Where.  ``$SYMMAML_CACHE_DIR`` if set, else the platform's user cache directory:
``$XDG_CACHE_HOME/symmaml`` or ``~/.cache/symmaml`` (Linux and other POSIX systems),
``~/Library/Caches/symmaml`` (macOS), ``%LOCALAPPDATA%\symmaml\Cache`` (Windows).
``SYMMAML_CACHE=0`` turns the cache off (nothing is read or written).

Keys.  Entries live in a *generation* directory named after the package version and a hash of
the engine: every source file of the ``symmaml`` package (but the command line, ``symmaml/cli``)
and the versions of Python, SymPy, mpmath and NumPy.  Any change to them starts a new generation, so an entry made by other code
is never read; ``symmaml cache clear`` removes the old generations with the rest.  Inside a
generation an entry's key says what it holds (e.g. the call ``average_test_loss(regime='over',
order='corrected')``, or a content hash of an expression and what was compiled from it).

Entries.  One file per key (named by the key's SHA-256): a header with the format, the full key,
the payload's length and SHA-256, then the payload.  A read checks all four; an entry that fails
(corrupt, truncated, written for another key) is deleted and reported missing, so the caller
derives again: nothing read from disk is trusted unchecked.  A write goes to a temporary file in
the same directory, renamed over the entry (``os.replace``, atomic): readers and concurrent
writers never see half an entry, and two processes writing one key both leave a complete one.
A cache that cannot be written (read-only, full disk) never stops a computation: the value is
returned uncached, with one warning per process.

Pickles.  :func:`dumps` pickles SymPy expressions so that loading rebuilds sums, products and
powers from their stored (already canonical) arguments without re-evaluating them, 5-15x faster
than SymPy's default.  Pickles execute code when loaded: the cache directory is created private
(mode 0700) and should not be shared with untrusted users.
"""
from __future__ import annotations

import functools
import hashlib
import importlib
import inspect
import io
import json
import os
import pickle
import re
import sys
import warnings
from pathlib import Path

__all__ = ["cache_dir", "enabled", "generation", "engine_hash", "Store", "store", "persistent", "dumps", "loads",
           "info", "clear", "key_of"]

FORMAT = b"SYMMAML-CACHE 1\n"
_GENERATION = re.compile(r"^[0-9][0-9A-Za-z.+_-]*-[0-9a-f]{16}$")
_ENTRY = re.compile(r"^[0-9a-f]{64}$")
_TEMP = re.compile(r"^\.tmp-[0-9a-f]{64}-")
_TAG = "CACHEDIR.TAG"
_TAG_TEXT = ("Signature: 8a477f597d28d172789f06886806bc55\n"
             "# This file is a cache directory tag created by symmaml (see symmaml.cache).\n")


# ----------------------------------------------------------------------------- where

def enabled() -> bool:
    """False when ``SYMMAML_CACHE`` is ``0``, ``off``, ``no`` or ``false``."""
    return os.environ.get("SYMMAML_CACHE", "1").strip().lower() not in ("0", "off", "no", "false")


def cache_dir() -> Path:
    """The cache's root directory (``$SYMMAML_CACHE_DIR`` or the platform's user cache directory)."""
    override = os.environ.get("SYMMAML_CACHE_DIR")
    if override:
        return Path(override).expanduser()
    if sys.platform == "win32":
        base = os.environ.get("LOCALAPPDATA") or str(Path.home() / "AppData" / "Local")
        return Path(base) / "symmaml" / "Cache"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Caches" / "symmaml"
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg) if xdg and os.path.isabs(xdg) else Path.home() / ".cache"
    return base / "symmaml"


@functools.lru_cache(maxsize=None)
def generation() -> str:
    """``<version>-<hash>``: the package version and a hash of the engine's source and dependencies."""
    from . import __version__

    return f"{__version__}-{engine_hash(Path(__file__).resolve().parent)}"


def engine_hash(package: Path) -> str:
    """16 hex digits of a SHA-256 over the package's source files (but ``cli/``) and the versions of
    Python, SymPy, mpmath and NumPy."""
    h = hashlib.sha256()
    h.update(f"python {sys.version_info[:3]} {sys.implementation.name}\n".encode())
    for dist in ("sympy", "mpmath", "numpy"):  # imported by the engine anyway
        h.update(f"{dist} {getattr(importlib.import_module(dist), '__version__', '-')}\n".encode())
    for path in sorted(package.rglob("*.py")):
        if path.relative_to(package).parts[0] == "cli":  # the command line changes no derived object
            continue
        h.update(path.relative_to(package).as_posix().encode() + b"\0")
        h.update(hashlib.sha256(path.read_bytes()).digest())
    return h.hexdigest()[:16]


# ----------------------------------------------------------------------------- the store

def _warn_once(message: str) -> None:
    if not _WARNED:
        _WARNED.append(message)
        warnings.warn(f"symmaml cache: {message}; continuing without it", RuntimeWarning, stacklevel=3)


_WARNED: list = []


class Store:
    """The entries of one generation under ``root``: :meth:`get` and :meth:`put` bytes by key."""

    def __init__(self, root: Path, gen: str):
        self.root, self.generation = Path(root), gen
        self.path = self.root / gen

    def __repr__(self) -> str:
        return f"Store({str(self.path)!r})"

    @staticmethod
    def _name(key: str) -> str:
        return hashlib.sha256(key.encode("utf-8")).hexdigest()

    def file(self, key: str) -> Path:
        """The entry's file (it may not exist)."""
        return self.path / self._name(key)

    def get(self, key: str) -> bytes | None:
        """The payload stored for ``key``, or None (missing, or failed a check and removed)."""
        path = self.file(key)
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError:
            return None
        payload = self._check(data, key)
        if payload is None:
            try:  # never trusted again; the caller derives and writes a fresh entry
                path.unlink()
            except OSError:
                pass
        return payload

    @staticmethod
    def _check(data: bytes, key: str) -> bytes | None:
        if not data.startswith(FORMAT):
            return None
        end = data.find(b"\n", len(FORMAT))
        if end < 0:
            return None
        try:
            header = json.loads(data[len(FORMAT):end].decode("utf-8"))
            size, digest, stored_key = int(header["size"]), str(header["sha256"]), header["key"]
        except (ValueError, KeyError, TypeError, UnicodeDecodeError):
            return None
        payload = data[end + 1:]
        if stored_key != key or len(payload) != size or hashlib.sha256(payload).hexdigest() != digest:
            return None
        return payload

    def put(self, key: str, payload: bytes) -> bool:
        """Store ``payload`` for ``key`` atomically; False (with one warning per process) if it cannot."""
        header = json.dumps(dict(key=key, size=len(payload), sha256=hashlib.sha256(payload).hexdigest()),
                            sort_keys=True).encode("utf-8")
        import tempfile

        tmp = None
        try:
            self._prepare()
            fd, tmp = tempfile.mkstemp(dir=self.path, prefix=f".tmp-{self._name(key)}-")
            with os.fdopen(fd, "wb") as f:
                f.write(FORMAT + header + b"\n")
                f.write(payload)
            os.replace(tmp, self.file(key))
            return True
        except OSError as e:
            if tmp is not None:
                try:
                    os.unlink(tmp)
                except OSError:
                    pass
            _warn_once(f"cannot write to {self.path} ({e.strerror or e})")
            return False

    def _prepare(self) -> None:
        if self.path.is_dir():
            return
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        tag = self.root / _TAG
        if not tag.exists():
            tag.write_text(_TAG_TEXT)
        self.path.mkdir(mode=0o700, exist_ok=True)

    def entries(self) -> list[Path]:
        try:
            return sorted(p for p in self.path.iterdir() if _ENTRY.match(p.name))
        except OSError:
            return []


def store() -> Store | None:
    """The current generation's store, or None if the cache is turned off."""
    if not enabled():
        return None
    return Store(cache_dir(), generation())


# ----------------------------------------------------------------------------- pickles

def _assoc(cls, args):
    return cls._from_args(args)


def _power(base, exp):
    import sympy

    return sympy.Pow(base, exp, evaluate=False)


class _Pickler(pickle.Pickler):
    """Sums, products and powers stored as their class and arguments, rebuilt without evaluation."""

    def reducer_override(self, obj):
        t = type(obj)
        if t in _FAST:
            return (_power, obj.args) if _FAST[t] == "pow" else (_assoc, (t, obj.args))
        return NotImplemented


_FAST: dict = {}


def dumps(obj) -> bytes:
    """Pickle ``obj`` (SymPy expressions included; see the module docstring)."""
    if not _FAST:
        import sympy

        _FAST.update({sympy.Add: "assoc", sympy.Mul: "assoc", sympy.Pow: "pow"})
    buf = io.BytesIO()
    _Pickler(buf, protocol=pickle.HIGHEST_PROTOCOL).dump(obj)
    return buf.getvalue()


def loads(data: bytes):
    return pickle.loads(data)


# ----------------------------------------------------------------------------- decorator

def key_of(fn, args: tuple, kwargs: dict) -> str | None:
    """``module.function(a=..., b=...)`` with every argument (defaults included) by ``repr``;
    None if a ``repr`` is not a stable value (it shows a memory address)."""
    bound = inspect.signature(fn).bind(*args, **kwargs)
    bound.apply_defaults()
    parts = [f"{name}={value!r}" for name, value in sorted(bound.arguments.items())]
    if any(" at 0x" in part for part in parts):
        return None
    return f"{fn.__module__}.{fn.__qualname__}({', '.join(parts)})"


def persistent(fn):
    """Decorate a function whose value is a deterministic, picklable function of its arguments:
    its values are kept in the cache, keyed by every argument (see :func:`key_of`).

    A value with a ``__dict__`` gets its key as the attribute ``cache_key`` (stored with it), so
    what is compiled from it can be cached under the same key (``Result.numeric``)."""

    @functools.wraps(fn)
    def cached(*args, **kwargs):
        st = store()
        key = key_of(fn, args, kwargs) if st is not None else None
        if key is None:
            return fn(*args, **kwargs)
        data = st.get(key)
        if data is not None:
            try:
                value = loads(data)
                if getattr(value, "cache_key", key) == key:
                    return value
            except Exception:  # e.g. a class that no longer unpickles: derive again
                pass
        value = fn(*args, **kwargs)
        try:
            vars(value)["cache_key"] = key
        except TypeError:
            pass
        try:
            payload = dumps(value)
        except Exception:
            return value
        st.put(key, payload)
        return value

    cached.uncached = fn
    return cached


# ----------------------------------------------------------------------------- info, clear

def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def info() -> dict:
    """Where the cache is, and what it holds (current generation, and older ones)."""
    root = cache_dir()
    out = dict(directory=str(root), enabled=enabled(), generation=generation(), entries=0, bytes=0,
               stale_generations=0, stale_bytes=0, temporary_files=0)
    if not root.is_dir():
        return out
    for gen in sorted(p for p in root.iterdir() if p.is_dir() and _GENERATION.match(p.name)):
        files = [p for p in gen.iterdir() if p.is_file()]
        entries = [p for p in files if _ENTRY.match(p.name)]
        out["temporary_files"] += sum(1 for p in files if _TEMP.match(p.name))
        size = sum(_size(p) for p in files)
        if gen.name == out["generation"]:
            out["entries"], out["bytes"] = len(entries), size
        else:
            out["stale_generations"] += 1
            out["stale_bytes"] += size
    return out


def clear() -> int:
    """Remove every generation (current and stale) from the cache directory; returns bytes freed.

    Only what symmaml writes is touched (generation directories and the cache tag), so pointing
    ``SYMMAML_CACHE_DIR`` at a directory holding other files is safe."""
    import shutil

    root = cache_dir()
    freed = 0
    if not root.is_dir():
        return 0
    for gen in sorted(p for p in root.iterdir() if p.is_dir() and _GENERATION.match(p.name)):
        freed += sum(_size(p) for p in gen.iterdir() if p.is_file())
        shutil.rmtree(gen, ignore_errors=True)
    tag = root / _TAG
    if tag.is_file():
        tag.unlink()
    try:
        root.rmdir()  # only if now empty
    except OSError:
        pass
    return freed
