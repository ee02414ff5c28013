"""Background prefetching of host batches, so input work overlaps the device step.

numpy's gathers, copies and arithmetic release the GIL, and so does a running XLA
computation, so one producer thread lets batch k+1 be built while step k trains.

>>> list(prefetch(iter(range(3))))
[0, 1, 2]
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from typing import TypeVar

T = TypeVar("T")
_DONE = object()


def prefetch(iterator: Iterator[T], buffer_size: int = 2) -> Iterator[T]:
  """Yields the items of ``iterator``, produced up to ``buffer_size`` ahead in a thread.

  Exceptions of the producer are re-raised in the consumer; closing the returned
  generator (or dropping it) stops the producer at its next item.
  """
  if buffer_size <= 0:
    raise ValueError(f"buffer_size must be positive, got {buffer_size}")
  buf: queue.Queue = queue.Queue(maxsize=buffer_size)
  stop = threading.Event()

  def produce():
    try:
      for item in iterator:
        while not stop.is_set():
          try:
            buf.put(item, timeout=0.1)
            break
          except queue.Full:
            continue
        if stop.is_set():
          return
      buf.put(_DONE)
    except BaseException as e:  # pylint: disable=broad-except
      buf.put(e)

  thread = threading.Thread(target=produce, daemon=True)
  thread.start()
  try:
    while True:
      item = buf.get()
      if item is _DONE:
        return
      if isinstance(item, BaseException):
        raise item
      yield item
  finally:
    stop.set()
