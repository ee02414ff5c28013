r"""Train (and evaluate) one config: ``python -m experiments.train --config CONFIG --workdir DIR``.

Overrides use ml_collections syntax, e.g. ``--config.num_epochs=3``,
``--config.optimizer.learning_rate=0.01``, ``--config.aux_losses[0].weight=0.5``.
A config with ``runs`` trains each run into ``DIR/<run>`` and writes a summary and a
side-by-side feature plot (:mod:`disc_jax.train.sweep`). Running the same command
again resumes from the latest checkpoints. Exit status: 0 done, 1 non-finite loss,
128 + signal number after SIGTERM/SIGINT (a checkpoint was saved).

  python -m experiments.train --config configs/default.py --workdir /tmp/disc_default
"""

from __future__ import annotations


from absl import app, flags, logging
from ml_collections import config_flags

from disc_jax.train.sweep import run_all, summary_markdown
from experiments._cli import exit_on_stop

_CONFIG = config_flags.DEFINE_config_file("config", None, "Path to a config file.",
                                          lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Folder for checkpoints, logs and results.")
_PROGRESS = flags.DEFINE_bool("progress", True, "Show a progress bar.")
flags.mark_flags_as_required(["config", "workdir"])


def main(argv: list[str]) -> None:
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  if not flags.FLAGS["verbosity"].present:
    logging.set_verbosity(logging.WARNING)  # Orbax logs every save at INFO
  with exit_on_stop():
    results = run_all(_CONFIG.value, _WORKDIR.value, progress=_PROGRESS.value)
  print(summary_markdown(results))


if __name__ == "__main__":
  app.run(main)
