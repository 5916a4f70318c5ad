"""Protect the images of a dataset: load, noise, budget, quantise, verify,
write.

The per-image stages are functions of plain values (:class:`CopySpec`, an
item, arrays), so that a :class:`~mmunseg.protect.pipeline.StagePool` can
run them in worker processes; the :class:`Protector` runs the method
between them and writes the records in order."""
import os
import os.path as osp
import time
import zlib
from collections import deque
from concurrent.futures import Future
from dataclasses import dataclass

import numpy as np
import torch
from mmengine.utils import ProgressBar

from mmunseg.datasets.protected_copy import (MANIFEST_FILE, NOISE_DIR,
                                             load_manifest, noise_file,
                                             save_perturbation)
from mmunseg.utils.atomic_files import write_image_atomic
from ..models.budget import Budget, perturb_image
from .image_io import (ImageReadError, ImageTooLarge, image_size,
                       mirrored_path, read_image)
from .manifest import ManifestWriter
from .memory import (AUTOMATIC_MASKS_BYTES_PER_PIXEL,
                     PROTECTOR_BYTES_PER_PIXEL, format_size)
from .methods import Prompt
from .objects import PROMPT_MODES, class_id, class_map, union
from .pipeline import StagePool, check_workers, default_workers
from .quality import check_budget, psnr, ssim

#: Errors of running out of memory on one image (host or GPU): the
#: memory estimate (``max_memory``) was too low for it.
OUT_OF_MEMORY = (MemoryError, torch.cuda.OutOfMemoryError)

#: The ``reason`` of a failed record by the error's type, first match: what
#: the summary counts failures by.
FAILURE_REASONS = (
    (ImageTooLarge, 'too_large'),
    (OUT_OF_MEMORY, 'out_of_memory'),
    (ImageReadError, 'unreadable_image'),
    (FileNotFoundError, 'missing_file'),
    (OSError, 'unreadable_file'),
    (ValueError, 'bad_annotation'),
)


def stable_seed(key):
    """A seed that depends only on a sample's name (resume-safe)."""
    return zlib.crc32(key.encode())


def prompts_for(mode,
                objects,
                object_mask,
                key,
                num_points=10,
                class_labels=True):
    """The generator calls one image needs, as (region, Prompt) pairs.

    ``region`` is None for the call whose noise covers the whole image; the
    per-object calls of ``per-class`` / ``per-instance`` override the noise
    inside their own object. Every prompt carries a key made of ``key`` (and
    the object's name), from which random methods seed their draws; the
    whole-image call carries the class of each pixel (``Prompt.labels``)
    unless ``class_labels`` is False (an (H, W) int64 map, made for the
    methods that read it: ``NoiseMethod.needs_labels``).
    """
    calls = []
    labels = class_map(objects, object_mask.shape) if class_labels else None
    if mode == 'box':
        ys, xs = np.nonzero(object_mask)
        box = np.array([xs.min(), ys.min(), xs.max(), ys.max()], np.float32)
        return [(None, Prompt(box=box, labels=labels, key=key))]
    if mode == 'points':
        ys, xs = np.nonzero(object_mask)
        rng = np.random.default_rng(stable_seed(key))
        pick = rng.choice(len(xs), num_points, replace=len(xs) < num_points)
        points = np.stack([xs[pick], ys[pick]], axis=1).astype(np.float32)
        return [(None, Prompt(points=points, labels=labels, key=key))]
    calls.append((None, Prompt(mask=object_mask, labels=labels, key=key)))
    if mode in ('per-class', 'per-instance'):
        calls += [
            (mask,
             Prompt(mask=mask, class_id=class_id(name), key=f'{key}#{name}'))
            for name, mask in objects.items()
        ]
    return calls


