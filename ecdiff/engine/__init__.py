"""The cloud's shared denoising engine: one model, many requests, batched UNet calls (see core.py)."""
