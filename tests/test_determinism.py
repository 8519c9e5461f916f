"""The text outputs are byte-identical whatever Python's hash seed.

SymPy's printers order terms by a hash-independent sort key, and the exporters never iterate
over sets or dicts of SymPy objects; this test guards both.  It regenerates the derivations
of both regimes as standalone LaTeX, LaTeX fragment and Markdown (and an ``eval`` sweep)
in two fresh interpreters with PYTHONHASHSEED=0 and =12345 and compares the files.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

SCRIPT = r"""
import sys
from contextlib import redirect_stdout
from pathlib import Path

from symmaml.cli import main

out = Path(sys.argv[1])
for regime in ("over", "under"):
    with open(out / f"{regime}.txt", "w") as fh, redirect_stdout(fh):
        code = main(["derive", regime, "--latex", str(out / f"{regime}.tex"),
                     "--fragment", str(out / f"{regime}.fragment.tex"), "--markdown", str(out / f"{regime}.md")])
    assert code == 0
with open(out / "sweep.csv", "w") as fh, redirect_stdout(fh):
    assert main(["eval", "over", "--p", "60", "--m", "3", "--n-t", "30", "--n-v", "2", "--n-r", "20",
                 "--sigma", "1", "--nu", "0.5", "--alpha-t", "-2:2:9", "--alpha-r", "0.1,0.2"]) == 0
"""


def _generate(directory: Path, hash_seed: str) -> None:
    directory.mkdir()
    env = dict(os.environ, PYTHONHASHSEED=hash_seed, SYMMAML_CACHE="0",  # derived afresh under each seed
               PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run([sys.executable, "-c", SCRIPT, str(directory)], env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]


def test_text_outputs_do_not_depend_on_the_hash_seed(tmp_path):
    a, b = tmp_path / "seed0", tmp_path / "seed12345"
    _generate(a, "0")
    _generate(b, "12345")
    names = sorted(p.name for p in a.iterdir())
    assert names == sorted(p.name for p in b.iterdir())
    assert len(names) == 2 * 4 + 1
    different = [n for n in names if (a / n).read_bytes() != (b / n).read_bytes()]
    assert not different, f"outputs differ between hash seeds: {different}"
    for n in names:
        assert (a / n).stat().st_size > 0