@dataclass(frozen=True)
class CopySpec:
    """How each image of a copy is made and recorded: the plain values that
    the per-image stages need, which a worker process receives with each of
    its tasks (see :class:`Protector` for their meaning)."""
    out_dir: str
    budget: Budget
    prompt_mode: str
    fmt: str
    jpeg_quality: int
    ignore_index: int
    background_ids: tuple
    save_noise: bool
    class_labels: bool

    def output_file(self, item):
        """Where an item's protected copy goes."""
        return mirrored_path(item.img_path, item.root, self.out_dir,
                             '.' + self.fmt)

    def noise_file(self, item):
        """Where ``save_noise`` keeps an item's perturbation."""
        return noise_file(item.img_path, item.root,
                          osp.join(self.out_dir, NOISE_DIR))

    def record(self, item, status, **fields):
        """An item's manifest record with ``status`` and ``fields``."""
        record = dict(
            file=osp.relpath(self.output_file(item), self.out_dir),
            source=item.img_path,
            status=status,
            linf_object=None,
            linf_background=None,
            psnr=None,
            ssim=None,
            error=None,
            eps_object=self.budget.object,
            eps_background=self.budget.background,
            prompt=self.prompt_mode)
        record.update(fields)
        return record

    def failure(self, item, error):
        """The ``failed`` record of an item: the error's message, and its
        kind as ``reason`` (:data:`FAILURE_REASONS`), for the summary."""
        reasons = [r for kind, r in FAILURE_REASONS if isinstance(error, kind)]
        reason = reasons[0] if reasons else 'error'
        message = str(error)
        if isinstance(error, OUT_OF_MEMORY):
            message = (f'{item.img_path}: ran out of memory while protecting '
                       f'it ({type(error).__name__}: {message or "no detail"}'
                       '); the memory estimate was too low for this image')
        return self.record(item, 'failed', error=message, reason=reason)


@dataclass
class Loaded:
    """A decoded image waiting for its noise.

    Attributes:
        image (np.ndarray): uint8 (H, W, 3) RGB.
        object_mask (np.ndarray): (H, W) bool union of its objects.
        calls (list[tuple]): Its generator calls, (region, Prompt) pairs
            (:func:`prompts_for`).
    """
    image: np.ndarray
    object_mask: np.ndarray
    calls: list


def load_item(spec, item, automatic_objects=None):
    """The first stage of an image: decode it, find its objects and make its
    prompts.

    Args:
        spec (CopySpec): How the copy is made.
        item (ProtectItem): The image.
        automatic_objects (callable, optional): Image -> dict of masks, for
            ``prompt_mode='everything'``.

    Returns:
        Loaded | dict: What the method needs, or the image's final record:
        ``failed`` (unreadable, a bad annotation, out of memory) or
        ``copied_empty_mask`` (no objects: the original pixels re-encoded,
        written here, so the copy has one uniform format).
    """
    try:
        image = read_image(item.img_path)
        if spec.prompt_mode == 'everything':
            objects = automatic_objects(image)
        else:
            objects = item.objects(spec.ignore_index, spec.background_ids)
        for mask in objects.values():
            if mask.shape != image.shape[:2]:
                raise ValueError(
                    f'{item.seg_map_path or item.img_path}: annotation is '
                    f'{mask.shape[1]}x{mask.shape[0]} but the image '
                    f'{item.img_path} is {image.shape[1]}x{image.shape[0]}')
        object_mask = union(objects.values(), image.shape[:2])
    except (OSError, ValueError) + OUT_OF_MEMORY as error:
        return spec.failure(item, error)
    if not object_mask.any():
        write_image_atomic(
            spec.output_file(item), image, spec.fmt, spec.jpeg_quality)
        return spec.record(item, 'copied_empty_mask')
    key = osp.relpath(item.img_path, item.root).replace(os.sep, '/')
    return Loaded(
        image, object_mask,
        prompts_for(
            spec.prompt_mode,
            objects,
            object_mask,
            key,
            class_labels=spec.class_labels))


def remove_outputs(spec, item):
    """Delete what :func:`finish_item` may have written of a failed item:
    a failed record never leaves a file behind."""
    for path in (spec.output_file(item), spec.noise_file(item)):
        if osp.isfile(path):
            os.remove(path)


