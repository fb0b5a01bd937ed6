"""The network: the EDGE-style denoiser, and its weights on disk."""
