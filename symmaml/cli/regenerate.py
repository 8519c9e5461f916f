"""``symmaml regenerate``: run every ``derivations/*.py`` script, several at a time.

The scripts are independent (each writes its own files), so up to ``--jobs`` of them run at once; the
output of each is held until it ends and printed in the scripts' sorted order, so the log reads the
same whatever finishes first.
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .common import REPO, UsageError, prepare_output_dir

__all__ = ["register", "run"]


def _run_scripts(scripts, out: Path, cwd: Path, env: dict, jobs: int) -> list:
    """Run ``scripts`` (at most ``jobs`` at once); print each one's output in order; the names that failed."""
    failed, running, results, total_cpu = [], {}, {}, 0.0
    queue = list(scripts)
    t0 = time.monotonic()

    def start(script):
        log = tempfile.TemporaryFile(mode="w+b")
        proc = subprocess.Popen([sys.executable, str(script), "--out", str(out.resolve())], cwd=str(cwd), env=env,
                                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        running[script] = (proc, log, time.monotonic())

    shown = 0
    try:
        while queue or running:
            while queue and len(running) < jobs:
                start(queue.pop(0))
            time.sleep(0.05)
            for script, (proc, log, t) in list(running.items()):
                cpu = _finished(proc)
                if cpu is not None:
                    del running[script]
                    log.seek(0)
                    results[script] = (proc.returncode, log.read(), time.monotonic() - t, cpu)
                    log.close()
            while shown < len(scripts) and scripts[shown] in results:  # in order, each as soon as it can be
                script = scripts[shown]
                rc, text, seconds, cpu = results.pop(script)
                total_cpu += cpu
                print(f"== {script.name}", flush=True)
                sys.stdout.write(text.decode("utf-8", "replace"))
                status = "ok" if rc == 0 else f"FAILED (exit {rc})"
                print(f"== {script.name}: {status} in {seconds:.1f} s (CPU {cpu:.1f} s)", flush=True)
                if rc != 0:
                    failed.append(script.name)
                shown += 1
    finally:  # interrupted: stop the scripts we started
        for proc, log, _ in running.values():
            proc.terminate()
            proc.wait()
            log.close()
    print(f"== {len(scripts)} scripts in {time.monotonic() - t0:.1f} s, CPU {total_cpu:.1f} s ({jobs} at a time)",
          flush=True)
    return failed


def _finished(proc) -> float | None:
    """None while ``proc`` runs; then its CPU seconds (with its descendants'), and its return code set."""
    if not hasattr(os, "wait4"):
        return None if proc.poll() is None else 0.0
    pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
    if pid == 0:
        return None
    proc.returncode = os.waitstatus_to_exitcode(status)
    return usage.ru_utime + usage.ru_stime


def run(args) -> int:
    scripts_dir = Path(args.scripts) if args.scripts else REPO / "derivations"
    out = Path(args.out) if args.out else scripts_dir / "out"
    scripts = sorted(p for p in scripts_dir.glob("*.py") if not p.name.startswith("_")) if scripts_dir.is_dir() else []
    if not scripts:
        raise UsageError(f"no derivation scripts (*.py) in {scripts_dir}")
    jobs = args.jobs if args.jobs is not None else _default_jobs()
    if jobs < 1:
        raise UsageError(f"--jobs must be a positive integer; got {jobs}")
    out = prepare_output_dir(str(out))
    # the scripts import the same symmaml as this command, installed or not
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    failed = _run_scripts(scripts, out, scripts_dir.parent, env, jobs)
    if failed:
        print(f"symmaml: error: {len(failed)} of {len(scripts)} scripts failed: {', '.join(failed)}",
              file=sys.stderr)
        return 1
    print(f"regenerated {len(scripts)} scripts into {out}")
    return 0


def _default_jobs() -> int:
    from ..sweep import cpu_count

    return cpu_count()


def register(sub, regimes, orders) -> None:
    g = sub.add_parser("regenerate", help="run every derivations/*.py script",
                       description="Run each derivations/*.py script with this Python, passing --out DIR, "
                                   "several at a time (--jobs), printing each one's output in sorted order; "
                                   "exit 1 if any fails.")
    g.add_argument("--out", metavar="DIR", help="output directory (default: derivations/out)")
    g.add_argument("--scripts", metavar="DIR", help="directory of scripts (default: the repository's derivations/)")
    g.add_argument("--jobs", "-j", type=int, default=None, metavar="N",
                   help="scripts run at once (default: one per CPU); the outputs do not depend on it")
    g.set_defaults(func=run)
