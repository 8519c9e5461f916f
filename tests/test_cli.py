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
import re
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
    (tmp_path / "a").mkdir()  # an existing directory: a missing one is refused, never created
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


# ----------------------------------------------------------------------------- output files and faults (issue 14)

FIG2_POINT = [*FIG2, "--alpha-t", "0.2", "--alpha-r", "0.1"]


def _unwritable_targets(tmp_path):
    targets = [(str(tmp_path), "it is a directory"),
               (str(tmp_path / "no" / "such" / "x.tex"), "does not exist (create it first)"),
               (str(tmp_path / "file.txt" / "x.tex"), "is not a directory")]
    (tmp_path / "file.txt").write_text("a file")
    if Path("/proc/self").is_dir():
        targets.append(("/proc/x.tex", "cannot create a file in /proc"))
    if Path("/dev/full").exists():
        targets.append(("/dev/full", "No space left on device"))
    return targets


def test_unwritable_output_files_are_one_line_and_nothing_half_written(capsys, tmp_path):
    for target, reason in _unwritable_targets(tmp_path):
        good = tmp_path / "good.md"
        code, out, err = run(capsys, "derive", "over", "--markdown", str(good), "--latex", target)
        assert code == 2 and out == "", (target, err)
        assert err.startswith("symmaml: error: cannot write the standalone LaTeX to ") and err.count("\n") == 1, err
        assert reason in err and target in err
        assert not good.exists()  # all outputs or none
    assert not (tmp_path / "no").exists()  # a missing directory is never created
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_a_failing_rename_leaves_the_old_file_and_no_temporary(capsys, tmp_path, monkeypatch):
    """A read-only place or a full disk at the last moment: the target keeps its old content."""
    target = tmp_path / "over.tex"
    target.write_text("old")

    def read_only(src, dst):
        raise OSError(30, "Read-only file system")

    monkeypatch.setattr(os, "replace", read_only)
    code, out, err = run(capsys, "derive", "over", "--latex", str(target))
    assert code == 2 and err == f"symmaml: error: cannot write the standalone LaTeX to {target}: Read-only file system\n"
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["over.tex"]


