"""k-space helpers shared by the Fourier-domain artefacts: centred line indices and line mixing."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor


def centred_frequencies(n: int, device: torch.device) -> Tensor:
    """Signed frequency index of each position of an ``fftshift``-ed axis of length ``n``: ``j - n // 2``."""
    return torch.arange(n, device=device) - n // 2


def hermitian_half(weights: Tensor) -> Tensor:
    """Fold per-line k-space weights ``(..., n)`` (unshifted order) onto the ``n // 2 + 1`` lines of an
    ``rfft``: ``(w(f) + w(-f)) / 2``.

    Keeping the real part of ``ifft(w * fft(x))`` for a real ``x`` equals ``irfft`` of ``rfft(x)``
    times these folded weights (the real part is the inverse of the spectrum's Hermitian part), so
    the artefacts that keep a real part do half the FFT work.
    """
    n = weights.shape[-1]
    positive = torch.arange(n // 2 + 1, device=weights.device)
    return (weights[..., positive] + weights[..., (-positive) % n]) / 2


def _weighted_sum(spectra: Sequence[Tensor], weights: Tensor, dim: int) -> Tensor:
    """``sum_k w_k spectra_k`` for half spectra ``(B, K_i, ...)`` (the ``K`` channels of ``spectra``,
    taken as concatenated along channels, without copying) and per-line weights ``(B, K, n // 2 + 1)``
    along tensor ``dim``: ``(B, 1, ...)``."""
    shape = [*weights.shape[:2], 1, 1, 1]
    shape[dim] = weights.shape[-1]
    weights = weights.reshape(shape)
    mixed, start = None, 0
    for part in spectra:
        k = part.shape[1]
        term = (part * weights[:, start : start + k]).sum(1, keepdim=True)
        mixed = term if mixed is None else mixed.add_(term)
        start += k
    return mixed


def mix_lines(volumes: Sequence[Tensor], weights: Tensor, axis: int) -> Tensor:
    """Real part of the image whose k-space lines along spatial ``axis`` mix those of ``volumes``.

    ``Re ifftn(sum_k w_k(f) fftn(v_k))`` for volumes ``v_k`` (the ``K`` channels of ``volumes``, a
    sequence of ``(B, K_i, D, H, W)`` tensors taken as concatenated along channels, without copying)
    and per-line weights ``w_k(f)`` ``(B, K, n)`` (unshifted line order, ``n`` lines along ``axis``).

    The weights depend on the line along ``axis`` only, so the transforms along the other two axes
    cancel: a real 1D FFT along ``axis`` does it all (:func:`hermitian_half`). Returns ``(B, 1, D, H, W)``.
    """
    dim = 2 + axis
    n = volumes[0].shape[dim]
    spectra = [torch.fft.rfft(part, dim=dim) for part in volumes]
    mixed = _weighted_sum(spectra, hermitian_half(weights).to(spectra[0].real.dtype), dim)
    return torch.fft.irfft(mixed, n=n, dim=dim).to(volumes[0].dtype)


def magnitude_of_lines(spectra: Sequence[Tensor], weights: Tensor, dim: int, n: int) -> Tensor:
    """Magnitude image whose k-space line ``f`` along tensor ``dim`` is ``sum_k w_k(f) X_k(f)``.

    ``|ifft(M)|`` with ``M(f) = sum_k w_k(f) X_k(f)`` over all ``n`` signed frequencies, for real
    images whose rfft half spectra along ``dim`` are ``spectra`` (``(B, K_i, ...)``, concatenated along
    channels) and weights ``(B, K, n)`` in unshifted line order. ``M`` need not be Hermitian (lines
    ``f`` and ``-f`` may come from different images), so the image is complex, and a scanner shows
    its magnitude. Its real and imaginary parts are the inverse real FFTs of the Hermitian and
    anti-Hermitian folds of the weights (``X_k(-f)`` is the conjugate of ``X_k(f)``), so two real
    inverse FFTs of half spectra do it, without the full complex spectrum. Returns ``(B, 1, ...)``.
    """
    dtype = spectra[0].real.dtype
    real = torch.fft.irfft(_weighted_sum(spectra, hermitian_half(weights).to(dtype), dim), n=n, dim=dim)
    positive = torch.arange(n // 2 + 1, device=weights.device)
    odd = (weights[..., positive] - weights[..., (-positive) % n]) / 2  # imaginary part: irfft(-i * sum)
    imaginary = torch.fft.irfft(_weighted_sum(spectra, odd.to(dtype), dim).mul_(-1j), n=n, dim=dim)
    return torch.hypot(real, imaginary)
