"""Tests of the ``symmaml`` command line (symmaml.cli).

Most tests call ``main(argv)`` in-process (derivations are cached, so this is fast); a few
run ``python -m symmaml`` in a subprocess to check the real entry point, exit codes and
that errors are one line without a traceback.
"""
from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from symmaml import sim
from symmaml.cli import main, parse_values, UsageError
from symmaml.maml import ORDERS, average_test_loss

ROOT = Path(__file__).resolve().parent.parent
FIG2 = ["--p", "60", "--m", "3", "--n-t", "30", "--n-v", "2", "--n-r", "20", "--sigma", "1", "--nu", "0.5"]
F2 = dict(p=60, m=3, n_t=30, n_v=2, n_r=20, sigma=1.0, nu=0.5)


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def subprocess_run(*argv):
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, "-m", "symmaml", *argv], capture_output=True, text=True, env=env,
                          cwd=ROOT, timeout=120)


# ----------------------------------------------------------------------------- help

@pytest.mark.parametrize("command", [[], ["derive"], ["eval"], ["optimize"], ["simulate"], ["regenerate"]])
def test_help(capsys, command):
    code, out, _ = run(capsys, *command, "--help")
    assert code == 0
    assert out.startswith("usage: symmaml")
    if command in (["eval"], ["simulate"]):
        assert "--alpha-t" in out and "start:stop:count" in out


def test_entry_point_help_and_version():
    proc = subprocess_run("--help")
    assert proc.returncode == 0 and "derive" in proc.stdout and "regenerate" in proc.stdout
    proc = subprocess_run("--version")
    assert proc.returncode == 0 and proc.stdout.startswith("symmaml ")


# ----------------------------------------------------------------------------- values

def test_parse_values():
    assert parse_values("alpha_t", "-2:2:5") == [-2.0, -1.0, 0.0, 1.0, 2.0]
    assert parse_values("alpha_t", "0.1,0.2") == [0.1, 0.2]
    assert parse_values("p", "60") == [60] and isinstance(parse_values("p", "60.0")[0], int)
    assert parse_values("alpha_r", "0:1:1") == [0.0]
    for bad in ("1:2", "a", "1:2:0", "1:2:2.5", "", "0.1,,0.2"):
        with pytest.raises(UsageError, match="malformed"):
            parse_values("alpha_t", bad)
    with pytest.raises(UsageError, match="p must be a positive integer; got 2.5"):
        parse_values("p", "2.5")


# ----------------------------------------------------------------------------- eval

def test_eval_single_point(capsys):
    code, out, err = run(capsys, "eval", "over", *FIG2, "--alpha-t", "0.2", "--alpha-r", "0.1")
    assert code == 0 and err == ""
    f = average_test_loss("over").numeric()
    assert float(out) == f(**F2, alpha_t=0.2, alpha_r=0.1)


def test_eval_single_point_json(capsys):
    code, out, _ = run(capsys, "eval", "under", "--p", "30", "--m", "40", "--n-t", "5", "--n-v", "25", "--n-r", "10",
                       "--sigma", "1", "--nu", "1", "--alpha-t", "-0.1", "--alpha-r", "0.2", "--json")
    assert code == 0
    data = json.loads(out)
    assert data["regime"] == "under" and data["order"] == "leading" and data["backend"] == "numpy"
    assert data["parameters"]["p"] == 30 and data["parameters"]["alpha_t"] == -0.1
    f = average_test_loss("under").numeric()
    assert data["value"] == f(**data["parameters"])


def test_eval_sweep_csv(capsys):
    code, out, _ = run(capsys, "eval", "over", *FIG2, "--alpha-t", "-2:2:81", "--alpha-r", "0.2")
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    assert len(rows) == 81
    assert list(rows[0]) == ["p", "m", "n_t", "n_v", "n_r", "alpha_t", "alpha_r", "sigma", "nu", "dist0", "value"]
    grid = np.linspace(-2, 2, 81)
    expected = average_test_loss("over").numeric()(**F2, alpha_t=grid, alpha_r=0.2)
    assert np.allclose([float(r["alpha_t"]) for r in rows], grid, rtol=0, atol=1e-14)
    assert np.array_equal([float(r["value"]) for r in rows], expected)
    assert rows[0]["p"] == "60"


def test_eval_cartesian_product_json(capsys):
    code, out, _ = run(capsys, "eval", "over", *FIG2, "--alpha-t", "-1:1:3", "--alpha-r", "0.1,0.2", "--json")
    assert code == 0
    data = json.loads(out)
    assert data["swept"] == ["alpha_t", "alpha_r"]
    assert [(r["alpha_t"], r["alpha_r"]) for r in data["rows"]] == [
        (-1.0, 0.1), (-1.0, 0.2), (0.0, 0.1), (0.0, 0.2), (1.0, 0.1), (1.0, 0.2)]
    f = average_test_loss("over").numeric()
    for r in data["rows"]:
        assert r["value"] == pytest.approx(f(**{k: r[k] for k in r if k not in ("value",)}), rel=1e-15)