def finish_item(spec, item, image, object_mask, noise, seconds):
    """The last stage of an image: budget, quantise, write, verify.

    Args:
        spec (CopySpec): How the copy is made.
        item (ProtectItem): The image.
        image (np.ndarray): Its uint8 (H, W, 3) pixels.
        object_mask (np.ndarray): (H, W) bool.
        noise (np.ndarray): Its float (H, W, 3) unit-range noise.
        seconds (float): The method's time per image of its batch.

    Returns:
        dict: The image's record, ``protected`` with the achieved L-inf per
        region, PSNR and SSIM, or ``failed`` (out of memory, no file left).
    """
    try:
        protected = perturb_image(image, object_mask, noise, spec.budget)
        path = spec.output_file(item)
        write_image_atomic(path, protected, spec.fmt, spec.jpeg_quality)
        if spec.save_noise:
            save_perturbation(
                spec.noise_file(item),
                protected.astype(np.int16) - image)
        if spec.fmt == 'jpg':
            # JPEG is lossy: what counts is what a reader decodes. Its
            # compression may exceed the budget, which the record shows.
            protected = read_image(path)
            linf = check_budget(image, protected, object_mask, Budget(1, 1))
        else:
            linf = check_budget(image, protected, object_mask, spec.budget)
        value = psnr(image, protected)
        return spec.record(
            item,
            'protected',
            linf_object=linf['object'],
            linf_background=linf['background'],
            psnr=None if np.isinf(value) else round(float(value), 3),
            ssim=round(float(ssim(image, protected)), 5),
            seconds=round(seconds, 4))
    except OUT_OF_MEMORY as error:
        remove_outputs(spec, item)
        return spec.failure(item, error)


#: Batches a protector with workers holds at once: one loading ahead, the
#: one the method works on and two finishing behind.
BATCHES_IN_FLIGHT = 4


class Batch:
    """Images a protector handles together, on their way through the
    stages: ``outcomes`` holds, by index, the future of the stage under
    way, a :class:`Loaded` image waiting for its noise, or its record.

    Args:
        items (list[ProtectItem]): The images.
        need (int): Their estimated memory, bytes.
    """

    def __init__(self, items, need):
        self.items = items
        self.need = need
        self.outcomes = {}
        self.noised = False

    @classmethod
    def refused(cls, record):
        """A batch of one final record (an image refused unread)."""
        batch = cls([], 0)
        batch.outcomes[0] = record
        batch.noised = True
        return batch

    def load(self, spec, pool, automatic_objects=None):
        """Start loading the images: in the pool, or here when their
        objects come from SAM (``automatic_objects``)."""
        for index, item in enumerate(self.items):
            if automatic_objects is None:
                self.outcomes[index] = pool.submit(load_item, spec, item)
            else:
                self.outcomes[index] = load_item(spec, item, automatic_objects)

    def wait_loaded(self):
        """The loaded images by index (their final records kept)."""
        loaded = {}
        for index, outcome in self.outcomes.items():
            if isinstance(outcome, Future):
                outcome = self.outcomes[index] = outcome.result()
            if isinstance(outcome, Loaded):
                loaded[index] = outcome
        return loaded

    def done(self):
        return all(not isinstance(outcome, Future) or outcome.done()
                   for outcome in self.outcomes.values())

    def records(self):
        """The final records, in order (waiting for the pool)."""
        return [
            outcome.result() if isinstance(outcome, Future) else outcome
            for _, outcome in sorted(self.outcomes.items())
        ]


