"""One-step MAML on mixed linear regression: the model and its derived average test loss."""
from .loss import ORDERS, REGIMES, average_test_loss
from .result import Result

__all__ = ["average_test_loss", "Result", "REGIMES", "ORDERS"]
