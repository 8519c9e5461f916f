"""One-step MAML on mixed linear regression: the model, its derived average test loss, optima."""
from .loss import ORDERS, REGIMES, average_test_loss
from .optimal import WRT, Optimum, optimal, optimize
from .result import Result

__all__ = ["average_test_loss", "optimal", "optimize", "Optimum", "Result", "REGIMES", "ORDERS", "WRT"]
