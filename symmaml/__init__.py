"""symmaml: closed-form learning curves of one-step MAML, derived step by step with SymPy."""
__version__ = "0.1.0"