def test_outputs_are_written_whole_and_keep_the_file_mode(capsys, tmp_path):
    target = tmp_path / "over.md"
    target.write_text("old")
    target.chmod(0o640)
    code, _, err = run(capsys, "derive", "over", "--markdown", str(target))
    assert code == 0 and target.read_text() == average_test_loss("over").markdown()
    assert oct(target.stat().st_mode & 0o777) == "0o640" and f"wrote {target} (Markdown)" in err


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_a_full_standard_output_is_one_line_exit_2():
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    with open("/dev/full", "w") as full:
        proc = subprocess.run([sys.executable, "-m", "symmaml", "eval", "over", *FIG2_POINT], stdout=full,
                              stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr == "symmaml: error: cannot write to standard output: No space left on device\n"


def test_regenerate_refuses_an_unwritable_output_directory(capsys, tmp_path):
    scripts = tmp_path / "scripts"
    scripts.mkdir()
    (scripts / "a.py").write_text("print('a')\n")
    bad = [(str(tmp_path / "no" / "out"), "does not exist (create it first)")]
    if Path("/proc/self").is_dir():
        bad.append(("/proc/x", "cannot create the output directory /proc/x"))
    for out_dir, reason in bad:
        code, out, err = run(capsys, "regenerate", "--scripts", str(scripts), "--out", out_dir)
        assert code == 2 and reason in err and err.count("\n") == 1 and "== a.py" not in out
    assert not (tmp_path / "no").exists()


def test_internal_errors_are_one_line_without_traceback(capsys, monkeypatch):
    from symmaml.cli import evaluate

    def boom(args):
        raise ZeroDivisionError("division by zero somewhere")

    monkeypatch.setattr(evaluate, "run", boom)
    code, out, err = run(capsys, "eval", "over", *FIG2_POINT)
    assert code == 1 and "Traceback" not in err and err.count("\n") == 1
    assert err.startswith("symmaml: error: internal error (ZeroDivisionError: division by zero somewhere)")
    monkeypatch.setenv("SYMMAML_DEBUG", "1")
    with pytest.raises(ZeroDivisionError):
        main(["eval", "over", *FIG2_POINT])


def test_dps_is_checked_and_mpmath_takes_the_printed_decimals(capsys):
    code, _, err = run(capsys, "eval", "over", *FIG2_POINT, "--dps", "30")
    assert code == 2 and "--dps applies to --backend mpmath only" in err
    for dps in ("0", "-5"):
        code, _, err = run(capsys, "eval", "over", *FIG2_POINT, "--backend", "mpmath", "--dps", dps)
        assert code == 2 and "dps must be a positive integer" in err, err
    code, out, _ = run(capsys, "eval", "over", *FIG2_POINT, "--backend", "mpmath", "--dps", "45")
    assert code == 0
    from fractions import Fraction

    exact = average_test_loss("over").numeric("mpmath", dps=45)(**F2, alpha_t=Fraction(1, 5), alpha_r=Fraction(1, 10))
    assert out.strip() == str(exact) and len(out.strip()) >= 44  # 0.2 read as one fifth, printed to 45 digits


def test_cache_info_and_clear(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("SYMMAML_CACHE_DIR", str(tmp_path / "cache"))
    code, out, _ = run(capsys, "cache", "info")
    assert code == 0 and f"directory: {tmp_path / 'cache'}" in out and "entries: 0" in out
    from symmaml.maml.loss import _average_test_loss
    from symmaml.maml.model import PAPER

    _average_test_loss.__wrapped__("over", "leading", PAPER)  # stores one result
    code, out, _ = run(capsys, "cache", "info", "--json")
    info = json.loads(out)
    assert code == 0 and info["entries"] == 1 and info["bytes"] > 0
    code, out, _ = run(capsys, "cache", "clear")
    assert code == 0 and out.startswith("cleared ") and not (tmp_path / "cache").exists()


# ----------------------------------------------------------------------------- optimize, every order

FIG3 = ["--p", "30", "--m", "40", "--n-t", "5", "--n-v", "25", "--n-r", "10", "--sigma", "1", "--nu", "1"]


@pytest.mark.parametrize("regime, wrt", [("over", "alpha_t"), ("over", "alpha_r"), ("under", "alpha_t"),
                                         ("under", "alpha_r")])
def test_optimize_at_the_corrected_order(capsys, regime, wrt):
    """All four regime/rate combinations answer, with the method stated; the minimum beats a grid."""
    base, other = (FIG2, F2) if regime == "over" else (FIG3, dict(p=30, m=40, n_t=5, n_v=25, n_r=10, sigma=1.0,
                                                                      nu=1.0))
    fixed = "--alpha-r" if wrt == "alpha_t" else "--alpha-t"
    code, out, err = run(capsys, "optimize", regime, "--wrt", wrt, "--order", "corrected", *base, fixed, "0.2", "--json")
    assert code == 0, err
    res = json.loads(out)
    f = average_test_loss(regime, "corrected").numeric()
    point = dict(other, alpha_t=0.2, alpha_r=0.2)
    lo, hi = (-2, 2) if wrt == "alpha_t" and regime == "over" else (-0.5, 0.5)
    grid = f.masked(**{**point, wrt: np.linspace(lo, hi, 801)})
    assert res["min"] <= np.nanmin(grid) + 1e-12 and res["min"] == pytest.approx(f(**{**point, wrt: res["argmin"]}))
    if wrt == "alpha_t":
        assert res["method"] == "bracketed numeric" and res["interior"] and not res["certified"]
        assert res["bracket"][0] < res["argmin"] < res["bracket"][1] and res["argmin"] < 0
        code, out, _ = run(capsys, "optimize", regime, "--wrt", wrt, "--order", "corrected", *base, fixed, "0.2")
        assert "bracketed numeric: a minimum interior to [" in out and "not certified" in out
    else:
        assert res["method"] == "closed form" and res["argmin"] > 0


def test_optimize_exact_alpha_t_and_a_flat_loss_say_what_they_are(capsys):
    code, _, err = run(capsys, "optimize", "over", "--wrt", "alpha_t", "--order", "exact", *FIG2, "--alpha-r", "0.2")
    assert code == 2 and "holds only at alpha_t = 0" in err
    code, out, _ = run(capsys, "optimize", "over", "--wrt", "alpha_r", "--order", "exact", *FIG2, "--alpha-t", "0")
    assert code == 0 and out.startswith("alpha_r = ")
    # sigma = 0: the leading-order loss does not depend on alpha_t; no "certified" unique minimiser
    code, out, _ = run(capsys, "optimize", "over", "--wrt", "alpha_t", *FIG2, "--sigma", "0", "--alpha-r", "0.2")
    assert code == 0 and out.startswith("every alpha_t minimises the loss here") and "certified" not in out
    code, out, _ = run(capsys, "optimize", "over", "--wrt", "alpha_t", *FIG2, "--sigma", "0", "--alpha-r", "0.2",
                       "--json")
    res = json.loads(out)
    assert res["degenerate"] and res["argmin"] is None and not res["certified"]


# ----------------------------------------------------------------------------- fuzzing the command line

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

FUZZ_EXAMPLES = int(os.environ.get("SYMMAML_FUZZ_EXAMPLES", "150"))
_VALID = {"over": dict(p="60", m="3", n_t="30", n_v="2", n_r="20", alpha_t="0.2", alpha_r="0.1", sigma="1", nu="0.5"),
          "under": dict(p="30", m="40", n_t="5", n_v="25", n_r="10", alpha_t="0.2", alpha_r="0.1", sigma="1", nu="1")}
_ODD = ["0", "-1", "1e400", "-1e-320", "nan", "inf", "-inf", "abc", "", " ", "1:2", "1:2:0", "1:2:-3", "2:1:3",
        "0.5,", ",", "1,,2", "60.0", "60.5", "7", "1e3", "-0.0", "0x10", "1_000", "--", "--p", "3:3:1", "5:80:3",
        "-2:2:3", "1e308:1e308:2", "99999999999999999999", "0.2,0.3"]
_HUGE = {"1e308:1e308:2", "99999999999999999999", "1e3"}


@settings(max_examples=FUZZ_EXAMPLES, derandomize=True, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_fuzzed_command_lines_answer_or_fail_in_one_line(capsys, tmp_path, data):
    """Any command line either succeeds with finite numbers (exit 0) or prints exactly one line
    ``symmaml: error: ...`` (exit 2): never a traceback, never an internal error, never nan."""
    command = data.draw(st.sampled_from(["eval", "eval", "optimize", "derive", "simulate"]))
    regime = data.draw(st.sampled_from(["over", "under", "over", "sideways"]))
    argv = [command, regime]
    order = data.draw(st.sampled_from([None, "leading", "exact", "corrected", "nonsense"]))
    if order and command != "simulate":
        argv += ["--order", order]
    if command != "derive":
        values = dict(_VALID.get(regime, _VALID["over"]))
        # simulate is not fed huge sizes (n_r = 1e308 overflows in symmaml.sim: a finding left to the
        # simulator's rework; 1000 would only be slow)
        odd = [v for v in _ODD if command != "simulate" or v not in _HUGE]
        for name in data.draw(st.lists(st.sampled_from(list(values) + ["dist0"]), max_size=3, unique=True)):
            values[name] = data.draw(st.sampled_from(odd + [None]), label=name)
        if command == "optimize":
            values.pop(data.draw(st.sampled_from(["alpha_t", "alpha_r"])), None)
            argv += ["--wrt", data.draw(st.sampled_from(["alpha_t", "alpha_r", "beta"]))]
        for name, value in values.items():
            if value is not None:
                argv += [f"--{name.replace('_', '-')}", value]
        if command == "simulate":
            argv += ["--runs", data.draw(st.sampled_from(["2", "3", "0", "x"])), "--test-tasks", "2", "--quiet"]
    if command == "eval" and data.draw(st.booleans()):
        argv += ["--backend", "mpmath", "--dps", data.draw(st.sampled_from(["1", "15", "0", "-5", "x"]))]
    if command == "derive" and data.draw(st.booleans()):
        argv += ["--markdown", data.draw(st.sampled_from([str(tmp_path / "d.md"), str(tmp_path), "/proc/x.md",
                                                          str(tmp_path / "no" / "d.md")]))]
    if data.draw(st.booleans()):
        argv.append("--json")
    code, out, err = run(capsys, *argv)
    assert code in (0, 2), (argv, code, err)
    if code == 2:
        assert err.startswith("symmaml: error: ") and err.count("\n") == 1 and "Traceback" not in err, (argv, err)
        return
    if command != "derive":  # a derived expression may contain nan (outside a domain) as a symbol
        numbers = re.findall(r"(?<![\w.])(?:-?(?:nan|inf(?:inity)?))(?![\w])", out.lower())
        assert not numbers and not re.search(r'"(value|min|mean|stderr)": null', out), (argv, out)


# ----------------------------------------------------------------------------- eval under --order corrected: its domain

def _eval(capsys, *argv):
    code, out, err = run(capsys, "eval", "under", "--order", *argv)
    return code, (float(out) if code == 0 else None), err


NEAR_THRESHOLD = ["--p", "33", "--m", "10", "--n-v", "5", "--n-t", "10", "--n-r", "10", "--sigma", "1", "--nu", "1",
                  "--alpha-r", "0.2"]  # m n_v / p = 1.5


def test_corrected_under_answers_where_it_equals_the_exact_result(capsys):
    """alpha_t = 0 near the interpolation threshold (m n_v/p = 1.5, 1.04 at p = m n_v - 2, and
    p = 666, m = 40, n_v = 25) is the exact result by construction: it used to be refused with a
    message about heavy-tailed inner steps.  sigma = nu = 0 gives 0 (no noise, no task variability)."""
    for sizes in (NEAR_THRESHOLD, [*NEAR_THRESHOLD, "--p", "48"], [*NEAR_THRESHOLD, "--p", "666", "--m", "40",
                                                                    "--n-v", "25", "--n-t", "100"]):
        code, corrected, err = _eval(capsys, "corrected", *sizes, "--alpha-t", "0")
        assert code == 0, err
        _, exact, _ = _eval(capsys, "exact", *sizes, "--alpha-t", "0")
        assert corrected == pytest.approx(exact, rel=1e-12)
    code, value, err = _eval(capsys, "corrected", *NEAR_THRESHOLD, "--alpha-t", "0.2", "--sigma", "0", "--nu", "0")
    assert code == 0 and value == 0.0, err
    code, value, _ = _eval(capsys, "corrected", *NEAR_THRESHOLD, "--alpha-t", "0.2", "--sigma", "0")
    assert code == 0 and value > 0


def test_corrected_under_refuses_with_the_true_reason(capsys):
    code, _, err = _eval(capsys, "corrected", *NEAR_THRESHOLD, "--alpha-t", "-0.7")
    assert code == 2 and "outside its domain" in err and "heavy-tailed" in err and "at alpha_t = 0" in err
    code, _, err = _eval(capsys, "corrected", *NEAR_THRESHOLD, "--p", "49", "--alpha-t", "0")
    assert code == 2 and "requires p < m*n_v - 1" in err  # the exact anchor needs it: the moment does not exist


def test_corrected_under_near_the_threshold_against_simulation():
    """At m n_v/p = 1.5, alpha_t = 0.2 (newly in the domain) the corrected result was measured
    within 0.6% of simulation (1.1 s.e.); leading is 44% low.  Tolerance: 4 s.e. of 3,000 runs
    (about 0.6% each) plus 0.6%: leading, or a result off by 3%, fails it."""
    prm = dict(p=33, m=10, n_v=5, n_t=10, n_r=10, sigma=1.0, nu=1.0, alpha_t=0.2, alpha_r=0.2)
    value = average_test_loss("under", "corrected").numeric()(**prm)
    lead = average_test_loss("under").numeric()(**prm)
    s = sim.simulate(**prm, runs=3000, seed=3, test_tasks=20)
    assert abs(value - s["mean"]) < 4 * s["stderr"] + 0.006 * s["mean"], (value, s["mean"], s["stderr"])
    assert abs(lead - s["mean"]) > 10 * (4 * s["stderr"] + 0.006 * s["mean"])


NTK = ["ntk", "simulate", "--d", "30", "--m", "3", "--n-t", "30", "--n-v", "2", "--n-r", "20", "--alpha-t", "-2",
       "--alpha-r", "0.3", "--sigma", "0.5", "--nu", "0.3", "--beta", "0.1"]
NN = ["nn", "train", "--width", "8", "--d", "6", "--m", "2", "--n-t", "4", "--n-v", "2", "--n-r", "4", "--alpha-t", "0",
      "--alpha-r", "0.1", "--sigma", "0.5", "--nu", "0.3", "--beta", "0.1"]


@pytest.mark.parametrize("argv, message", [
    (NTK + ["--runs", "0"], "--runs must be a positive integer; got 0"),
    (NTK + ["--test-tasks", "0"], "--test-tasks must be a positive integer; got 0"),
    (NTK + ["--test-points", "-3"], "--test-points must be a positive integer; got -3"),
    (NTK + ["--seed", "-1"], "--seed must be a non-negative integer; got -1"),
    (NN + ["--runs", "0"], "--runs must be a positive integer; got 0"),
    (NN + ["--test-points", "1"], "--test-points must be an integer >= 2; got 1"),
    (NN + ["--seed", "-1"], "--seed must be a non-negative integer; got -1"),
    (["simulate", *FIG2, "--alpha-t", "0.2", "--alpha-r", "0.1", "--test-tasks", "0"],
     "--test-tasks must be a positive integer; got 0"),
])
def test_the_simulating_commands_check_their_counts_alike(capsys, argv, message):
    code, out, err = run(capsys, *argv)
    assert code == 2 and err == f"symmaml: error: {message}\n", err
