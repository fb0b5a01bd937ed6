"""Sampling a dance: the DDIM steps, the sampler for every generation, and the pins it meets."""
