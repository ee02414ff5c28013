"""Host-side input: datasets -> fixed-size numpy batches (no jax in the hot path).

Sources (``len``, ``get_batch(indices)``, ``num_classes``, ``image_shape``, ``name``):
:func:`load_source` by name (see :data:`DATASETS`), :class:`FuzzyRGB` (the sigma^2R toy
set), :class:`SyntheticSource`, :class:`TfdsSource` (TFDS array_record, no TensorFlow),
:func:`prepare_offline` (MNIST/Fashion-MNIST/KMNIST from the original files into TFDS),
:class:`CrossDomainSource` (Caltech-101 -> CIFAR-100 labels), :class:`ClassSubsetSource`
(C classes of a dataset relabelled 0..C-1, :func:`choose_classes`).
Batches: :class:`Pipeline` (normalise, augment, shuffle per epoch, resume, eval padding,
per-process rows, grain workers and prefetch), samplers :class:`RandomSampler` /
:class:`BalancedSampler`.
"""

from disc_jax.data.augment import parse_augment
from disc_jax.data.class_subset import ClassSubsetSource
from disc_jax.data.class_subset import choose_classes
from disc_jax.data.cross_domain import PAIRS as CALTECH101_CIFAR100_PAIRS
from disc_jax.data.cross_domain import CrossDomainSource
from disc_jax.data.fuzzy_rgb import FuzzyRGB
from disc_jax.data.offline import CorruptFileError
from disc_jax.data.offline import MissingFileError
from disc_jax.data.offline import offline_name
from disc_jax.data.offline import prepare_offline
from disc_jax.data.pipeline import Pipeline
from disc_jax.data.registry import DATASETS
from disc_jax.data.registry import DatasetInfo
from disc_jax.data.registry import dataset_info
from disc_jax.data.registry import load_source
from disc_jax.data.samplers import BalancedSampler
from disc_jax.data.samplers import RandomSampler
from disc_jax.data.source import ArraySource
from disc_jax.data.source import Source
from disc_jax.data.synthetic import SyntheticSource
from disc_jax.data.tfds import CorruptDatasetError
from disc_jax.data.tfds import DatasetNotPreparedError
from disc_jax.data.tfds import TfdsSource
