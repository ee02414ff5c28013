"""The PyTorch side of the LeNet-5 comparison in ``experiments/benchmark.py``.

The same train step as disc_jax's ``lenet5`` + softmax cross-entropy + center loss with
Wen et al.'s center update (``AUX_ENTRIES['center']``), Adam(lr 1e-3, betas (0.9, 0.999),
eps 1e-8):

  conv 5x5x6 (pad 2) -> ReLU -> max-pool 2 -> conv 5x5x16 -> ReLU -> max-pool 2 ->
  Linear 400->120 -> ReLU -> Linear 120->84 -> ReLU -> Linear 84->10 ('head')
  loss = CE(logits, y) + 1.0 * 0.5 * mean_i ||f_i - c_{y_i}||^2   (f = the 84-vector)
  after the Adam step: c_j <- c_j - 0.5 * sum_{y_i=j} (c_j - f_i) / (1 + n_j)

61,706 parameters, as disc_jax's (checked by the benchmark). PyTorch is an optional
benchmark extra (``pip install -e .[benchmark]``), never imported by the library.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch
from torch import nn


class LeNet5(nn.Module):
  """LeNet-5 as ``disc_jax.models.LeNet5`` (ReLU, max-pooling, conv1 padded by 2)."""

  def __init__(self, num_classes: int = 10, in_channels: int = 1, flat: int = 400):
    super().__init__()
    self.conv1 = nn.Conv2d(in_channels, 6, 5, padding=2)
    self.conv2 = nn.Conv2d(6, 16, 5)
    self.fc1 = nn.Linear(flat, 120)
    self.fc2 = nn.Linear(120, 84)
    self.head = nn.Linear(84, num_classes)

  def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.max_pool2d(torch.relu(self.conv1(x)), 2)
    x = torch.max_pool2d(torch.relu(self.conv2(x)), 2)
    x = torch.relu(self.fc1(torch.flatten(x, 1)))
    feats = torch.relu(self.fc2(x))
    return self.head(feats), feats


class TorchLeNetStep:
  """One PyTorch train step (CE + center loss, Adam, Wen update) on a fixed batch."""

  def __init__(self, images_nhwc: np.ndarray, labels: np.ndarray, *, num_classes: int = 10,
               threads: int, channels_last: bool = False, weight: float = 1.0,
               alpha: float = 0.5, seed: int = 0):
    torch.manual_seed(seed)
    torch.set_num_threads(threads)
    self.model = LeNet5(num_classes, images_nhwc.shape[-1])
    x = torch.from_numpy(np.array(images_nhwc.transpose(0, 3, 1, 2), np.float32, order="C"))
    if channels_last:
      self.model = self.model.to(memory_format=torch.channels_last)
      x = x.contiguous(memory_format=torch.channels_last)
    self.x, self.y = x, torch.from_numpy(np.array(labels, np.int64))
    self.centers = torch.randn(num_classes, 84)
    self.opt = torch.optim.Adam(self.model.parameters(), lr=1e-3, betas=(0.9, 0.999), eps=1e-8)
    self.weight, self.alpha, self.num_classes = weight, alpha, num_classes
    self.name = "pytorch" + ("_channels_last" if channels_last else "")

  @property
  def num_params(self) -> int:
    return sum(p.numel() for p in self.model.parameters())

  def step(self) -> torch.Tensor:
    """One step; returns the loss before the update (a detached scalar tensor)."""
    logits, feats = self.model(self.x)
    ce = nn.functional.cross_entropy(logits, self.y)
    center = 0.5 * ((feats - self.centers[self.y]) ** 2).sum(1).mean()
    loss = ce + self.weight * center
    self.opt.zero_grad(set_to_none=True)
    loss.backward()
    self.opt.step()
    with torch.no_grad():  # Wen et al. eq. 4
      f = feats.detach()
      counts = torch.bincount(self.y, minlength=self.num_classes).to(f.dtype)
      sums = torch.zeros_like(self.centers).index_add_(0, self.y, f)
      delta = (counts[:, None] * self.centers - sums) / (1.0 + counts[:, None])
      self.centers -= self.alpha * delta
    return loss.detach()

  def run(self, n: int) -> float:
    """Seconds per step over ``n`` steps (synchronous: the loss is read at the end)."""
    t0 = time.perf_counter()
    loss = None
    for _ in range(n):
      loss = self.step()
    float(loss)
    return (time.perf_counter() - t0) / n


def load_jax_params(step: TorchLeNetStep, params: Any, centers: np.ndarray) -> None:
  """Copies disc_jax LeNet-5 params (Flax layout) and centers into ``step`` in place.

  Conv kernels HWIO -> OIHW; Dense kernels [in, out] -> Linear [out, in]; fc1's input
  rows are reordered from the NHWC flatten (h, w, c) to PyTorch's NCHW flatten (c, h, w).
  """
  m = step.model
  t = lambda a: torch.from_numpy(np.array(a, np.float32, order="C"))  # noqa: E731
  with torch.no_grad():
    for name in ("conv1", "conv2"):
      getattr(m, name).weight.copy_(t(np.transpose(params[name]["kernel"], (3, 2, 0, 1))))
      getattr(m, name).bias.copy_(t(params[name]["bias"]))
    k1 = np.asarray(params["fc1"]["kernel"])                       # [h*w*c, out]
    c = m.conv2.out_channels
    hw = int(round((k1.shape[0] // c) ** 0.5))
    k1 = k1.reshape(hw, hw, c, -1).transpose(3, 2, 0, 1).reshape(k1.shape[1], -1)
    m.fc1.weight.copy_(t(k1))
    m.fc1.bias.copy_(t(params["fc1"]["bias"]))
    for name in ("fc2", "head"):
      getattr(m, name).weight.copy_(t(np.asarray(params[name]["kernel"]).T))
      getattr(m, name).bias.copy_(t(params[name]["bias"]))
    step.centers.copy_(t(centers))


def info() -> dict[str, Any]:
  return {"torch": torch.__version__, "torch_threads": torch.get_num_threads()}
