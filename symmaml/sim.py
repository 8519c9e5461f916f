"""Vectorised NumPy Monte Carlo simulator of MAML on mixed linear regression.

This is the ground truth that derived formulas are tested against: the meta-training
design Z and target b are built from sampled data exactly as the algorithm defines them
(never from a closed form of the averaged loss). Notation follows the spec (model.md).

The model family: ``inner_steps`` k_t full-batch steps with alpha_t on the support set
(Z_i = X_v A_i^{k_t}, built by applying the step k_t times), ``adaptation_steps`` k_r steps
with alpha_r at meta-test, and ``spectrum``: inputs x ~ N(0, Sigma) with Sigma diagonal, each
level repeated p / (number of levels) times, and the population test loss
(sigma^2 + (w - theta)^T Sigma (w - theta)) / 2.

By rotational invariance only dist0 = |omega0 - w0|^2 enters averaged results, so the
simulator uses w0 = 0 and omega0 = sqrt(dist0) e_1. With a spectrum the loss depends on the
direction of omega0 - w0; it is then drawn uniformly on the sphere of radius sqrt(dist0), per
run (the theory's assumption).

Randomness: numpy.random.Generator(PCG64). Runs are grouped in fixed blocks of
BLOCK runs; block k draws everything (meta-training, then meta-test) from its own child
generator, spawned k-th from SeedSequence(seed). Guarantee: for the same parameters, seed,
runs, test_tasks and meta_test (and this version of the module) the output is bit-for-bit
identical, whatever `batch` and `workers` are (they only set how blocks are grouped and
scheduled). Meta-training draws do not depend on meta_test, so the modes share omega* for
a given seed (common random numbers). The runs of a shorter simulation are not a prefix of
a longer one's (the last block is drawn at its own size). seed=None: fresh OS entropy.

Near p = m n_v the test loss is heavy-tailed (for Gaussian Z its mean diverges at
p = m n_v), so there mean and stderr are unreliable; at |p - m n_v| <= 1 the mean is infinite
(with label noise or task spread), and simulate() refuses.
"""

from __future__ import annotations

import math
import numbers
from typing import NamedTuple

import numpy as np

__all__ = [
    "BLOCK",
    "META_TEST_MODES",
    "Params",
    "check_finite",
    "check_positive_int",
    "check_spectrum",
    "check_threshold",
    "make_params",
    "meta_loss",
    "meta_solution",
    "meta_solution_gd",
    "meta_test_analytic",
    "meta_test_full",
    "meta_test_reduced",
    "meta_test_reduced_sigma",
    "regime",
    "sample_meta_training",
    "simulate",
]

BLOCK = 64
"""Runs per random-number block (one child generator each); fixed so results do not depend on batch."""

META_TEST_MODES = ("full", "reduced", "analytic")

_MEMORY_BUDGET = 32 * 2**20
"""Bytes of working arrays per processing batch (default batch sizing); well under 200 MB."""


# --------------------------------------------------------------------------- validation


def check_positive_int(name: str, value) -> int:
    """Return `value` as int if it is a positive integer: an int, a numpy integer or an integral
    float such as 60.0 (booleans refused); else ValueError/TypeError naming the parameter."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a positive integer; got {value!r}")
    if not isinstance(value, numbers.Integral):
        x = float(value)
        if not (math.isfinite(x) and x.is_integer()):
            raise ValueError(f"{name} must be a positive integer; got {value!r}")
        value = int(x)
    if value < 1:
        raise ValueError(f"{name} must be a positive integer; got {value!r}")
    return int(value)


def check_spectrum(spectrum, p: int) -> tuple | None:
    """The eigenvalue levels of Sigma as a tuple of floats (None: isotropic inputs). Each level
    has an equal share of the p directions, so p must be divisible by the number of levels."""
    if spectrum is None:
        return None
    if isinstance(spectrum, (str, bytes)):
        raise TypeError(f"spectrum must be a sequence of positive finite levels; got {spectrum!r}")
    try:
        levels = [x for x in np.asarray(spectrum, dtype=object).reshape(-1)]
    except Exception:
        raise TypeError(f"spectrum must be a sequence of positive finite levels; got {spectrum!r}") from None
    if not levels:
        raise ValueError(f"spectrum must be a non-empty sequence of positive finite levels; got {spectrum!r}")
    out = []
    for x in levels:
        if isinstance(x, (bool, np.bool_)) or not isinstance(x, numbers.Real):
            raise TypeError(f"spectrum levels must be positive finite numbers; got {x!r}")
        if not (math.isfinite(float(x)) and float(x) > 0):
            raise ValueError(f"spectrum levels must be positive finite numbers; got {x!r}")
        out.append(float(x))
    if p % len(out):
        raise ValueError(f"p must be divisible by the number of spectrum levels; got p={p}, {len(out)} levels")
    return tuple(out)


def check_finite(name: str, value, minimum: float | None = None) -> float:
    """Return `value` as float if it is a finite real number (>= minimum when given)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a finite real number, got {value!r} ({type(value).__name__})")
    x = float(value)
    if not math.isfinite(x):
        raise ValueError(f"{name} must be a finite real number, got {value!r}")
    if minimum is not None and x < minimum:
        raise ValueError(f"{name} must be finite and >= {minimum:g}, got {value!r}")
    return x


