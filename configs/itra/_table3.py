"""ITRA Table 3: baseline, center loss (λ 0.05) and ITRA-c (λ 0.6) at three batch sizes."""

from __future__ import annotations

import ml_collections

from configs import paper
from configs.itra import _common as itra

CENTER, ITRA = 0.05, 0.6


def runs(batch: int, itra_batches: tuple[int, int, int]) -> ml_collections.ConfigDict:
  out = {"baseline": {"batch_size": batch, "aux_losses": []},
         "center": {"batch_size": batch, "aux_losses": [itra.center(CENTER)]}}
  for b in itra_batches:
    out[f"itra_b{b}"] = {"batch_size": b, "aux_losses": [itra.itra(ITRA)]}
  return ml_collections.ConfigDict(out)


def table(label: str, batch: int, itra_batches: tuple[int, int, int],
          figures: tuple[tuple[float, float], ...], notes: str) -> paper.Table:
  """``figures``: (acc, CE) of baseline, center, then ITRA at each of ``itra_batches``."""
  labels = [(f"Baseline (batch {batch})", "baseline"),
            (f"Center λ=0.05 (batch {batch})", "center")]
  labels += [(f"ITRA λ=0.6 (batch {b})", f"itra_b{b}") for b in itra_batches]
  rows = tuple(paper.Row(text, run, {itra.ACC.name: acc, itra.CE.name: ce})
               for (text, run), (acc, ce) in zip(labels, figures))
  return paper.Table(itra.PAPER, "Table 3", f"{label}: accuracy (%) and test cross-entropy",
                     columns=(itra.ACC, itra.CE), rows=rows, notes=notes)
