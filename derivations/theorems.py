"""Appendix A: the average test loss of one-step MAML, both regimes, every derived order.

Regenerates, from the model's definition, the two theorems of Bernacchia (ICLR 2021) (leading
order) and symmaml's exact overparameterised result at alpha_t = 0, with every step the engine
took, as a standalone LaTeX document, a LaTeX fragment to ``\\input`` and Markdown:

    derivations/out/theorem_{regime}_{order}.{tex,fragment.tex,md}
"""
import argparse
from pathlib import Path

from symmaml.maml import ORDERS, average_test_loss

OUT = Path(__file__).resolve().parent / "out"


def main(out: Path = OUT) -> None:
    out.mkdir(parents=True, exist_ok=True)
    derived = [(order, regime) for order, regimes in ORDERS.items() for regime in sorted(regimes)]
    for order, regime in derived:
        result = average_test_loss(regime, order)  # derived now, step by step
        stem = out / f"theorem_{regime}_{order}"
        stem.with_suffix(".tex").write_text(result.latex(standalone=True))
        Path(f"{stem}.fragment.tex").write_text(result.latex())
        stem.with_suffix(".md").write_text(result.markdown())
        print(f"{regime}, {order}: {len(result.derivation)} steps -> {stem}.{{tex,fragment.tex,md}}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT)
    main(parser.parse_args().out)
