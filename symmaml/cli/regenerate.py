"""``symmaml regenerate``: run every ``derivations/*.py`` script."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from .common import REPO, UsageError, prepare_output_dir

__all__ = ["register", "run"]


def run(args) -> int:
    scripts_dir = Path(args.scripts) if args.scripts else REPO / "derivations"
    out = Path(args.out) if args.out else scripts_dir / "out"
    scripts = sorted(p for p in scripts_dir.glob("*.py") if not p.name.startswith("_")) if scripts_dir.is_dir() else []
    if not scripts:
        raise UsageError(f"no derivation scripts (*.py) in {scripts_dir}")
    out = prepare_output_dir(str(out))
    # the scripts import the same symmaml as this command, installed or not
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    failed = []
    for script in scripts:
        print(f"== {script.name}", flush=True)
        t = time.monotonic()
        rc = subprocess.run([sys.executable, str(script), "--out", str(out.resolve())],
                            cwd=str(scripts_dir.parent), env=env).returncode
        status = "ok" if rc == 0 else f"FAILED (exit {rc})"
        print(f"== {script.name}: {status} in {time.monotonic() - t:.1f} s", flush=True)
        if rc != 0:
            failed.append(script.name)
    if failed:
        print(f"symmaml: error: {len(failed)} of {len(scripts)} scripts failed: {', '.join(failed)}",
              file=sys.stderr)
        return 1
    print(f"regenerated {len(scripts)} scripts into {out}")
    return 0


def register(sub, regimes, orders) -> None:
    g = sub.add_parser("regenerate", help="run every derivations/*.py script",
                       description="Run each derivations/*.py script in sorted order with this Python, "
                                   "passing --out DIR; exit 1 if any fails.")
    g.add_argument("--out", metavar="DIR", help="output directory (default: derivations/out)")
    g.add_argument("--scripts", metavar="DIR", help="directory of scripts (default: the repository's derivations/)")
    g.set_defaults(func=run)