def test_eval_mpmath(capsys):
    code, out, _ = run(capsys, "eval", "over", *FIG2, "--alpha-t", "0.2", "--alpha-r", "0.1", "--backend", "mpmath",
                       "--dps", "40")
    assert code == 0
    assert len(out.strip().replace("0.", "", 1)) >= 35
    assert float(out) == pytest.approx(average_test_loss("over").numeric()(**F2, alpha_t=0.2, alpha_r=0.1), rel=1e-14)


def test_eval_every_order(capsys):
    """The CLI is generic over ORDERS: each derived (order, regime) evaluates or fails with exit 2."""
    for order, derivations in ORDERS.items():
        for regime in derivations:
            p = "60" if regime == "over" else "5"
            code, out, err = run(capsys, "eval", regime, *FIG2, "--p", p, "--alpha-t", "0", "--alpha-r", "0.1",
                                 "--order", order)
            assert code in (0, 2), (order, regime, err)
            if code == 0:
                assert float(out) > 0
            else:
                assert err.startswith("symmaml: error: ") and err.count("\n") == 1


# ----------------------------------------------------------------------------- derive

def test_derive_writes_documents(capsys, tmp_path):
    tex, frag, md = tmp_path / "a" / "over.tex", tmp_path / "over.fragment.tex", tmp_path / "over.md"
    code, out, err = run(capsys, "derive", "over", "--latex", str(tex), "--fragment", str(frag), "--markdown", str(md))
    assert code == 0
    r = average_test_loss("over")
    assert str(r.expr) in out and "leading" in out and "p > m*n_v" in out
    assert tex.read_text() == r.latex(standalone=True)
    assert frag.read_text() == r.latex()
    assert md.read_text() == r.markdown()
    assert err.count("wrote") == 3


def test_derive_json(capsys):
    code, out, _ = run(capsys, "derive", "under", "--json")
    assert code == 0
    data = json.loads(out)
    assert data["regime"] == "under" and data["conditions"] == ["p < m*n_v"]
    assert data["expr"] == str(average_test_loss("under").expr)


# ----------------------------------------------------------------------------- optimize

def test_optimize_alpha_t_overparameterised(capsys):
    code, out, _ = run(capsys, "optimize", "over", "--wrt", "alpha_t", *FIG2, "--alpha-r", "0.2", "--json")
    assert code == 0
    data = json.loads(out)
    assert data["wrt"] == "alpha_t" and data["argmin"] < 0  # the paper's claim 3
    f = average_test_loss("over").numeric()
    assert data["min"] == pytest.approx(f(**F2, alpha_t=data["argmin"], alpha_r=0.2), rel=1e-12)
    grid = np.linspace(-2, 2, 2001)
    assert data["min"] <= f(**F2, alpha_t=grid, alpha_r=0.2).min() + 1e-12
    code, out, err = run(capsys, "optimize", "over", "--wrt", "alpha_t", *FIG2)
    assert code == 2 and "--alpha-r" in err


# ----------------------------------------------------------------------------- simulate

def test_simulate_json_matches_the_simulator(capsys):
    args = ["simulate", *FIG2, "--alpha-t", "0.2", "--alpha-r", "0.1", "--runs", "64", "--test-tasks", "5"]
    code, out, err = run(capsys, *args, "--json")
    assert code == 0 and err == ""  # no progress bar when stderr is not a terminal
    data = json.loads(out)
    direct = sim.simulate(**F2, alpha_t=0.2, alpha_r=0.1, runs=64, test_tasks=5, seed=0)
    assert data["mean"] == direct["mean"] and data["runs"] == 64 and data["regime"] == "over"
    assert data["stderr"] == direct["stderr"]  # at most one chunk of runs: exactly the simulator
    assert main(args + ["--json", "--workers", "1"]) == 0
    assert capsys.readouterr().out == out


def test_simulate_sweep_csv_and_plain_output(capsys):
    code, out, _ = run(capsys, "simulate", "over", *FIG2, "--alpha-t", "0,0.5", "--alpha-r", "0.1", "--runs", "20",
                       "--test-tasks", "3", "--meta-test", "analytic", "--quiet")
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [r["alpha_t"] for r in rows] == ["0", "0.5"] and all(int(r["runs"]) == 20 for r in rows)
    code, out, _ = run(capsys, "simulate", *FIG2, "--alpha-t", "0.2", "--alpha-r", "0.1", "--runs", "10",
                       "--test-tasks", "2")
    assert code == 0 and "+-" in out and "10 runs" in out


# ----------------------------------------------------------------------------- regenerate

