"""k-space helpers shared by the Fourier-domain artefacts: fast FFT sizes and centred line indices."""

from __future__ import annotations

import torch
from torch import Tensor


def fast_length(n: int) -> int:
    """Smallest length >= ``n`` whose prime factors are 2, 3, 5 or 7.

    FFTs along prime-sized axes (197, 233 on the MNI152 1 mm grid) take Bluestein's slow path; padding
    to a 7-smooth length keeps them on the fast radix kernels.
    """
    if n < 1:
        raise ValueError(f"length must be positive, got {n}")
    m = n
    while True:
        r = m
        for p in (2, 3, 5, 7):
            while r % p == 0:
                r //= p
        if r == 1:
            return m
        m += 1


def pad_to_fast(images: Tensor, axes: tuple[int, ...] = (0, 1, 2)) -> tuple[Tensor, tuple[int, int, int]]:
    """Pad ``(B, C, D, H, W)`` at the far end of the spatial ``axes`` to fast FFT lengths.

    Returns:
        The padded batch (padded with each sample's minimum, the background) and the original
        spatial shape, to crop back with :func:`crop_to`.
    """
    shape = tuple(images.shape[-3:])
    target = tuple(fast_length(n) if a in axes else n for a, n in enumerate(shape))
    if target == shape:
        return images, shape  # type: ignore[return-value]
    background = images.amin(dim=(-3, -2, -1), keepdim=True)
    padded = background.expand(*images.shape[:-3], *target).clone()
    padded[..., : shape[0], : shape[1], : shape[2]] = images
    return padded, shape  # type: ignore[return-value]


def crop_to(images: Tensor, shape: tuple[int, int, int]) -> Tensor:
    """Undo :func:`pad_to_fast`."""
    return images[..., : shape[0], : shape[1], : shape[2]]


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