class Params(NamedTuple):
    """Validated model sizes and scalars (spec names); build with make_params."""

    p: int
    m: int
    n_t: int
    n_v: int
    n_r: int
    alpha_t: float
    alpha_r: float
    sigma: float
    nu: float
    dist0: float = 0.0
    inner_steps: int = 1
    adaptation_steps: int = 1
    spectrum: tuple | None = None

    @property
    def regime(self) -> str:
        return regime(self.p, self.m, self.n_v)

    def omega0(self) -> np.ndarray:
        """Meta-training initialisation sqrt(dist0) e_1 (w0 = 0)."""
        w = np.zeros(self.p)
        w[0] = math.sqrt(self.dist0)
        return w

    def sigma_diag(self) -> np.ndarray | None:
        """The diagonal of Sigma (each level repeated p / levels times), or None (identity)."""
        if self.spectrum is None:
            return None
        return np.repeat(np.asarray(self.spectrum, dtype=float), self.p // len(self.spectrum))


def make_params(p, m, n_t, n_v, n_r, alpha_t, alpha_r, sigma, nu, dist0=0.0, inner_steps=1,
                adaptation_steps=1, spectrum=None) -> Params:
    """Validate and pack the model parameters (ValueError/TypeError naming the bad one)."""
    p = check_positive_int("p", p)
    return Params(
        p=p,
        m=check_positive_int("m", m),
        n_t=check_positive_int("n_t", n_t),
        n_v=check_positive_int("n_v", n_v),
        n_r=check_positive_int("n_r", n_r),
        alpha_t=check_finite("alpha_t", alpha_t),
        alpha_r=check_finite("alpha_r", alpha_r),
        sigma=check_finite("sigma", sigma, minimum=0.0),
        nu=check_finite("nu", nu, minimum=0.0),
        dist0=check_finite("dist0", dist0, minimum=0.0),
        inner_steps=check_positive_int("inner_steps", inner_steps),
        adaptation_steps=check_positive_int("adaptation_steps", adaptation_steps),
        spectrum=check_spectrum(spectrum, p),
    )


def regime(p: int, m: int, n_v: int) -> str:
    """'under' if p < m n_v, 'over' if p > m n_v, 'square' if equal."""
    n = m * n_v
    return "under" if p < n else ("over" if p > n else "square")


# --------------------------------------------------------------------------- meta-training


def _draw_training(rng: np.random.Generator, prm: Params, X, z, w, start=None) -> None:
    """Fill X (B, m, n_t+n_v, p), z (B, m, n_t+n_v), w (B, m, p) in place, fixed draw order; with a
    spectrum the columns of X are scaled by sqrt(Sigma) and, if dist0 > 0, ``start`` (B, p) receives
    omega0 - w0, uniform on the sphere of radius sqrt(dist0) (drawn last)."""
    rng.standard_normal(out=w)
    w *= prm.nu / math.sqrt(prm.p)  # w_i - w0 with w0 = 0
    rng.standard_normal(out=X)
    rng.standard_normal(out=z)
    z *= prm.sigma
    if prm.spectrum is not None:
        X *= np.sqrt(prm.sigma_diag())
        if start is not None:
            rng.standard_normal(out=start)
            start *= math.sqrt(prm.dist0) / np.linalg.norm(start, axis=1, keepdims=True)


def _alloc_training(prm: Params, batch: int) -> dict:
    """Work arrays for `batch` runs of meta-training (reused across batches: fresh large
    allocations cost page faults that were a third of the run time)."""
    B, m, p, n_t, n_v = batch, prm.m, prm.p, prm.n_t, prm.n_v
    nn = n_t + n_v
    ws = dict(
        X=np.empty((B, m, nn, p)),
        z=np.empty((B, m, nn)),
        w=np.empty((B, m, p)),
        y=np.empty((B, m, nn)),
        C=np.empty((B, m, n_v, n_t)),
        Z=np.empty((B, m, n_v, p)),
        b=np.empty((B, m, n_v)),
    )
    if prm.inner_steps > 1:
        ws["tmp"] = np.empty((B, m, n_v, p))
        ws["tb"] = np.empty((B, m, n_v))
    if prm.spectrum is not None and prm.dist0 > 0:
        ws["start"] = np.empty((B, p))
    return ws


def _build_Zb(prm: Params, ws: dict, B: int | None = None):
    """Stacked Z (B, m n_v, p) and b (B, m n_v) from the raw data in ws, as the algorithm defines them.

    One step: Z_i = X_v - (alpha_t/n_t) (X_v X_t^T) X_t  (= X_v A_i),  b_i = y_v - (alpha_t/n_t) (X_v X_t^T) y_t.
    k_t steps apply the step k_t times to the query side: R_0 = X_v, C_j = (alpha_t/n_t) R_{j-1} X_t^T,
    R_j = R_{j-1} - C_j X_t (= X_v A_i^j), b_i = y_v - sum_j C_j y_t, Z_i = R_{k_t}.
    Uses the first B runs of the work arrays; results are views into ws.
    """
    ws = {k: a[:B] for k, a in ws.items()}
    X, z, w, y, C, Z, b = (ws[k] for k in ("X", "z", "w", "y", "C", "Z", "b"))
    B, m, nn, p = X.shape
    n_t, n_v = prm.n_t, prm.n_v
    np.einsum("bmnp,bmp->bmn", X, w, out=y)
    y += z
    Xt, Xv = X[:, :, :n_t, :], X[:, :, n_t:, :]
    yt, yv = y[:, :, :n_t], y[:, :, n_t:]
    if prm.alpha_t == 0.0:
        Z[...] = Xv
        b[...] = yv
    else:
        np.matmul(Xv, Xt.swapaxes(-1, -2), out=C)
        C *= prm.alpha_t / n_t
        np.matmul(C, Xt, out=Z)
        np.subtract(Xv, Z, out=Z)
        np.einsum("bmvt,bmt->bmv", C, yt, out=b)
        np.subtract(yv, b, out=b)
        for _ in range(prm.inner_steps - 1):  # the step again, on the query side
            tmp, tb = ws["tmp"], ws["tb"]
            np.matmul(Z, Xt.swapaxes(-1, -2), out=C)
            C *= prm.alpha_t / n_t
            np.einsum("bmvt,bmt->bmv", C, yt, out=tb)
            b -= tb
            np.matmul(C, Xt, out=tmp)
            Z -= tmp
    return Z.reshape(B, m * n_v, p), b.reshape(B, m * n_v)


def sample_meta_training(rng: np.random.Generator, params: Params, batch: int, *, return_data: bool = False):
    """Draw `batch` independent meta-training sets; return stacked (Z, b) of shapes (batch, m n_v, p), (batch, m n_v).

    With return_data=True also return the raw data dict (X_t, y_t, X_v, y_v, w: per-task
    arrays with leading (batch, m)) so the construction of Z, b can be checked.
    """
    batch = check_positive_int("batch", batch)
    ws = _alloc_training(params, batch)
    _draw_training(rng, params, ws["X"], ws["z"], ws["w"], ws.get("start"))
    Z, b = _build_Zb(params, ws)
    if not return_data:
        return Z, b
    n_t, X, y, w = params.n_t, ws["X"], ws["y"], ws["w"]
    data = dict(X_t=X[:, :, :n_t], y_t=y[:, :, :n_t], X_v=X[:, :, n_t:], y_v=y[:, :, n_t:], w=w,
                omega0=ws["start"] if "start" in ws else np.broadcast_to(params.omega0(), (batch, params.p)))
    return Z, b, data


def meta_loss(Z, b, omega):
    """Meta-loss (1/m) sum_i L(theta_i; D_v^i) = |b - Z omega|^2 / (2 m n_v), batched -> (B,)."""
    r = b - np.einsum("bnp,bp->bn", Z, omega)
    return np.einsum("bn,bn->b", r, r) / (2 * Z.shape[-2])


def meta_solution(Z, b, omega0, regime: str | None = None):
    """Exact meta-training solution omega* (B, p), batched.

    under  (p < N = m n_v): the unique minimiser, (Z^T Z) omega = Z^T b;
    over   (p > N): the minimiser closest to omega0, omega0 + Z^T (Z Z^T)^{-1} (b - Z omega0)
                    (only the N x N Gram matrix is formed);
    square (p = N): Z omega = b.
    regime=None infers it from Z's shape. omega0 has shape (p,) or (B, p).
    """
    B, N, p = Z.shape
    reg = regime if regime is not None else ("under" if p < N else "over" if p > N else "square")
    if reg == "square":
        return np.linalg.solve(Z, b[..., None])[..., 0]
    if reg == "under":
        Zt = Z.swapaxes(-1, -2)
        return np.linalg.solve(Zt @ Z, (Zt @ b[..., None]))[..., 0]
    if reg == "over":
        omega0 = np.broadcast_to(np.asarray(omega0, dtype=float), (B, p))
        r = b - np.einsum("bnp,bp->bn", Z, omega0)
        G = Z @ Z.swapaxes(-1, -2)
        c = np.linalg.solve(G, r[..., None])  # (B, N, 1)
        return omega0 + (Z.swapaxes(-1, -2) @ c)[..., 0]
    raise ValueError(f"regime must be one of 'under', 'over', 'square' or None, got {regime!r}")


def meta_solution_gd(Z, b, omega0, *, max_steps: int = 200_000, tol: float = 1e-13):
    """Plain gradient descent on the meta-loss, started at omega0 (tests only).

    Step size 1/L per batch element, L = lambda_max(Z^T Z)/N the Hessian's top eigenvalue;
    stops when every update is below tol relative to |omega|. Converges to the minimiser
    closest to omega0 (the iterates never leave omega0 + rowspace(Z)).
    """
    B, N, p = Z.shape
    omega = np.array(np.broadcast_to(np.asarray(omega0, dtype=float), (B, p)))
    small = Z @ Z.swapaxes(-1, -2) if N <= p else Z.swapaxes(-1, -2) @ Z
    lr = 1.0 / np.linalg.eigvalsh(small)[:, -1]  # 1/L, with the 1/N of the loss folded in
    Zt = Z.swapaxes(-1, -2)
    for _ in range(max_steps):
        r = b - np.einsum("bnp,bp->bn", Z, omega)
        step = lr[:, None] * np.einsum("bpn,bn->bp", Zt, r)
        omega += step
        if np.all(np.linalg.norm(step, axis=1) <= tol * (1.0 + np.linalg.norm(omega, axis=1))):
            break
    return omega


# --------------------------------------------------------------------------- meta-test


def meta_test_full(rng: np.random.Generator, omega_star, params: Params, test_tasks: int, *, ws: dict | None = None):
    """Plain ground truth: per test task draw w, X_r (n_r x p), z_r; return test losses (B, test_tasks).

    k_r steps theta <- theta + (alpha_r/n_r) X_r^T (y_r - X_r theta) from omega*, and
    L_test = (sigma^2 + (w - theta_r)^T Sigma (w - theta_r))/2 (Sigma = I without a spectrum; with one
    the rows of X_r are N(0, Sigma)).
    ws: optional dict of reusable work arrays of exactly the needed shapes (speed only).
    """
    prm = params
    B, p = omega_star.shape
    T, n_r = test_tasks, prm.n_r
    shapes = dict(g=(B, T, p), Xr=(B, T, n_r, p), zr=(B, T, n_r), u=(B, T, n_r), d=(B, T, p))
    if ws is None or any(ws[k].shape != sh for k, sh in shapes.items()):
        ws = {k: np.empty(sh) for k, sh in shapes.items()}
    g, Xr, zr, u, d = (ws[k] for k in ("g", "Xr", "zr", "u", "d"))
    rng.standard_normal(out=g)
    rng.standard_normal(out=Xr)
    rng.standard_normal(out=zr)
    diag = prm.sigma_diag()
    if diag is not None:
        Xr *= np.sqrt(diag)
    zr *= prm.sigma
    # v = omega* - w, with w = w0 + (nu/sqrt p) g and w0 = 0
    g *= -prm.nu / math.sqrt(p)
    g += omega_star[:, None, :]
    v = g
    np.einsum("btnp,btp->btn", Xr, v, out=u)
    u -= zr  # X_r v - z_r = -(y_r - X_r omega*)
    np.einsum("btnp,btn->btp", Xr, u, out=d)
    d *= -prm.alpha_r / n_r
    d += v  # theta_r - w after one step
    for _ in range(prm.adaptation_steps - 1):  # theta - w <- (theta - w) - (alpha_r/n_r) X_r^T (X_r(theta - w) - z_r)
        np.einsum("btnp,btp->btn", Xr, d, out=u)
        u -= zr
        np.einsum("btnp,btn->btp", Xr, u, out=g)
        g *= -prm.alpha_r / n_r
        d += g
    if diag is not None:
        return 0.5 * (prm.sigma**2 + np.einsum("btp,btp,p->bt", d, d, diag))
    return 0.5 * (prm.sigma**2 + np.einsum("btp,btp->bt", d, d))


def _fill_reduced(rng: np.random.Generator, p: int, n_r: int, out) -> None:
    """Fill the 6 arrays of `out` (each (B, T)) with the reduced sampler's draws, fixed order.

    g1 ~ N(0,1), q1 ~ chi2_{p-1}, c1 ~ chi2_{n_r}, h ~ N(0,1), c2 ~ chi2_{n_r-1}, q2 ~ chi2_{p-1}
    (chi2_k = 2 Gamma(k/2); k = 0 gives exactly 0).
    """
    g1, q1, c1, h, c2, q2 = out
    rng.standard_normal(out=g1)
    rng.standard_gamma((p - 1) / 2, out=q1)
    rng.standard_gamma(n_r / 2, out=c1)
    rng.standard_normal(out=h)
    rng.standard_gamma((n_r - 1) / 2, out=c2)
    rng.standard_gamma((p - 1) / 2, out=q2)
    for a in (q1, c1, c2, q2):
        a *= 2.0


def _reduced_losses(prm: Params, dist_star, draws):
    """Test losses (B, T) from |omega* - w0|^2 (B,) and the reduced draws; see meta_test_reduced."""
    g1, q1, c1, h, c2, q2 = draws
    s = prm.nu / math.sqrt(prm.p)
    a = np.sqrt(dist_star)[:, None]
    # |v|^2, v = omega* - w: component along a and the p-1 orthogonal ones
    t = a - s * g1
    v2 = t * t + (s * s) * q1
    vn = np.sqrt(v2)
    # Gram of [g, z] (g = X_r v/|v| ~ N(0, I_{n_r}), z = z_r ~ N(0, sigma^2 I)) by Bartlett:
    # |g|^2 = c1, g.z = sigma sqrt(c1) h, |z|^2 = sigma^2 (h^2 + c2)
    gg = c1
    gz = prm.sigma * np.sqrt(c1) * h
    zz = prm.sigma**2 * (h * h + c2)
    # u = X_r v - z_r = |v| g - z
    gu = vn * gg - gz
    uu = v2 * gg - 2.0 * vn * gz + zz
    k = prm.alpha_r / prm.n_r
    e = vn - k * gu
    d2 = e * e + (k * k) * uu * q2  # |theta_r - w|^2
    return 0.5 * (prm.sigma**2 + d2)


def meta_test_reduced(rng: np.random.Generator, dist_star, params: Params, test_tasks: int):
    """Exact-in-distribution meta-test sampler with few scalar draws per test task; losses (B, test_tasks).

    Only a = |omega* - w0| matters (isotropic inputs). With v = omega* - w: |v|^2 = (a - s g1)^2 + s^2 chi2_{p-1}
    (s = nu/sqrt p). One step (6 draws): rotating v onto e_1, X_r v = |v| g, g ~ N(0, I_{n_r}); with
    u = |v| g - z_r, X_r^T u = (g.u, rest), rest ~ N(0, |u|^2 I_{p-1}) independent, so
    |theta_r - w|^2 = (|v| - (alpha_r/n_r) g.u)^2 + (alpha_r/n_r)^2 |u|^2 chi2_{p-1}, and g.u, |u|^2
    need only the 2x2 Gram of [g, z_r], drawn exactly by the Bartlett decomposition.
    k_r > 1 steps: Householder bidiagonalisation of X_r started at e_1 (see :func:`_bidiagonal_losses`).
    """
    if params.spectrum is not None:
        raise ValueError("meta_test_reduced needs isotropic inputs (no spectrum); use meta_test_reduced_sigma")
    dist_star = np.asarray(dist_star, dtype=float)
    shape = (dist_star.shape[0], test_tasks)
    if params.adaptation_steps > 1:
        draws = _alloc_bidiagonal(params, shape)
        _fill_bidiagonal(rng, params, draws)
        return _bidiagonal_losses(params, dist_star, draws)
    draws = tuple(np.empty(shape) for _ in range(6))
    _fill_reduced(rng, params.p, params.n_r, draws)
    return _reduced_losses(params, dist_star, draws)


def meta_test_reduced_sigma(rng: np.random.Generator, omega_star, params: Params, test_tasks: int):
    """Exact-in-distribution meta-test sampler for anisotropic inputs and one adaptation step: 2p + 3
    draws per test task instead of p + n_r (p + 1); losses (B, test_tasks).

    With v = omega* - w and X_r = G Sigma^{1/2}: X_r v = rho g~ with rho = |Sigma^{1/2} v| and g~ = G e ~ N(0, I),
    e = Sigma^{1/2} v / rho. Split G = g~ e^T + G(I - e e^T); the second part is independent of g~, so with
    u = X_r v - z_r, G^T u = e (g~.u) + |u| h, h ~ N(0, I - e e^T) independent of (g~, z_r) (drawn as
    xi - e (e.xi), xi ~ N(0, I_p)); g~.u and |u|^2 need the 2x2 Gram of [g~, z_r] (Bartlett, as in
    meta_test_reduced). Then Sigma^{1/2}(theta_r - w) = Sigma^{1/2} v - (alpha_r/n_r) Sigma G^T u.
    """
    shape = (omega_star.shape[0], test_tasks)
    draws = _alloc_sigma_draws(params, shape)
    _fill_sigma_draws(rng, params, draws)
    return _sigma_losses(params, omega_star, draws)


def _alloc_sigma_draws(prm: Params, shape) -> tuple:
    return (np.empty(shape + (prm.p,)), np.empty(shape), np.empty(shape), np.empty(shape), np.empty(shape + (prm.p,)))


def _fill_sigma_draws(rng: np.random.Generator, prm: Params, out) -> None:
    """Fixed order: g ~ N(0, I_p) (the test task), c1 ~ chi2_{n_r}, h ~ N(0,1), c2 ~ chi2_{n_r-1}, xi ~ N(0, I_p)."""
    g, c1, h, c2, xi = out
    rng.standard_normal(out=g)
    rng.standard_gamma(prm.n_r / 2, out=c1)
    rng.standard_normal(out=h)
    rng.standard_gamma((prm.n_r - 1) / 2, out=c2)
    rng.standard_normal(out=xi)
    c1 *= 2.0
    c2 *= 2.0


def _sigma_losses(prm: Params, omega_star, draws):
    g, c1, h, c2, xi = draws
    diag = prm.sigma_diag()
    sq = np.sqrt(diag)
    v = omega_star[:, None, :] - (prm.nu / math.sqrt(prm.p)) * g
    ev = sq * v
    rho = np.sqrt(np.einsum("btp,btp->bt", ev, ev))
    e = np.zeros_like(ev)
    e[..., 0] = 1.0  # any unit vector where v = 0 (then X_r v = 0 and G^T z_r ~ |z_r| N(0, I))
    pos = rho > 0
    e[pos] = ev[pos] / rho[pos][:, None]
    gz = prm.sigma * np.sqrt(c1) * h
    zz = prm.sigma**2 * (h * h + c2)
    gu = rho * c1 - gz
    uu = np.maximum(rho * rho * c1 - 2.0 * rho * gz + zz, 0.0)
    hvec = xi - e * np.einsum("btp,btp->bt", e, xi)[..., None]
    gtu = e * gu[..., None] + np.sqrt(uu)[..., None] * hvec
    sd = ev - (prm.alpha_r / prm.n_r) * diag * gtu
    return 0.5 * (prm.sigma**2 + np.einsum("btp,btp->bt", sd, sd))


def _bidiagonal_sizes(prm: Params) -> tuple[int, int, int]:
    """(rows, superdiagonal, columns) of the nonzero part of the bidiagonal form of X_r (n_r x p)."""
    n, p = prm.n_r, prm.p
    return min(n, p), min(n, p - 1), min(n + 1, p)


def _alloc_bidiagonal(prm: Params, shape) -> tuple:
    na, nb, _ = _bidiagonal_sizes(prm)
    return (np.empty(shape), np.empty(shape), np.empty(shape + (na,)), np.empty(shape + (nb,)),
            np.empty(shape + (na,)))


def _fill_bidiagonal(rng: np.random.Generator, prm: Params, out) -> None:
    """Draws of the k_r-step reduced sampler, fixed order: g1 ~ N(0,1), q1 ~ chi2_{p-1}, the diagonal
    alpha_i ~ chi_{n_r-i+1} and superdiagonal beta_i ~ chi_{p-i} of the bidiagonal form of X_r, and
    z~ = U^T z_r / sigma ~ N(0, I) (its first rows)."""
    g1, q1, al, be, zt = out
    n, p = prm.n_r, prm.p
    na, nb, _ = _bidiagonal_sizes(prm)
    rng.standard_normal(out=g1)
    rng.standard_gamma((p - 1) / 2, out=q1)
    q1 *= 2.0
    rng.standard_gamma((n - np.arange(na)) / 2, out=al)
    np.sqrt(2.0 * al, out=al)
    if nb:
        rng.standard_gamma((p - 1 - np.arange(nb)) / 2, out=be)
        np.sqrt(2.0 * be, out=be)
    rng.standard_normal(out=zt)


def _bidiagonal_losses(prm: Params, dist_star, draws):
    """Test losses (B, T) after k_r steps from |omega* - w0|^2 (B,) and the bidiagonal draws.

    Rotate so that v = omega* - w = |v| e_1 and bidiagonalise X_r = U B V^T by Householder reflections,
    the first on the left acting on column 1 (Dumitriu and Edelman 2002): V e_1 = e_1, B upper
    bidiagonal with independent B_ii ~ chi_{n_r-i+1}, B_{i,i+1} ~ chi_{p-i}, and U^T z_r ~ N(0, sigma^2 I)
    independent of B (U depends on X_r only). In these coordinates d = theta - w starts at |v| e_1 and
    each step is d <- d - (alpha_r/n_r) B^T (B d - U^T z_r); B has nonzero entries in its first
    min(n_r + 1, p) columns only, so every vector has that many entries."""
    g1, q1, al, be, zt = draws
    na, nb, L = _bidiagonal_sizes(prm)
    s = prm.nu / math.sqrt(prm.p)
    a = np.sqrt(dist_star)[:, None]
    t = a - s * g1
    vn = np.sqrt(t * t + (s * s) * q1)
    c = prm.alpha_r / prm.n_r
    zs = prm.sigma * zt
    d = np.zeros(vn.shape + (L,))
    d[..., 0] = vn
    for _ in range(prm.adaptation_steps):
        u = al * d[..., :na]
        if nb:
            u[..., :nb] += be * d[..., 1:nb + 1]
        u -= zs
        step = np.zeros_like(d)
        step[..., :na] = al * u
        if nb:
            step[..., 1:nb + 1] += be * u[..., :nb]
        d -= c * step
    return 0.5 * (prm.sigma**2 + np.einsum("btl,btl->bt", d, d))


def meta_test_analytic(dist_star, params: Params):
    """Exact conditional expectation of L_test given omega* (averages w, X_r, z_r in closed form), (B,).

    A variance-reduced estimator, NOT ground truth for the adaptation formula (it uses
    E[(I - a/n W)^2] = (1 - 2a + a^2 (n+p+1)/n) I, W = X_r^T X_r):
    E L_test = (sigma^2 + (|omega*-w0|^2 + nu^2)(1 - 2 alpha_r + alpha_r^2 (n_r+p+1)/n_r)
                + alpha_r^2 sigma^2 p / n_r) / 2.
    """
    prm = params
    if prm.adaptation_steps != 1 or prm.spectrum is not None:
        raise ValueError("meta_test='analytic' needs adaptation_steps=1 and isotropic inputs (no spectrum); "
                         "use 'reduced' or 'full'")
    ar, n, p = prm.alpha_r, prm.n_r, prm.p
    factor = 1.0 - 2.0 * ar + ar * ar * (n + p + 1) / n
    return 0.5 * (prm.sigma**2 + (np.asarray(dist_star) + prm.nu**2) * factor + ar * ar * prm.sigma**2 * p / n)


# --------------------------------------------------------------------------- driver


def _bytes_per_run(prm: Params, meta_test: str, test_tasks: int) -> int:
    """Rough working-memory estimate per run (float64), for batch sizing."""
    p, m, N = prm.p, prm.m, prm.m * prm.n_v
    nn = prm.n_t + prm.n_v
    doubles = m * nn * (p + 3) + m * p + m * prm.n_v * (prm.n_t + 2 * p) + 3 * min(N, p) ** 2 + 4 * p
    if prm.inner_steps > 1:
        doubles += m * prm.n_v * (p + 1)
    if meta_test == "reduced" and prm.spectrum is None:
        if prm.adaptation_steps == 1:
            doubles += 14 * test_tasks
        else:
            doubles += test_tasks * (2 + 8 * (min(prm.n_r, p) + 1))
    elif meta_test == "reduced" and prm.adaptation_steps == 1:
        doubles += test_tasks * (8 * p + 10)
    return 8 * doubles


def _full_task_chunk(prm: Params, test_tasks: int) -> int:
    """Test tasks per draw in 'full' mode: a function of the sizes only (keeps draws batch-independent)."""
    per_task = 8 * BLOCK * (prm.n_r * (prm.p + 2) + 2 * prm.p)
    return max(1, min(test_tasks, _MEMORY_BUDGET // per_task))


def check_threshold(prm: Params) -> None:
    """Refuse |p - m n_v| <= 1 with label noise or task spread: there the test loss has no finite mean
    (the inverse moments of the meta-training Gram matrix diverge)."""
    N = prm.m * prm.n_v
    if abs(prm.p - N) <= 1 and (prm.sigma > 0 or prm.nu > 0):
        raise ValueError(f"the average test loss has no finite mean at the interpolation threshold |p - m n_v| <= 1 "
                         f"(the meta-training Gram matrix's inverse moments diverge); got p={prm.p}, m n_v={N}")


def simulate(
    p,
    m,
    n_t,
    n_v,
    n_r,
    alpha_t,
    alpha_r,
    sigma,
    nu,
    dist0=0.0,
    *,
    runs=1000,
    test_tasks=50,
    seed=0,
    meta_test="reduced",
    batch=None,
    workers=1,
    inner_steps=1,
    adaptation_steps=1,
    spectrum=None,
    progress=None,
) -> dict:
    """Monte Carlo average test loss of MAML (one step by default).

    Each run: meta-train on m fresh tasks (exact omega*), then average L_test over
    `test_tasks` fresh test tasks. Returns a dict with mean (over runs of the per-run
    averages), stderr (std of per-run averages, ddof=1, / sqrt(runs); inf when runs == 1),
    runs, test_tasks, meta_test, regime, seed, params, per_run (array).

    inner_steps (k_t), adaptation_steps (k_r): steps of the inner loop at meta-training and of the
    adaptation at meta-test. spectrum: eigenvalue levels of the input covariance Sigma (None:
    identity); p must be divisible by their number. Sizes may be integral floats (60.0).
    meta_test: 'full' (draw w, X_r, z_r: plain ground truth), 'reduced' (default; exact
    in distribution, 6 scalar draws per test task for one step, about 3 min(n_r, p) for k_r steps,
    2p + 3 with a spectrum and one step; with a spectrum and several steps no reduction is derived and
    it samples as 'full' does), 'analytic'
    (closed-form conditional expectation given omega*: variance-reduced, test_tasks unused; one
    adaptation step and isotropic inputs only).
    batch: runs processed together (rounded up to a multiple of BLOCK); None sizes it to
    ~32 MB of work arrays. workers: threads processing batches concurrently (NumPy's RNG
    and linear algebra release the GIL; memory scales with workers). Neither batch nor
    workers changes the results (see module docstring). progress: None, or a callable called
    with the number of runs finished so far after each batch of blocks (from the calling
    thread); it never changes results.
    Refuses |p - m n_v| <= 1 (with sigma > 0 or nu > 0), where the loss has no finite mean.
    """
    prm = make_params(p, m, n_t, n_v, n_r, alpha_t, alpha_r, sigma, nu, dist0, inner_steps, adaptation_steps,
                      spectrum)
    runs = check_positive_int("runs", runs)
    test_tasks = check_positive_int("test_tasks", test_tasks)
    workers = check_positive_int("workers", workers)
    if not isinstance(meta_test, str) or meta_test not in META_TEST_MODES:
        raise ValueError(f"meta_test must be one of {META_TEST_MODES}, got {meta_test!r}")
    if meta_test == "analytic" and (prm.adaptation_steps != 1 or prm.spectrum is not None):
        raise ValueError("meta_test='analytic' needs adaptation_steps=1 and isotropic inputs (no spectrum); "
                         "use 'reduced' or 'full'")
    if seed is not None and (
        isinstance(seed, (bool, np.bool_)) or not isinstance(seed, numbers.Integral) or seed < 0
    ):
        raise ValueError(f"seed must be a non-negative integer or None, got {seed!r}")
    if progress is not None and not callable(progress):
        raise TypeError(f"progress must be None or a callable taking the number of runs finished; got {progress!r}")
    check_threshold(prm)
    if batch is None:
        per_block = BLOCK * _bytes_per_run(prm, meta_test, test_tasks)
        blocks_per_batch = max(1, _MEMORY_BUDGET // per_block)
    else:
        blocks_per_batch = -(-check_positive_int("batch", batch) // BLOCK)

    n_blocks = -(-runs // BLOCK)
    blocks_per_batch = min(blocks_per_batch, n_blocks)
    if workers > 1 and batch is None:  # enough batches to keep the threads balanced
        blocks_per_batch = max(1, min(blocks_per_batch, n_blocks // (4 * workers)))
    children = np.random.SeedSequence(None if seed is None else int(seed)).spawn(n_blocks)
    per_run = np.empty(runs)
    batches = [range(k, min(n_blocks, k + blocks_per_batch)) for k in range(0, n_blocks, blocks_per_batch)]
    job = _Job(prm, meta_test, test_tasks, runs, children, per_run, blocks_per_batch * BLOCK)
    done = 0

    def finished(blocks):
        nonlocal done
        done += min(runs, (blocks[-1] + 1) * BLOCK) - blocks[0] * BLOCK
        if progress is not None:
            progress(done)

    if workers == 1 or len(batches) == 1:
        ws = job.workspace()
        for blocks in batches:
            job.run(blocks, ws)
            finished(blocks)
    else:
        import threading
        from concurrent.futures import ThreadPoolExecutor

        from threadpoolctl import threadpool_limits

        local = threading.local()

        def run(blocks):
            if not hasattr(local, "ws"):
                local.ws = job.workspace()
            job.run(blocks, local.ws)
            return blocks

        # one BLAS thread per worker: OpenBLAS's own threads would oversubscribe the cores
        with threadpool_limits(limits=1, user_api="blas"), \
                ThreadPoolExecutor(max_workers=min(workers, len(batches))) as pool:
            for blocks in pool.map(run, batches):
                finished(blocks)

    mean = float(per_run.mean())
    if not math.isfinite(mean):
        raise FloatingPointError(
            f"non-finite average test loss ({mean}): float64 overflow or a singular meta-training system for {prm}"
        )
    stderr = float(per_run.std(ddof=1) / math.sqrt(runs)) if runs > 1 else math.inf
    return dict(
        mean=mean,
        stderr=stderr,
        runs=runs,
        test_tasks=test_tasks,
        meta_test=meta_test,
        regime=prm.regime,
        seed=seed,
        params=prm._asdict(),
        per_run=per_run,
    )


class _Job:
    """One simulate() call: processes batches of blocks into per_run (disjoint slices, thread-safe)."""

    def __init__(self, prm, meta_test, test_tasks, runs, children, per_run, batch):
        self.prm, self.meta_test, self.T, self.runs = prm, meta_test, test_tasks, runs
        self.children, self.per_run, self.batch = children, per_run, batch
        self.omega0 = prm.omega0()
        self.tchunk = _full_task_chunk(prm, test_tasks)
        # the meta-test sampler: 'reduced' samples everything where no reduction is derived (a spectrum
        # with several adaptation steps)
        self.sampler = meta_test
        if meta_test == "reduced" and prm.spectrum is not None:
            self.sampler = "reduced_sigma" if prm.adaptation_steps == 1 else "full"

    def workspace(self) -> dict:
        ws = {"train": _alloc_training(self.prm, self.batch)}
        if self.sampler == "reduced":
            if self.prm.adaptation_steps == 1:
                ws["draws"] = tuple(np.empty((self.batch, self.T)) for _ in range(6))
            else:
                ws["draws"] = _alloc_bidiagonal(self.prm, (self.batch, self.T))
        elif self.sampler == "reduced_sigma":
            ws["draws"] = _alloc_sigma_draws(self.prm, (self.batch, self.T))
        elif self.sampler == "full":
            p, n_r, t = self.prm.p, self.prm.n_r, self.tchunk
            ws["full"] = dict(
                g=np.empty((BLOCK, t, p)),
                Xr=np.empty((BLOCK, t, n_r, p)),
                zr=np.empty((BLOCK, t, n_r)),
                u=np.empty((BLOCK, t, n_r)),
                d=np.empty((BLOCK, t, p)),
            )
        return ws

    def run(self, blocks: range, ws: dict) -> None:
        prm, runs, T = self.prm, self.runs, self.T
        start = blocks[0] * BLOCK
        stop = min(runs, (blocks[-1] + 1) * BLOCK)
        B = stop - start
        gens = [np.random.Generator(np.random.PCG64(self.children[k])) for k in blocks]
        sl = [slice(k * BLOCK - start, min(runs, (k + 1) * BLOCK) - start) for k in blocks]

        tr = ws["train"]
        for gen, s in zip(gens, sl):
            _draw_training(gen, prm, tr["X"][s], tr["z"][s], tr["w"][s], tr["start"][s] if "start" in tr else None)
        Z, b = _build_Zb(prm, tr, B)
        omega0 = tr["start"][:B] if "start" in tr else self.omega0
        omega_star = meta_solution(Z, b, omega0, prm.regime)
        dist_star = np.einsum("bp,bp->b", omega_star, omega_star)  # |omega* - w0|^2, w0 = 0

        out = self.per_run[start:stop]
        if self.sampler == "analytic":
            out[:] = meta_test_analytic(dist_star, prm)
        elif self.sampler == "reduced":
            draws = tuple(a[:B] for a in ws["draws"])
            for gen, s in zip(gens, sl):
                part = tuple(a[s] for a in draws)
                if prm.adaptation_steps == 1:
                    _fill_reduced(gen, prm.p, prm.n_r, part)
                else:
                    _fill_bidiagonal(gen, prm, part)
            losses = (_reduced_losses(prm, dist_star, draws) if prm.adaptation_steps == 1
                      else _bidiagonal_losses(prm, dist_star, draws))
            out[:] = losses.mean(axis=1)
        elif self.sampler == "reduced_sigma":
            draws = tuple(a[:B] for a in ws["draws"])
            for gen, s in zip(gens, sl):
                _fill_sigma_draws(gen, prm, tuple(a[s] for a in draws))
            out[:] = _sigma_losses(prm, omega_star, draws).mean(axis=1)
        else:
            for gen, s in zip(gens, sl):
                n = s.stop - s.start
                full = {k: a[:n] for k, a in ws["full"].items()}
                acc = np.zeros(n)
                for t0 in range(0, T, self.tchunk):
                    acc += meta_test_full(gen, omega_star[s], prm, min(self.tchunk, T - t0), ws=full).sum(axis=1)
                out[s] = acc / T