def test_regenerate_runs_scripts_in_order_and_reports_failures(capsys, tmp_path):
    scripts = tmp_path / "derivations"
    scripts.mkdir()
    ok = ("import argparse, pathlib\np = argparse.ArgumentParser(); p.add_argument('--out')\n"
          "out = pathlib.Path(p.parse_args().out); (out / '{name}.txt').write_text('{name}')\n")
    (scripts / "b.py").write_text(ok.format(name="b"))
    (scripts / "a.py").write_text(ok.format(name="a"))
    out_dir = tmp_path / "out"
    code, out, _ = run(capsys, "regenerate", "--scripts", str(scripts), "--out", str(out_dir))
    assert code == 0
    assert out.index("a.py") < out.index("b.py")
    assert (out_dir / "a.txt").read_text() == "a" and (out_dir / "b.txt").read_text() == "b"
    (scripts / "c.py").write_text("raise SystemExit(3)\n")
    code, out, err = run(capsys, "regenerate", "--scripts", str(scripts), "--out", str(out_dir))
    assert code == 1 and "c.py" in err and "FAILED" in out
    empty = tmp_path / "empty"
    empty.mkdir()
    code, _, err = run(capsys, "regenerate", "--scripts", str(empty))
    assert code == 2 and "no derivation scripts" in err


# ----------------------------------------------------------------------------- errors

BAD = [
    (["eval", "sideways", *FIG2, "--alpha-t", "0.2", "--alpha-r", "0.1"], "invalid choice: 'sideways'"),
    (["eval", "over", *FIG2[:-2], "--alpha-t", "0.2", "--alpha-r", "0.1"], "required: --nu"),
    (["eval", "over", *FIG2, "--alpha-t", "-2:2", "--alpha-r", "0.1"], "malformed value for --alpha-t: '-2:2'"),
    (["eval", "over", *FIG2, "--alpha-t", "0.2", "--alpha-r", "x"], "malformed value for --alpha-r"),
    (["eval", "under", *FIG2, "--alpha-t", "0.2", "--alpha-r", "0.1"],
     "regime 'under' requires p < m*n_v; got p=60, m=3, n_v=2"),
    (["eval", "over", *FIG2, "--m", "2.5", "--alpha-t", "0.2", "--alpha-r", "0.1"], "m must be a positive integer"),
    (["eval", "over", *FIG2, "--n-t", "0", "--alpha-t", "0.2", "--alpha-r", "0.1"], "n_t must be a positive integer"),
    (["eval", "over", *FIG2, "--alpha-t", "nan", "--alpha-r", "0.1"], "alpha_t must be a finite real number"),
    (["eval", "over", *FIG2, "--sigma", "-1", "--alpha-t", "0.2", "--alpha-r", "0.1"], "sigma must be"),
    (["eval", "over", *FIG2, "--p", "5:80:4", "--alpha-t", "0.2", "--alpha-r", "0.1"], "requires p > m*n_v; got p=5"),
    (["simulate", "under", *FIG2, "--alpha-t", "0.2", "--alpha-r", "0.1"], "regime 'under' requires p < m*n_v"),
    (["simulate", *FIG2, "--alpha-t", "0.2", "--alpha-r", "0.1", "--runs", "0"], "--runs must be a positive"),
    (["derive", "over", "--order", "nonsense"], "invalid choice: 'nonsense'"),
    (["frobnicate"], "invalid choice: 'frobnicate'"),
]


@pytest.mark.parametrize("argv, message", BAD)
def test_bad_input_is_one_line_and_exit_2(capsys, argv, message):
    code, out, err = run(capsys, *argv)
    assert code == 2, (out, err)
    assert err.startswith("symmaml: error: ") and err.count("\n") == 1, err
    assert message in err


def test_errors_from_the_real_entry_point_have_no_traceback():
    proc = subprocess_run("eval", "over", *FIG2, "--p", "6", "--alpha-t", "0.2", "--alpha-r", "0.1")
    assert proc.returncode == 2
    assert proc.stderr == "symmaml: error: regime 'over' requires p > m*n_v; got p=6, m=3, n_v=2\n"
    proc = subprocess_run("eval", "over", "--p", "60")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr and proc.stderr.count("\n") == 1


def test_negative_sweep_values_are_values_not_options(capsys):
    code, out, _ = run(capsys, "eval", "over", *FIG2, "--alpha-t", "-2:-1:2", "--alpha-r", "-0.1")
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [(r["alpha_t"], r["alpha_r"]) for r in rows] == [("-2", "-0.1"), ("-1", "-0.1")]


def test_derive_lists_named_quantities(capsys):
    code, out, err = run(capsys, "derive", "under", "--order", "corrected", "--json")
    assert code == 0, err
    data = json.loads(out)
    names = [d["name"] for d in data["definitions"]]
    assert names.index("r") < names.index("r_2") < names.index("F") and "quadrature" in data["domain"]
    code, out, err = run(capsys, "derive", "under", "--order", "corrected")
    assert code == 0 and "where (in this order):" in out and "  r_2 = " in out
