"""Markdown for ``results/benchmarks.md`` from the JSON figures of ``experiments/benchmark.py``.

Each section is rendered from its own record (command, machine, date, load average at
start and end, figures), so sections measured by different commands can share one file.
The target verdicts are computed from the figures.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

TARGET_OVERHEAD = 1.05      # every loss except ITRA: < 5 % on the ResNet-18 step
TARGET_ITRA_PER_SAMPLE = 1.05
GPU_COMMAND = "python -m experiments.benchmark --sections gpu"


def _mib(x: float) -> str:
  return f"{x / 2**20:,.1f}"


def _rng(s: Mapping[str, float], fmt: str = "{:.3f}") -> str:
  """median [q1-q3] (min-max)."""
  f = fmt.format
  return (f"{f(s['median'])} [{f(s['q1'])}-{f(s['q3'])}] ({f(s['min'])}-{f(s['max'])})")


def _provenance(rec: Mapping[str, Any]) -> list[str]:
  m = rec["machine"]
  torch = f", torch {rec['torch']}" if rec.get("torch") else ""
  flags = f", XLA_FLAGS `{m['xla_flags']}`" if m.get("xla_flags") else ""
  return [f"- Command: `{rec['command']}`",
          f"- Machine: {m['cpu']}, {m['cores']} cores, backend {m['backend']} ({m['device']}), "
          f"jax {m['jax']}{torch}{flags}",
          f"- Date: {m['date']}; wall time {rec['wall_s']:.0f} s",
          f"- Load average (1/5/15 min) at start {m['load_avg']}, at end {rec['load_end']}", ""]


def _overhead(rec: Mapping[str, Any]) -> list[str]:
  out = []
  for key, r in rec["data"].items():
    shape = "x".join(map(str, r["image_shape"]))
    out += [f"### {r['model']}, batch {r['batch']}, {shape}, {r['dtype']}", "",
            f"{r['rounds']} interleaved rounds x {r['steps_per_round']} step(s); ratio = "
            "step time with the loss / CE-only step time in the same round: median "
            "[quartiles] (min-max) over rounds.", "",
            "Also: 'min ratio' = fastest step with the loss / fastest CE step over the rounds "
            "(the least-disturbed runs); 'alone / CE step' = the loss's own jitted "
            "value_and_grad at this batch and feature width (D in brackets) over the CE step "
            "time of the same round, i.e. what the loss adds without the step's noise; FLOP "
            "ratio = XLA cost analysis, step with the loss / CE step.", "",
            "| loss | step ms (median) | ratio per step | ratio per sample seen | min ratio | "
            "alone / CE step | FLOP ratio |", "|---|---|---|---|---|---|---|"]
    for name, s in r["seconds"].items():
      per_sample = (_rng(r["ratio_per_sample"][name]) if r["samples_per_step"][name] != r["batch"]
                    else "= per step")
      alone = (f"{_rng(r['loss_alone_over_ce_step'][name], '{:.4f}')} (D={r['loss_dims'][name]})"
               if name in r.get("loss_dims", {}) else "-")
      out.append(f"| {name} | {s['median'] * 1e3:,.1f} | {_rng(r['ratio_per_step'][name])} | "
                 f"{per_sample} | {r['ratio_of_min_times'][name]:.3f} | {alone} | "
                 f"{r['flops'][name] / r['flops']['ce']:.4f} |")
    c = r["ceiling"]
    out += ["", f"Hardware ceiling (same rounds): CE step "
            f"{_rng({k: v / 1e9 if k != 'n' else v for k, v in c['ce_step_flops_per_s'].items()}, '{:.1f}')}"
            f" GFLOP/s; float32 matmul n={c['matmul_n']} "
            f"{_rng({k: v / 1e9 if k != 'n' else v for k, v in c['matmul_flops_per_s'].items()}, '{:.1f}')}"
            f" GFLOP/s; fraction {_rng(c['fraction'])}.", ""]
  return out


def _scaling(rec: Mapping[str, Any]) -> list[str]:
  d = rec["data"]
  out = ["Each loss alone: `jax.jit(jax.value_and_grad(loss))` w.r.t. every float input, "
         "10 classes, random normal features. Time: best of the timed calls after a warm-up. "
         "Memory from `compiled.memory_analysis()`: temp = XLA's temporary buffers, peak = "
         "arguments + outputs + temps. 'pair' = one [N, N] float32 matrix, N = B "
         "(ITRA: N = 2B, the union of its two batches of B).", "",
         "| loss | B | D | time s | temp MiB | temp / pair | peak MiB | compile s |",
         "|---|---|---|---|---|---|---|---|"]
  for r in d["rows"]:
    out.append(f"| {r['loss']} | {r['batch']} | {r['dim']} | {r['seconds']:.4g} | "
               f"{_mib(r['temp_bytes'])} | {r['temp_over_pair_matrix']:.2f} | "
               f"{_mib(r['peak_bytes'])} | {r['compile_s']:.1f} |")
  return out + [""]


def _torch(rec: Mapping[str, Any]) -> list[str]:
  d = rec["data"]
  chk = d["same_weights_losses"]
  out = [f"LeNet-5 + CE + center loss (Wen update, alpha 0.5, weight 1), Adam 1e-3, batch "
         f"{d['batch']}, 28x28x1; {d['threads']} threads for both (PyTorch "
         f"`torch.set_num_threads({d['threads']})`, XLA's CPU pool = the cores). Parameters: "
         f"disc_jax {d['param_counts']['disc_jax']:,}, PyTorch {d['param_counts']['pytorch']:,}. "
         f"Same weights, centers and batch, {len(chk['disc_jax'])} steps each: losses disc_jax "
         f"{[round(v, 5) for v in chk['disc_jax']]}, PyTorch {[round(v, 5) for v in chk['pytorch']]}"
         f" (max |diff| {chk['max_abs_diff']:.2g}). XLA's step: {d['flops'] / 1e9:.2f} GFLOP.", "",
         f"{d['rounds']} interleaved rounds x {d['steps']} steps; ratio = time / PyTorch (NCHW) "
         "time in the same round (< 1: faster than PyTorch).", "",
         "| variant | ms/step (median) | ratio vs PyTorch | ratio vs PyTorch channels_last "
         "| ratio vs disc_jax as is |", "|---|---|---|---|---|"]
  rat = d["ratios"]
  for name, s in d["seconds"].items():
    out.append(f"| {name} | {s['median'] * 1e3:,.1f} | {_rng(rat['pytorch'][name])} | "
               f"{_rng(rat['pytorch_channels_last'][name])} | {_rng(rat['disc_jax'][name])} |")
  flags = ", ".join(f"`{k}` = `{v}`" for k, v in d.get("xla_flags", {}).items())
  return out + ["", f"Variants: `disc_jax` = the library's step (2x2 max-pools as the "
                "maximum of strided slices); XLA flag variants run in worker "
                f"processes: {flags or 'none'}.", ""]


def _gpu(rec: Mapping[str, Any] | None) -> list[str]:
  if rec is None:
    return ["Not run here: this session had no GPU. On a machine with one, run", "",
            f"    {GPU_COMMAND}", "",
            "It times the CIFAR ResNet-18 step (batch 128) with each loss in float32 and in "
            "bfloat16 compute (`dtype` of the model; params stay float32) and reports images/s, "
            "TFLOP/s (XLA cost analysis) and the fraction of a same-dtype matmul's FLOP/s.", ""]
  d = rec["data"]
  out = _provenance(rec)
  for dtype in [k for k in d if isinstance(d[k], dict)]:
    out += [f"#### {dtype} (matmul {d[dtype]['matmul_tflops_per_s']:.1f} TFLOP/s)", "",
            "| loss | images/s | samples seen/s | TFLOP/s | MFU vs matmul |", "|---|---|---|---|---|"]
    for k, v in d[dtype].items():
      if isinstance(v, dict):
        out.append(f"| {k} | {v['images_per_s']:,.0f} | {v['samples_seen_per_s']:,.0f} | "
                   f"{v['tflops_per_s']:.2f} | {v['mfu_vs_matmul']:.3f} |")
    out.append("")
  return out


def _targets(records: Mapping[str, Any]) -> list[str]:
  out = []
  ov = records.get("overhead_resnet18", {}).get("data", {})
  if "resnet18" in ov:
    r = ov["resnet18"]
    for name, s in r["ratio_per_step"].items():
      if name in ("ce", "itra"):
        continue
      hit = s["median"] < TARGET_OVERHEAD
      alone = r["loss_alone_over_ce_step"][name]["median"]
      out.append(f"- ResNet-18 + {name}: {100 * (s['median'] - 1):+.1f} % per step (median; "
                 f"range {100 * (s['min'] - 1):+.1f} to {100 * (s['max'] - 1):+.1f} %; min ratio "
                 f"{100 * (r['ratio_of_min_times'][name] - 1):+.1f} %; the loss alone "
                 f"{100 * alone:.2f} % of the CE step): {'hit' if hit else 'MISS'} (target < +5 %)")
    if "itra" in r["ratio_per_sample"]:
      s = r["ratio_per_sample"]["itra"]
      hit = s["median"] <= TARGET_ITRA_PER_SAMPLE
      out.append(f"- ResNet-18 + ITRA per training sample seen: {100 * (s['median'] - 1):+.1f} % "
                 f"vs CE per sample (range {100 * (s['min'] - 1):+.1f} to "
                 f"{100 * (s['max'] - 1):+.1f} %): {'hit' if hit else 'MISS'} (target <= +5 %)")
  vt = records.get("torch", {}).get("data")
  if vt:
    jax_names = [k for k in vt["seconds"] if k.startswith("disc_jax")]
    best = min(jax_names, key=lambda k: vt["ratios"]["pytorch"][k]["median"])
    for jax_name in dict.fromkeys(("disc_jax", best)):
      for torch_name in ("pytorch", "pytorch_channels_last"):
        s = vt["ratios"][torch_name][jax_name]
        out.append(f"- LeNet-5 step, {jax_name} / {torch_name}: {s['median']:.2f}x the time "
                   f"(range {s['min']:.2f}-{s['max']:.2f}): "
                   f"{'hit' if s['median'] <= 1.0 else 'MISS'} (target <= 1.00)")
  return out


def render(records: Mapping[str, Any], notes: str = "") -> str:
  """The whole markdown file from ``{section: record}`` (+ free-text ``notes`` at the end)."""
  lines = ["# disc_jax benchmarks", "",
           "Generated by `experiments/benchmark.py` from `results/benchmarks.json`; every "
           "timing is a ratio or a figure measured within one run, with the run's command, "
           "machine and load. The machine is shared: absolute times move with the load, "
           "ratios within a round much less.", ""]
  targets = _targets(records)
  if targets:
    lines += ["## Targets", "", *targets, ""]
  titles = {"overhead_lenet5": "Overhead of each auxiliary loss: LeNet-5 (and hardware ceiling)",
            "overhead_resnet18": "Overhead of each auxiliary loss: CIFAR ResNet-18 (and hardware "
                                 "ceiling)",
            "scaling": "Scaling of each loss alone", "torch": "disc_jax vs PyTorch (LeNet-5)"}
  renderers = {"overhead_lenet5": _overhead, "overhead_resnet18": _overhead,
               "scaling": _scaling, "torch": _torch}
  for key, title in titles.items():
    if key in records:
      lines += [f"## {title}", "", *_provenance(records[key]), *renderers[key](records[key])]
  lines += ["## GPU", "", *_gpu(records.get("gpu"))]
  if notes:
    lines += [notes.strip(), ""]
  return "\n".join(lines)
