"""The rules the nonlinear (network) derivations apply, as data."""
from ..derivation import Rule

NETWORK = Rule(
    "two-layer network, NTK parameterisation",
    r"f(x;\theta) = \tfrac{1}{\sqrt{k}}\sum_{j=1}^{k} a_j\,\phi\big(h_j(x)\big),\quad "
    r"h_j(x) = \tfrac{1}{\sqrt d}\,u_j^{\top}x + c_j,\quad \phi(h) = \max(0, h)",
    conditions=(r"a_j, c_j \sim \mathcal{N}(0,1),\ u_j \sim \mathcal{N}(0, I_d) \text{ at } \theta_0",),
    reference="shared/spec/model.md (nonlinear regression)",
)
TANGENT_KERNEL = Rule(
    "neural tangent kernel",
    r"\Theta(x, x') = \sum_{\text{parameters } \vartheta} \partial_\vartheta f(x;\theta_0)\,\partial_\vartheta f(x';\theta_0)",
    reference="Jacot, Gabriel and Hongler (NeurIPS 2018)",
)
INITIAL_COVARIANCE = Rule(
    "covariance of the initial function",
    r"\Sigma(x, x') = \mathbb{E}\,f(x;\theta_0)\,f(x';\theta_0)",
    reference="Neal (1996); the initial function is a sum of k independent neurons",
)
CHAIN_RULE = Rule(
    "chain rule",
    r"\partial_{u}\,a\phi(h) = a\,\phi'(h)\,\partial_u h,\quad \phi'(h) = \Theta_{\mathrm{H}}(h) \text{ (Heaviside)}",
    reference="SymPy differentiation of the neuron and of the pre-activation",
)
LARGE_WIDTH = Rule(
    "law of large numbers over the neurons",
    r"\tfrac1k\sum_{j=1}^k g(a_j, u_j, c_j) \xrightarrow{k\to\infty} \mathbb{E}\,g(a, u, c)",
    conditions=(r"\text{neurons i.i.d. at initialisation}",),
    reference="the kernels of a finite network fluctuate around this limit by $O(1/\\sqrt{k})$",
)
GAUSSIAN_PREACTIVATIONS = Rule(
    "Gaussian pre-activations",
    r"\big(h(x), h(x')\big) \sim \mathcal{N}\Big(0, \begin{pmatrix} q_{11} & q_{12}\\ q_{12} & q_{22}\end{pmatrix}\Big),"
    r"\quad q_{12} = \mathbb{E}\,h(x)h(x')",
    conditions=(r"h \text{ is linear in the Gaussian } (u, c)",),
    reference="symmaml.rmt.expectation for the covariance",
)
HOMOGENEITY = Rule(
    "positive homogeneity",
    r"\phi(\lambda h) = \lambda\,\phi(h),\ \ \phi'(\lambda h) = \phi'(h)\ \ (\lambda > 0);\quad "
    r"h = \sqrt{q_{11}}\,g_1,\ h' = \sqrt{q_{22}}\,(g_1\cos\vartheta + g_2\sin\vartheta),\ \cos\vartheta = \tfrac{q_{12}}{\sqrt{q_{11}q_{22}}}",
    conditions=(r"g_1, g_2 \sim \mathcal{N}(0,1) \text{ independent}", r"0 \le \vartheta \le \pi"),
)
POLAR = Rule(
    "polar coordinates",
    r"(g_1, g_2) = (r\cos\psi, r\sin\psi),\quad \mathbb{E}\,F = \tfrac{1}{2\pi}\int_0^\infty\!\!\int_{-\pi}^{\pi}"
    r"F\, r e^{-r^2/2}\,d\psi\,dr,\quad g_1\cos\vartheta + g_2\sin\vartheta = r\cos(\psi - \vartheta)",
)
SUPPORT = Rule(
    "support of the product",
    r"\cos\psi > 0 \ \text{and}\ \cos(\psi - \vartheta) > 0 \iff \psi \in \big(\vartheta - \tfrac\pi2, \tfrac\pi2\big)",
    conditions=(r"0 \le \vartheta \le \pi", r"\psi \in (-\pi, \pi]"),
    reference="both half-planes through the origin; their intersection is a wedge of angle $\\pi - \\vartheta$",
)
INTEGRATE = Rule(
    "integration",
    r"\int_0^\infty r^{2n+1}e^{-r^2/2}dr = 2^n n!,\ \ \text{and elementary trigonometric integrals}",
    reference="SymPy integrate",
)
SUBSTITUTE = Rule("substitution", r"\text{insert the computed pieces}")
