"""What the experiment entry points share: turning a stopped run into an exit code."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator

from disc_jax.train import Interrupted


@contextlib.contextmanager
def exit_on_stop() -> Iterator[None]:
  """Inside the block, a run stopped by a signal exits with ``128 + signum`` (its message
  says how to resume) and one stopped by a non-finite value exits with 1, without a
  traceback: both are outcomes the user acts on, not bugs."""
  try:
    yield
  except Interrupted as e:
    print(e, file=sys.stderr)
    sys.exit(128 + e.signum)
  except FloatingPointError as e:
    print(f"stopped: {e}", file=sys.stderr)
    sys.exit(1)
