r"""Prepares datasets into a TFDS data_dir in one command, with or without network.

  python -m experiments.prepare cifar10 cifar100 [--data_dir D] [--manual_dir M]

Per dataset, in this order:

1. MNIST, Fashion-MNIST, KMNIST, CIFAR-10, CIFAR-100, Caltech-256: when the original files are in
   ``M/<name>/`` or ``M/``, they are verified against their published checksums and built
   offline (:mod:`disc_jax.data.offline`; no TensorFlow, no network) as
   ``disc_jax_<name>``, which ``load_source(name, ..., data_dir=D)`` reads.
2. Otherwise (and for STL-10, Caltech-101, Food-101, SUN397, ImageNet) TFDS's own builder
   prepares it with ``file_format='array_record'``. It downloads what it needs, except
   archives already in ``M/<name>/`` or ``M/`` under the file names of :data:`ARCHIVES`
   (TFDS's manual_dir convention: those are used instead of downloading; ImageNet is only
   ever read from there). TFDS's builders need TensorFlow to prepare (install it for this
   command only; training reads the array_record files without it).
3. When that fails (no network, no TensorFlow, an archive missing), the message names the
   archives to put where and the URLs to get them from.

Caltech-256 has no TFDS builder, so only step 1 applies to it. 'fuzzy_rgb' and
'synthetic' are generated in memory and need nothing. 'caltech101_cifar100' is
prepared as 'caltech101'.

Every build holds a lock file in ``D/<builder name>/`` and first removes the
``incomplete.*`` folders of builds that were killed (:func:`disc_jax.data.offline.prepare_locked`).
Exit status: 0 when every dataset is prepared, 1 otherwise (all are attempted).
"""

from __future__ import annotations

import argparse
import pathlib
import re
import socket
import sys
from collections.abc import Mapping, Sequence

import tensorflow_datasets as tfds

from disc_jax.data import offline
from disc_jax.data.registry import DATASETS, OFFLINE

# TFDS builder name -> (archives TFDS reads from manual_dir, where to get them).
ARCHIVES: dict[str, tuple[tuple[str, ...], str]] = {
    "cifar10": (("cifar-10-binary.tar.gz",), "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"),
    "cifar100": (("cifar-100-binary.tar.gz",), "https://www.cs.toronto.edu/~kriz/cifar-100-binary.tar.gz"),
    "stl10": (("stl10_binary.tar.gz",), "http://ai.stanford.edu/~acoates/stl10/stl10_binary.tar.gz"),
    "caltech101": (("caltech-101.zip",), "https://data.caltech.edu/records/mzrjq-6wc02/files/caltech-101.zip"),
    "food101": (("food-101.tar.gz",), "http://data.vision.ee.ethz.ch/cvl/food-101.tar.gz"),
    "sun397": (("SUN397.tar.gz", "Partitions.zip"), "https://vision.princeton.edu/projects/2010/SUN/"),
    "imagenet2012": (("ILSVRC2012_img_train.tar", "ILSVRC2012_img_val.tar"),
                     "https://image-net.org/download-images.php (registration required; TFDS never downloads it)"),
}

GENERATED = ("fuzzy_rgb", "synthetic")
OFFLINE_ONLY = ("caltech256",)   # no TFDS builder
ALIASES = {"caltech101_cifar100": "caltech101"}


def _reachable(url: str, timeout_s: float = 5.0) -> bool:
  """Whether the host of ``url`` accepts a TCP connection (so a download can start at all)."""
  match = re.match(r"(https?)://([^/:]+)", url)
  if not match:
    return False
  try:
    socket.create_connection((match.group(2), 443 if match.group(1) == "https" else 80), timeout=timeout_s).close()
    return True
  except OSError:
    return False


def _folder(manual_dir: pathlib.Path | None, name: str) -> pathlib.Path | None:
  """``M/<name>`` when it exists, else ``M`` (None without a manual_dir)."""
  if manual_dir is None:
    return None
  sub = manual_dir / name
  return sub if sub.is_dir() else manual_dir


def _has_offline_files(folder: pathlib.Path | None, name: str) -> bool:
  if folder is None:
    return False
  return all((folder / f).is_file() for files in offline.FILES[name].values() for f in files)


def _where(name: str, manual_dir: pathlib.Path | None) -> str:
  target = f"{manual_dir}/{name}/ (or {manual_dir}/)" if manual_dir else f"<manual_dir>/{name}/ (pass --manual_dir)"
  lines = []
  if name in offline.FILES:
    files = ", ".join(dict.fromkeys(f for fs in offline.FILES[name].values() for f in fs))
    lines.append(f"offline, no TensorFlow: put {files} from {offline.URLS[name]} in {target}")
  if name in ARCHIVES:
    files, url = ARCHIVES[name]
    lines.append(f"through TFDS (needs tensorflow installed): put {', '.join(files)} from {url} in {target}")
  return "To prepare it, " + "; or ".join(lines)


