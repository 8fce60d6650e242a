"""Smooth multiplicative bias field: the exponential of a low-order polynomial, as in TorchIO.

Coil sensitivity makes intensity drift slowly across the field of view. Following TorchIO's
``BiasField`` (after van Leemput et al., 1999), the field is ``exp(sum_ijk c_ijk x^i y^j z^k)`` over
``i + j + k <= order`` on coordinates normalised to ``[-1, 1]``, with the coefficients in TorchIO's
order, so the same coefficients give the same field. A full polynomial is not separable, but it is
a sum of separable terms, so we evaluate it as three small tensor contractions instead of a loop of
full-volume powers: O(order * D * H * W) work for the whole batch at once.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from hetero_qc.corruption.base import (
    Params,
    RandomArtefact,
    Spacing,
    parse_range,
    uniform,
)


@dataclass(frozen=True)
class BiasFieldParams(Params):
    """Polynomial coefficients of one sample's log-field, in TorchIO's order: ``(B, n_terms)``."""

    coefficients: Tensor


def number_of_terms(order: int) -> int:
    """Monomials ``x^i y^j z^k`` with ``i + j + k <= order``."""
    return (order + 1) * (order + 2) * (order + 3) // 6


def order_from_terms(n_terms: int) -> int:
    """Inverse of :func:`number_of_terms`; raises ``ValueError`` if ``n_terms`` fits no order."""
    order = 0
    while number_of_terms(order) < n_terms:
        order += 1
    if number_of_terms(order) != n_terms:
        raise ValueError(f"{n_terms} coefficients fit no polynomial order")
    return order


def _axis_powers(n: int, order: int, device: torch.device, dtype: torch.dtype) -> Tensor:
    """Powers 0..order of the normalised coordinate along one axis: ``(order + 1, n)``."""
    half = n / 2
    position = torch.arange(-half, half, device=device, dtype=torch.float64) + 0.5
    if position.max() > 0:
        position = position / position.max()
    exponents = torch.arange(order + 1, device=device, dtype=torch.float64)
    return position[None, :].pow(exponents[:, None]).to(dtype)


def log_bias_field(coefficients: Tensor, shape: tuple[int, int, int]) -> Tensor:
    """Log of the bias field for each sample: ``(B, D, H, W)``."""
    batch, n_terms = coefficients.shape
    order = order_from_terms(n_terms)
    grid = torch.zeros((batch, order + 1, order + 1, order + 1), device=coefficients.device,
                       dtype=coefficients.dtype)
    index = [(i, j, k) for i in range(order + 1) for j in range(order + 1 - i)
             for k in range(order + 1 - i - j)]
    i, j, k = (torch.tensor(t, device=coefficients.device) for t in zip(*index))
    grid[:, i, j, k] = coefficients
    pd, ph, pw = (_axis_powers(n, order, coefficients.device, coefficients.dtype) for n in shape)
    field = torch.einsum("bijk,kw->bijw", grid, pw)
    field = torch.einsum("bijw,jh->bihw", field, ph)
    return torch.einsum("bihw,id->bdhw", field, pd)


def bias_field(images: Tensor, params: BiasFieldParams) -> Tensor:
    """Multiply ``images`` ``(B, 1, D, H, W)`` by the bias field of ``params``."""
    log_field = log_bias_field(params.coefficients.to(images.dtype), tuple(images.shape[-3:]))
    return images * torch.exp(log_field).unsqueeze(1)


class RandomBiasField(RandomArtefact):
    """Bias field with coefficients drawn uniformly in ``coefficients`` (TorchIO's defaults).

    Args:
        coefficients: range of every coefficient; one value ``c`` means ``(-c, c)``.
        order: polynomial order (TorchIO: 3).

    Raises:
        ValueError: for a negative order or a bad coefficient range.
    """

    name = "bias_field"

    def __init__(self, coefficients: float | tuple[float, float] = 0.5, order: int = 3) -> None:
        self.coefficients = parse_range(coefficients, "coefficients", symmetric=True)
        if not isinstance(order, int) or order < 0:
            raise ValueError(f"order must be a non-negative integer, got {order!r}")
        self.order = order

    def sample(self, images: Tensor, generator: torch.Generator | None = None) -> BiasFieldParams:
        shape = (images.shape[0], number_of_terms(self.order))
        return BiasFieldParams(coefficients=uniform(self.coefficients, shape, images, generator))

    def apply(
        self,
        images: Tensor,
        params: BiasFieldParams,
        spacing: Spacing = (1.0, 1.0, 1.0),
        mask: Tensor | None = None,
    ) -> Tensor:
        return bias_field(images, params)
