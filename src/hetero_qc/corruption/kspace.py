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
    folded = hermitian_half(weights)  # (B, K, n // 2 + 1)
    shape = [*folded.shape[:2], 1, 1, 1]
    shape[dim] = n // 2 + 1
    folded = folded.reshape(shape)
    mixed, start = None, 0
    for part in volumes:
        k = part.shape[1]
        spectrum = torch.fft.rfft(part, dim=dim).mul_(folded[:, start : start + k]).sum(1, keepdim=True)
        mixed = spectrum if mixed is None else mixed.add_(spectrum)
        start += k
    return torch.fft.irfft(mixed, n=n, dim=dim).to(volumes[0].dtype)