def prepare_one(name: str, data_dir: pathlib.Path | None, manual_dir: pathlib.Path | None, *,
                checksums: Mapping[str, Mapping[str, object]] | None = None, download: bool = True) -> str:
  """Prepares dataset ``name``; returns a one-line report. Raises RuntimeError saying what to do."""
  if name in GENERATED:
    return f"{name}: generated in memory, nothing to prepare"
  if name not in DATASETS:
    raise RuntimeError(f"{name}: unknown dataset; known: {', '.join(sorted(DATASETS))}")
  tfds_name = ALIASES.get(name, DATASETS[name].tfds_name)    # may name a config: 'sun397/standard-part1-120k'
  base = tfds_name.split("/")[0]
  folder = _folder(manual_dir, base)
  if name in OFFLINE:
    builder = offline.offline_builder(name, data_dir, checksums=checksums)
    if builder.is_prepared():
      return f"{name}: already prepared offline in {builder.data_dir}"
    if _has_offline_files(folder, name):
      builder = offline.prepare_offline(name, folder, data_dir, checksums=checksums)
      return f"{name}: prepared offline from {folder} into {builder.data_dir}"
    if name in OFFLINE_ONLY:
      raise RuntimeError(f"{name}: not in TFDS's catalogue, so only offline preparation exists. "
                         f"{_where(name, manual_dir)}")
  builder = tfds.builder(tfds_name, data_dir=None if data_dir is None else str(data_dir))
  if builder.is_prepared():
    return f"{name}: already prepared ({tfds_name}) in {builder.data_dir}"
  have_archives = (folder is not None and base in ARCHIVES
                   and all((folder / f).is_file() for f in ARCHIVES[base][0]))
  if not have_archives:
    if base == "imagenet2012":
      raise RuntimeError(f"{name}: TFDS prepares ImageNet only from manually downloaded archives. "
                         f"{_where(base, manual_dir)}")
    if not download:
      raise RuntimeError(f"{name}: not prepared and downloads are off. {_where(base, manual_dir)}")
    url = ARCHIVES[base][1] if base in ARCHIVES else offline.URLS[base]
    if not _reachable(url):
      raise RuntimeError(f"{name}: cannot reach {url.split()[0]} to download (no network?). "
                         f"{_where(base, manual_dir)}")
  config = tfds.download.DownloadConfig(manual_dir=None if folder is None else str(folder))
  try:
    builder = offline.prepare_locked(
        lambda: tfds.builder(tfds_name, data_dir=None if data_dir is None else str(data_dir)),
        lambda b: b.download_and_prepare(file_format="array_record", download_config=config))
  except Exception as e:  # pylint: disable=broad-except
    raise RuntimeError(f"{name}: TFDS could not prepare {tfds_name!r} ({type(e).__name__}: "
                       f"{str(e).splitlines()[0] if str(e) else ''}). {_where(base, manual_dir)}") from e
  return f"{name}: prepared by TFDS ({tfds_name}) in {builder.data_dir}"


def prepare(names: Sequence[str], data_dir: str | pathlib.Path | None = None,
            manual_dir: str | pathlib.Path | None = None, *, checksums: Mapping[str, Mapping[str, object]] | None = None,
            download: bool = True, out=sys.stdout) -> bool:
  """Prepares every dataset of ``names`` (see module docstring); True when all are prepared."""
  data_dir = None if data_dir is None else pathlib.Path(data_dir).expanduser()
  manual_dir = None if manual_dir is None else pathlib.Path(manual_dir).expanduser()
  ok = True
  for name in names:
    try:
      print(prepare_one(name, data_dir, manual_dir, checksums=checksums, download=download), file=out)
    except (RuntimeError, offline.MissingFileError, offline.CorruptFileError) as e:
      print(f"FAILED {e}", file=out)
      ok = False
  return ok


def main(argv: Sequence[str] | None = None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("datasets", nargs="+", help=f"dataset names: {', '.join(sorted(DATASETS))}")
  parser.add_argument("--data_dir", default=None, help="TFDS data_dir to write (default: TFDS's)")
  parser.add_argument("--manual_dir", default=None,
                      help="folder with downloaded archives/original files, per dataset in <manual_dir>/<name>/ "
                           "or directly in it")
  parser.add_argument("--no_download", action="store_true", help="never download (fail with what to put where)")
  args = parser.parse_args(argv)
  sys.exit(0 if prepare(args.datasets, args.data_dir, args.manual_dir, download=not args.no_download) else 1)


if __name__ == "__main__":
  main()
