"""``symmaml cache``: where the persistent cache is and what it holds (``info``); empty it (``clear``)."""
from __future__ import annotations

import json

__all__ = ["register", "run"]


def _size(n: int) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n} B"


def run(args) -> int:
    from .. import cache

    if args.action == "clear":
        freed = cache.clear()
        print(f"cleared {cache.cache_dir()} ({_size(freed)} freed)")
        return 0
    info = cache.info()
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    print(f"directory: {info['directory']}" + ("" if info["enabled"] else " (turned off: SYMMAML_CACHE=0)"))
    print(f"generation: {info['generation']} (package version and a hash of the engine's source)")
    print(f"entries: {info['entries']} ({_size(info['bytes'])})")
    if info["stale_generations"]:
        print(f"older generations: {info['stale_generations']} ({_size(info['stale_bytes'])}; never read; "
              "'symmaml cache clear' removes them)")
    if info["temporary_files"]:
        print(f"unfinished writes: {info['temporary_files']} temporary files (from interrupted processes)")
    return 0


def register(sub, regimes, orders) -> None:
    c = sub.add_parser("cache", help="the persistent cache of derived results: info or clear",
                       description="Derived results and their compiled numeric functions are kept in a "
                                   "persistent cache (the user cache directory, or SYMMAML_CACHE_DIR; "
                                   "SYMMAML_CACHE=0 turns it off). 'info' shows where and what; 'clear' "
                                   "removes every entry (the next use derives again).")
    c.add_argument("action", choices=("info", "clear"))
    c.add_argument("--json", action="store_true", help="print info as JSON")
    c.set_defaults(func=run)
