"""The command line's model options: --inner-steps, --adaptation-steps, --spectrum on every command."""
from __future__ import annotations

import json

import pytest

from symmaml.cli import main
from symmaml.maml import Model, average_test_loss

FIG2 = ["--p", "60", "--m", "3", "--n-t", "30", "--n-v", "2", "--n-r", "20", "--sigma", "1", "--nu", "0.5"]


def run(capsys, argv):
    code = main(argv)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_eval_with_model_options(capsys):
    code, out, _ = run(capsys, ["eval", "over", *FIG2, "--alpha-t", "0.2", "--alpha-r", "0.2", "--inner-steps", "2",
                                "--json"])
    assert code == 0
    res = json.loads(out)
    expect = average_test_loss("over", model=Model(2)).numeric()(p=60, m=3, n_t=30, n_v=2, n_r=20, alpha_t=0.2,
                                                                   alpha_r=0.2, sigma=1.0, nu=0.5)
    assert res["value"] == pytest.approx(expect, rel=1e-14) and res["model"]["inner_steps"] == 2
    code, out, _ = run(capsys, ["eval", "over", *FIG2, "--alpha-t", "0.2", "--alpha-r", "0.2", "--spectrum", "0.5,1.5"])
    expect = average_test_loss("over", model=Model(anisotropic=True)).numeric()(
        p=60, m=3, n_t=30, n_v=2, n_r=20, alpha_t=0.2, alpha_r=0.2, sigma=1.0, nu=0.5, spectrum=[0.5, 1.5])
    assert code == 0 and float(out) == pytest.approx(expect, rel=1e-14)


def test_derive_names_the_model(capsys):
    code, out, _ = run(capsys, ["derive", "over", "--adaptation-steps", "2"])
    assert code == 0 and "k_r = 2 adaptation steps" in out


def test_simulate_passes_the_options_through(capsys):
    base = ["simulate", *FIG2, "--alpha-t", "0.2", "--alpha-r", "0.2", "--runs", "128", "--json",
            "--quiet"]
    code, out, _ = run(capsys, base + ["--inner-steps", "2", "--adaptation-steps", "2", "--spectrum", "0.5,1.5"])
    from symmaml.sim import simulate

    ref = simulate(p=60, m=3, n_t=30, n_v=2, n_r=20, alpha_t=0.2, alpha_r=0.2, sigma=1.0, nu=0.5, runs=128, seed=0,
                   inner_steps=2, adaptation_steps=2, spectrum=(0.5, 1.5))
    assert code == 0 and json.loads(out)["mean"] == ref["mean"]


def test_optimize_a_model(capsys):
    code, out, _ = run(capsys, ["optimize", "over", "--wrt", "alpha_t", *FIG2, "--alpha-r", "0.2", "--spectrum", "1",
                                "--json"])
    res = json.loads(out)
    paper = average_test_loss("over")
    from symmaml.maml import optimize

    ref = optimize("over", "alpha_t", p=60, m=3, n_t=30, n_v=2, n_r=20, alpha_r=0.2, sigma=1.0, nu=0.5)
    assert code == 0 and res["method"] == "bracketed numeric" and not res["certified"] and paper is not None
    assert res["argmin"] == pytest.approx(ref["argmin"], abs=1e-6)  # one level 1.0 is the paper's model


@pytest.mark.parametrize("argv,message", [
    (["--inner-steps", "0"], "--inner-steps must be a positive integer; got '0'"),
    (["--adaptation-steps", "1.5"], "--adaptation-steps must be a positive integer; got '1.5'"),
    (["--spectrum", "0.5,-1"], "--spectrum levels must be positive finite numbers"),
    (["--spectrum", "a"], "malformed value for --spectrum"),
])
def test_bad_model_options(capsys, argv, message):
    code, _, err = run(capsys, ["eval", "over", *FIG2, "--alpha-t", "0.2", "--alpha-r", "0.2", *argv])
    assert code == 2 and err.startswith("symmaml: error: ") and message in err and err.count("\n") == 1


def test_orders_not_derived_for_a_model_say_why(capsys):
    code, _, err = run(capsys, ["derive", "over", "--order", "exact", "--spectrum", "1,2"])
    assert code == 2 and "not an inverse-Wishart moment" in err
    code, _, err = run(capsys, ["simulate", *FIG2[:2], "--m", "30", *FIG2[4:], "--alpha-t", "0", "--alpha-r", "0",
                                "--runs", "2", "--quiet"])
    assert code == 2 and "interpolation threshold" in err
