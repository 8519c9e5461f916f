"""Exporters: derivations as LaTeX and Markdown, results as fast numeric functions.

* :mod:`symmaml.export.latex` -- :func:`~symmaml.export.latex.expr_latex`,
  :func:`~symmaml.export.latex.derivation_fragment` (to ``\\input`` into a paper) and
  :func:`~symmaml.export.latex.derivation_document` (a standalone article), with long
  expressions broken over aligned lines.
* :mod:`symmaml.export.markdown` -- :func:`~symmaml.export.markdown.derivation_markdown`.
* :mod:`symmaml.export.numeric` -- :func:`~symmaml.export.numeric.numeric_function`
  (NumPy, mpmath or JAX), validating its inputs.
* :mod:`symmaml.export.figures` -- learning-curve figures (matplotlib).

This layer sits above :mod:`symmaml.symbols` and :mod:`symmaml.derivation` only; it knows
nothing of MAML or of the random-matrix engine (objects such as unevaluated expectations
render through their own ``_latex`` methods).
"""
