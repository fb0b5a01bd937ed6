"""The denoiser as a traced, frozen TorchScript graph, for sampling on the CPU.

On the CPU a sampling step of the small network spends a fifth of its time in Python
and in operators a frozen graph fuses or folds: ``bench/per_step.py`` measured x1.20 to
x1.30 per step with identical output (largest difference 0), for a one-off 0.7 to 0.9 s
per model. ``torch.compile`` gave x1.42 but took 30 s to compile, which a
generation never earns back; one thread instead of two, x0.62; bfloat16 autocast is
left out because it changes the dance and is slow on CPUs without bfloat16 units.

A graph is made once per window length and kept with the model: it takes any number of
windows (the sizes are traced as sizes, and the results are identical to the model's for
every chunk size, tested). Freezing copies the weights into the graph, so the graphs are dropped
whenever any parameter or buffer has been changed in place since (PyTorch's version
counter), and a model being trained (``model.training``) is never traced.

``torch.jit`` is deprecated from PyTorch 2.13 on (the version the runtime pins) but works
there; should tracing fail on another version, sampling goes on with the model's own
``denoise``, the same numbers a little slower.
"""

from __future__ import annotations

import logging
import warnings

import torch

from .model import DanceDenoiser, MusicContext

log = logging.getLogger(__name__)

_ATTRIBUTE = "_m2d_traced"


class FlatDenoiser(torch.nn.Module):
    """``denoise`` with the music context as plain tensors (:meth:`arguments`), which tracing needs."""

    def __init__(self, model: DanceDenoiser):
        super().__init__()
        self.model = model

    @staticmethod
    def arguments(context: MusicContext) -> list:
        """The context as the tensors :meth:`forward` takes after ``x_t`` and ``t``."""
        return [context.pooled] + [a for kv in context.cross_kv for a in kv]

    def forward(self, x_t, t, pooled, *kv):
        pairs = [(kv[i], kv[i + 1]) for i in range(0, len(kv), 2)]
        return self.model.denoise(x_t, t, MusicContext(pooled, pairs))


class TracedDenoiser:
    """Calls like ``model.denoise(x_t, t, context)``, through a frozen graph per window length."""

    def __init__(self, model: DanceDenoiser):
        self.model = model
        self._graphs: dict = {}
        self._versions: tuple = ()
        self._failed = False

    def _weights_version(self) -> tuple | None:
        """The weights' in-place change counters; None for weights made in inference mode, which have none."""
        try:
            return tuple(a._version for a in [*self.model.parameters(), *self.model.buffers()])
        except RuntimeError:
            return None

    def __call__(self, x_t: torch.Tensor, t: torch.Tensor, context: MusicContext) -> torch.Tensor:
        versions = None if self._failed else self._weights_version()
        if versions is None:  # a graph could not be told stale: the model itself
            return self.model.denoise(x_t, t, context)
        flat = FlatDenoiser.arguments(context)
        if versions != self._versions:
            self._graphs.clear()
            self._versions = versions
        key = tuple((tuple(a.shape[1:]), a.dtype) for a in [x_t, t, *flat])  # any batch
        graph = self._graphs.get(key)
        if graph is None:
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", torch.jit.TracerWarning)
                    warnings.simplefilter("ignore", DeprecationWarning)
                    graph = torch.jit.freeze(torch.jit.trace(FlatDenoiser(self.model).eval(), (x_t, t, *flat),
                                                             check_trace=False))
            except Exception as exc:  # noqa: BLE001 - any tracing failure: the eager model gives the same numbers
                log.warning("Sampling without a traced network (%s: %s); it is a little slower.",
                            type(exc).__name__, exc)
                self._failed = True
                return self.model.denoise(x_t, t, context)
            self._graphs[key] = graph
        return graph(x_t, t, *flat)


def sampling_denoiser(model: DanceDenoiser, device: torch.device):
    """What the sampler calls as ``denoise(x_t, t, context)``: the traced graph for an evaluating model
    on the CPU (kept with the model across generations), the model's own method everywhere else, and
    for subclasses with their own ``denoise`` (tracing records tensor operations only)."""
    if device.type != "cpu" or model.training or type(model).denoise is not DanceDenoiser.denoise:
        return model.denoise
    traced = model.__dict__.get(_ATTRIBUTE)
    if traced is None:
        traced = TracedDenoiser(model)
        model.__dict__[_ATTRIBUTE] = traced
    return traced
