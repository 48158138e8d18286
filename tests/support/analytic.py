"""Analytic stand-ins for denoisers and small tensor helpers shared by the tests."""

import torch


class SmoothDenoiser:
    """A smooth, seeded stand-in for a UNet: channel mixing, a sine nonlinearity, time dependence."""

    def __init__(self, seed: int, channels: int = 4):
        g = torch.Generator().manual_seed(seed)
        self.mix = 0.4 * torch.randn(channels, channels, generator=g, dtype=torch.float64)
        self.bias = 0.2 * torch.randn(channels, generator=g, dtype=torch.float64)
        self.freq = 1.0 + torch.rand(channels, generator=g, dtype=torch.float64)
        self.calls = 0

    def __call__(self, x, t):
        self.calls += 1
        s = float(t) / 1000.0
        shape = (1, -1) + (1,) * (x.dim() - 2)
        mix = self.mix.to(x.dtype)
        mixed = torch.einsum("cd,bd...->bc...", mix, x)
        return (
            mixed * (1.0 - 0.5 * s)
            + 0.3 * torch.sin(self.freq.to(x.dtype).view(shape) * x)
            + s * self.bias.to(x.dtype).view(shape)
        )


def random_latents(seed, shape=(2, 4, 8, 8), dtype=torch.float32):
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def rel_err(a, b):
    return float((a.double() - b.double()).norm() / b.double().norm())
