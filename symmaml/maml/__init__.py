"""MAML on mixed linear regression: the model family, its derived average test loss, optima."""
from .loss import ORDERS, REGIMES, NotDerived, average_test_loss
from .model import PAPER, Model
from .optimal import WRT, Optimum, optimal, optimize
from .result import Result

__all__ = ["average_test_loss", "optimal", "optimize", "Optimum", "Result", "REGIMES", "ORDERS", "WRT", "Model",
           "PAPER", "NotDerived"]