class Protector:
    """Writes a protected copy of dataset images, resumable and verified.

    Each image passes three stages: :func:`load_item` (decode, objects,
    prompts), the method (noise, in batches, in this process, on its
    device) and :func:`finish_item` (budget, quantise, write, verify). With
    ``workers`` the first and last run in worker processes
    (:class:`~mmunseg.protect.pipeline.StagePool`) while the method works
    on the batch between them; the records, their order and the bytes
    written are the same for any number of workers.

    Args:
        method (NoiseMethod): Where unit-range noise comes from.
        out_dir (str): Output root; the dataset's layout is mirrored there.
        budget (Budget | dict | str): L-inf budgets of the objects and the
            background (:meth:`Budget.of`: a budget, its dict or a preset
            name).
        prompt_mode (str): One of :data:`PROMPT_MODES`.
        fmt (str): ``png`` (lossless, default) or ``jpg``.
        jpeg_quality (int): JPEG quality when ``fmt='jpg'``, in [0, 100].
        batch_size (int): Images loaded, and calls handed to the method, at
            a time, >= 1 (a method that is not ``batched`` gets one image
            per call). It does not change the output.
        ignore_index (int): Unlabelled value of semantic maps.
        background_ids (Sequence[int]): Semantic classes that are not
            objects.
        automatic_objects (callable, optional): Image -> dict of masks, for
            ``prompt_mode='everything'`` (its images are then loaded in this
            process, where SAM is).
        resume (bool): Skip images the manifest records as done.
        save_noise (bool): Also write each image's perturbation (int8 grey
            levels, ``noise/<image path>.npz``) for ``AddUnlearnableNoise``.
        max_memory (int, optional): Bytes the images of one batch may need
            (:meth:`memory_needed`, from their headers). An image needing
            more becomes a ``failed`` record (reason ``too_large``) without
            being read; batches are cut short to stay under it, and with
            workers the batches in flight together stay under it too. None:
            no limit. An image that runs out of memory all the same (host or
            GPU) becomes a ``failed`` record (reason ``out_of_memory``) and
            the job goes on.
        workers (int, optional): Worker processes that load and finish
            images; 0 does everything in this process. None (default):
            :func:`~mmunseg.protect.pipeline.default_workers`. It does not
            change the output.
    """

    def __init__(self,
                 method,
                 out_dir,
                 budget,
                 prompt_mode='union',
                 fmt='png',
                 jpeg_quality=95,
                 batch_size=4,
                 ignore_index=255,
                 background_ids=(),
                 automatic_objects=None,
                 resume=False,
                 save_noise=False,
                 max_memory=None,
                 workers=None):
        if prompt_mode not in PROMPT_MODES:
            raise ValueError(f'prompt mode must be one of {PROMPT_MODES}, '
                             f'got {prompt_mode!r}')
        if prompt_mode == 'everything' and automatic_objects is None:
            raise ValueError('prompt mode "everything" needs SAM automatic '
                             'masks (the UnSeg generator method)')
        if fmt not in ('png', 'jpg'):
            raise ValueError(f'format must be png or jpg, got {fmt!r}')
        if not 0 <= jpeg_quality <= 100:
            raise ValueError(
                f'jpeg_quality must be in [0, 100], got {jpeg_quality}')
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f'batch_size must be an int >= 1, got '
                             f'{batch_size!r}')
        if max_memory is not None and max_memory <= 0:
            raise ValueError(f'max_memory must be > 0, got {max_memory}')
        self.spec = CopySpec(
            out_dir=out_dir,
            budget=Budget.of(budget),
            prompt_mode=prompt_mode,
            fmt=fmt,
            jpeg_quality=jpeg_quality,
            ignore_index=ignore_index,
            background_ids=tuple(background_ids),
            save_noise=save_noise,
            class_labels=method.needs_labels)
        self.method = method
        self.batch_size = batch_size
        self.automatic_objects = automatic_objects
        self.resume = resume
        self.max_memory = max_memory
        self.workers = default_workers() if workers is None else \
            check_workers(workers)

    def output_file(self, item):
        return self.spec.output_file(item)

    def memory_needed(self, width, height):
        """Estimated peak memory of protecting one such image, in bytes:
        the protector's own arrays, SAM's automatic masks in the
        ``everything`` mode and the method's calls on it (a chunk of
        ``batch_size`` per-object calls of the one image in the per-class
        and per-instance modes). The stages' peaks are added up, so the
        estimate errs on the safe side."""
        per_object = self.spec.prompt_mode in ('per-class', 'per-instance')
        calls = self.batch_size if per_object else 1
        per_pixel = PROTECTOR_BYTES_PER_PIXEL
        if self.spec.prompt_mode == 'everything':
            per_pixel += AUTOMATIC_MASKS_BYTES_PER_PIXEL
        return (per_pixel * width * height +
                calls * self.method.memory_bytes(height, width))

    def _batches(self, items):
        """Cut ``items`` into :class:`Batch` es of at most ``batch_size``
        images that fit in ``max_memory``; an image that alone does not fit
        comes as a batch of its own ``failed`` record, unread."""
        batch, needed = [], 0
        for item in items:
            size = image_size(item.img_path)
            # An unreadable header: load_item reports the file's problem.
            need = 0 if size is None else self.memory_needed(*size)
            if self.max_memory is not None and need > self.max_memory:
                width, height = size
                error = ImageTooLarge(
                    f'{item.img_path}: protecting this {width}x{height} '
                    f'image needs about {format_size(need)}, more than the '
                    f'{format_size(self.max_memory)} allowed (--max-memory)')
                yield Batch.refused(self.spec.failure(item, error))
                continue
            full = len(batch) == self.batch_size or (
                self.max_memory is not None
                and needed + need > self.max_memory)
            if batch and full:
                yield Batch(batch, needed)
                batch, needed = [], 0
            batch.append(item)
            needed += need
        if batch:
            yield Batch(batch, needed)

    def run(self, items, manifest_path, done=None, show_progress=True):
        """Protect ``items``; one manifest record per item, in their order.

        Args:
            items (list[ProtectItem]): What to protect (this rank's share).
            manifest_path (str): JSONL file the records are appended to.
            done (dict, optional): Records of earlier runs by file; with
                ``resume`` their finished images are skipped.
            show_progress (bool): Show a progress bar with ETA.

        Returns:
            dict[str, int]: Counts of the statuses written in this run.
        """
        done = done or {}
        if done and not self.resume:
            raise FileExistsError(
                f'{self.spec.out_dir} holds a previous run\'s manifest: pass '
                '--resume to continue it, or choose another --out-dir')
        todo = []
        for item in items:
            file = osp.relpath(self.output_file(item), self.spec.out_dir)
            record = done.get(file)
            if record and record['status'] != 'failed' and osp.isfile(
                    self.output_file(item)):
                continue
            if not self.resume and osp.exists(self.output_file(item)):
                raise FileExistsError(
                    f'{self.output_file(item)} exists and would be '
                    'overwritten; pass --resume or another --out-dir')
            todo.append(item)
        counts = {}
        progress = ProgressBar(len(todo)) if show_progress and todo else None
        with ManifestWriter(manifest_path) as manifest, StagePool(
                self.workers if todo else 0) as pool:
            for record in self._records(todo, pool):
                manifest.write(record)
                counts[record['status']] = counts.get(record['status'], 0) + 1
                if progress is not None:
                    progress.update()
        if progress is not None:
            print(flush=True)
        return counts

    def _records(self, items, pool):
        """The records of ``items``, in order, their batches pipelined.

        In this process the method makes the noise of one batch after the
        other; meanwhile the pool loads the next batch and finishes earlier
        ones (up to :data:`BATCHES_IN_FLIGHT`, whose memory together stays
        under ``max_memory``). Without workers every batch is loaded, given
        its noise and finished before the next one starts.
        """
        in_flight = deque()  # oldest first; all but the newest have noise
        limit = BATCHES_IN_FLIGHT if pool.workers else 1
        for batch in self._batches(items):
            while self._must_wait(batch, in_flight, limit):
                yield from self._complete(in_flight.popleft(), pool)
            batch.load(self.spec, pool, self.automatic_objects)
            if in_flight and not in_flight[-1].noised:
                self._noise(in_flight[-1], pool)
            in_flight.append(batch)
            if not pool.workers:
                # Loaded ahead only while workers can finish the others.
                self._noise(batch, pool)
            while in_flight and in_flight[0].noised and in_flight[0].done():
                yield from in_flight.popleft().records()
        while in_flight:
            yield from self._complete(in_flight.popleft(), pool)

    def _must_wait(self, batch, in_flight, limit):
        """Whether ``batch`` waits for the oldest batch in flight: there
        are ``limit`` of them, or with it they would need more memory than
        ``max_memory``."""
        if not in_flight:
            return False
        need = batch.need + sum(other.need for other in in_flight)
        return len(in_flight) == limit or (self.max_memory is not None
                                           and need > self.max_memory)

    def _complete(self, batch, pool):
        """The records of the oldest batch in flight, once finished."""
        if not batch.noised:
            self._noise(batch, pool)
        return batch.records()

    def _noise(self, batch, pool):
        """Run the method on a loaded batch and hand its images to the pool
        to finish. An image that runs out of memory gets its ``failed``
        record; the others are protected as if it were not there."""
        batch.noised = True
        loaded = batch.wait_loaded()
        calls = [(index, region, prompt) for index, image in loaded.items()
                 for region, prompt in image.calls]
        noises = {}

        def fail(index, error):
            # Out of memory: a failed record, and the image's arrays freed.
            batch.outcomes[index] = self.spec.failure(batch.items[index],
                                                      error)
            loaded.pop(index)
            noises.pop(index, None)

        started = time.perf_counter()
        per_call = self.batch_size if self.method.batched else 1
        for start in range(0, len(calls), per_call):
            chunk = [
                call for call in calls[start:start + per_call]
                if call[0] in loaded
            ]
            if not chunk:
                continue
            try:
                self._generate(chunk, loaded, noises)
            except OUT_OF_MEMORY as error:
                by_image = {}
                for call in chunk:
                    by_image.setdefault(call[0], []).append(call)
                if len(by_image) == 1:
                    fail(chunk[0][0], error)
                    continue
                # An image's noise does not depend on the others of its
                # call: each alone gives the same bytes, or fails alone.
                for index, image_calls in by_image.items():
                    try:
                        self._generate(image_calls, loaded, noises)
                    except OUT_OF_MEMORY as error:
                        fail(index, error)
        seconds = (time.perf_counter() - started) / max(len(loaded), 1)
        for index, image in loaded.items():
            batch.outcomes[index] = pool.submit(finish_item, self.spec,
                                                batch.items[index],
                                                image.image, image.object_mask,
                                                noises.pop(index), seconds)

    def _generate(self, calls, loaded, noises):
        """Run the method on ``calls`` (index, region, prompt) of the
        ``loaded`` images; their noise goes into ``noises`` by index (a
        per-object call's only inside its region)."""
        outputs = self.method.generate(
            [loaded[index].image for index, _, _ in calls],
            [prompt for _, _, prompt in calls])
        for (index, region, _), noise in zip(calls, outputs):
            if region is None:
                noises[index] = noise.copy()
            else:
                noises[index][region] = noise[region]


def shard(items, rank, world_size):
    """Every ``world_size``-th item from ``rank``: no gaps, no overlaps."""
    return items[rank::world_size]


def manifest_shard_path(out_dir, rank):
    """Where one rank appends its records while the job runs."""
    return osp.join(out_dir, '.mmunseg', f'manifest.rank{rank}.jsonl')


def previous_records(out_dir):
    """Every record earlier runs left in ``out_dir``, merged or still per
    rank (a killed job), by file; later records of a file win."""
    done = {}
    merged = osp.join(out_dir, MANIFEST_FILE)
    shards = osp.dirname(manifest_shard_path(out_dir, 0))
    paths = [merged] if osp.isfile(merged) else []
    if osp.isdir(shards):
        paths += sorted(
            osp.join(shards, name) for name in os.listdir(shards)
            if name.endswith('.jsonl'))
    for path in paths:
        done.update(load_manifest(path))
    return done
