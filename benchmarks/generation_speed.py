"""Protection speed: the UnSeg generator against per-image error-minimising
noise, on the same images at the same resolution, in one run.

Times, per image, (a) the generator (``UnSegGenerator.generate``: one
batched forward pass plus the resizing around it, exactly what
``tools/protect.py`` calls), its network alone, and one forward pass of its
frozen SAM image encoder (the floor: the generator cannot be faster than
its own encoder); (b) sample-wise error-minimising noise
(``ErrorMinimizingNoise`` at its defaults: min-min with PGD on each image
alone, on the first ``--em-images`` of the images). Prints images/s, the
ratios and peak memory (process RSS on a CPU,
``torch.cuda.max_memory_allocated`` on a GPU), and writes JSON. FLOPs are
counted on the meta device; ``--flops-only`` does only that, for any size
on any machine.

Without ``--checkpoint`` the generator is randomly initialised: its speed
does not depend on its weights.

    python benchmarks/generation_speed.py                    # tiny, CPU
    python benchmarks/generation_speed.py --device cuda --arch vit_b \\
        --precision bf16 --channels-last                     # a GPU
"""
import argparse
import ctypes
import gc
import json
import os
import os.path as osp
import platform
import statistics
import tempfile
import threading
import time

import torch
from mmengine.config import Config, DictAction
from torch.utils.flop_counter import FlopCounterMode

from mmunseg.models.sam.encoder import normalize
from mmunseg.protect import (UnSegGenerator, background_class_ids, load_split,
                             read_image)
from mmunseg.protect.methods import generator_config_from_checkpoint
from mmunseg.protect.objects import union
from mmunseg.protect.protector import prompts_for
from mmunseg.registry import MODELS, NOISE_METHODS
from mmunseg.utils import load_checkpoint_file, register_all_modules

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument(
        '--dataset',
        default=osp.join(REPO, 'configs', '_base_', 'datasets', 'camvid.py'),
        help='dataset config whose train images are protected')
    parser.add_argument('--images', type=int, default=8)
    parser.add_argument('--batch-size', type=int, default=4)
    parser.add_argument(
        '--checkpoint', help='trained generator (default: random init)')
    parser.add_argument(
        '--arch', default='tiny', help='SAM size of a random generator')
    parser.add_argument(
        '--img-size',
        type=int,
        help='generator input (default 256 for tiny, else 1024)')
    parser.add_argument('--device', default='cpu')
    parser.add_argument(
        '--threads',
        type=int,
        help='CPU threads (default: torch\'s); 1 is steadier on cores '
        'shared with other processes')
    parser.add_argument(
        '--precision', default='fp32', choices=['fp32', 'bf16', 'fp16'])
    parser.add_argument('--channels-last', action='store_true')
    parser.add_argument('--compile', action='store_true')
    parser.add_argument(
        '--repeats',
        type=int,
        default=5,
        help='timed passes over the images (generator and encoder)')
    parser.add_argument(
        '--em-images',
        type=int,
        default=2,
        help='EM runs on the first N of the images (its cost per image '
        'does not depend on N); 0 skips it')
    parser.add_argument(
        '--em-batch-size',
        type=int,
        default=1,
        help='images per EM call; EM crafts them in groups of its '
        'batch_size (--em-options batch_size=N; default 1: each image\'s '
        'own min-min)')
    parser.add_argument(
        '--em-options',
        nargs='+',
        action=DictAction,
        default={},
        help='ErrorMinimizingNoise arguments, KEY=VALUE')
    parser.add_argument(
        '--flops-only',
        action='store_true',
        help='only count FLOPs (on the meta device: any size, no compute)')
    parser.add_argument(
        '--out',
        help='JSON file (default: results/'
        'generation_speed_{arch}_{device}.json)')
    return parser.parse_args()


def release_freed_memory():
    """Return freed heap memory to the OS, so the RSS measures what a
    block needs rather than what earlier blocks left cached (glibc)."""
    gc.collect()
    try:
        ctypes.CDLL('libc.so.6').malloc_trim(0)
    except (OSError, AttributeError):
        pass


def rss_bytes():
    """Resident set size of this process (Linux)."""
    with open('/proc/self/statm') as f:
        return int(f.read().split()[1]) * os.sysconf('SC_PAGE_SIZE')


class PeakMemory:
    """Peak memory of a block: CUDA allocations on a GPU, else the RSS.

    The RSS is sampled every millisecond by a thread, so a block's own peak
    is seen even after an earlier block's higher one. ``peak_mb`` is the
    peak; ``added_mb`` what the block added to what was held before it.
    """

    def __init__(self, device):
        self.cuda = torch.device(device).type == 'cuda'

    def _sample(self):
        while not self._stop.wait(0.001):
            self._peak = max(self._peak, rss_bytes())

    def __enter__(self):
        if self.cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            self._base = torch.cuda.memory_allocated()
            return self
        release_freed_memory()
        self._base = self._peak = rss_bytes()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        if self.cuda:
            torch.cuda.synchronize()
            peak = torch.cuda.max_memory_allocated()
        else:
            self._stop.set()
            self._thread.join()
            peak = max(self._peak, rss_bytes())
        self.peak_mb = peak / 2**20
        self.added_mb = (peak - self._base) / 2**20


def synchronize(device):
    if torch.device(device).type == 'cuda':
        torch.cuda.synchronize()


def time_once(fn, device):
    synchronize(device)
    started = time.perf_counter()
    fn()
    synchronize(device)
    return time.perf_counter() - started


def load_images(dataset, count):
    """The first ``count`` train images with objects, their union mask
    prompts (which carry the class of each object pixel) and the number of
    classes."""
    cfg = Config.fromfile(dataset)
    split = load_split(cfg, 'train')[0]
    classes = split.dataset_cfg.get('metainfo', {}).get('classes') or \
        cfg.get('metainfo', {}).get('classes')
    background = background_class_ids(classes)
    images, prompts = [], []
    for item in split.items:
        objects = item.objects(background_ids=background)
        image = read_image(item.img_path)
        mask = union(objects.values(), image.shape[:2])
        if not mask.any():
            continue
        images.append(image)
        prompts.append(
            prompts_for('union', objects, mask, item.img_path)[0][1])
        if len(images) == count:
            break
    return images, prompts, len(classes)


def generator_config(args):
    """The generator's model config: the checkpoint's, or ``--arch``."""
    if args.checkpoint:
        return generator_config_from_checkpoint(
            load_checkpoint_file(args.checkpoint), args.checkpoint)
    img_size = args.img_size or (256 if args.arch == 'tiny' else 1024)
    return dict(type='SAMNoiseGenerator', arch=args.arch, img_size=img_size)


def build_generator(args, cfg, folder):
    """``UnSegGenerator`` of ``--checkpoint``, or of a random generator
    saved as an exported file (the same loading path)."""
    checkpoint = args.checkpoint
    if checkpoint is None:
        checkpoint = osp.join(folder, 'generator.pth')
        torch.save(
            dict(
                meta=dict(generator_cfg=cfg),
                state_dict=MODELS.build(cfg).state_dict()), checkpoint)
    return UnSegGenerator(
        checkpoint,
        generator_cfg=cfg,
        device=args.device,
        precision=args.precision,
        channels_last=args.channels_last,
        compile=args.compile,
        # The network runs whole batches, as the timed calls give them.
        forward_batch=args.batch_size)


def count_flops(cfg):
    """Matmul and convolution GFLOPs per mask-prompted image of the
    generator's network and of its image encoder, counted on the meta
    device (shapes only, no computation: any size on any machine)."""
    generator = MODELS.build(dict(cfg, sam_checkpoint=None)).to('meta')
    size = generator.img_size
    images = torch.empty(1, 3, size, size, device='meta')
    masks = torch.empty(1, 1, size // 4, size // 4, device='meta')
    flops = {}
    for name, run in (('network', lambda: generator(images, masks=masks)),
                      ('encoder', lambda: generator.image_encoder(images))):
        with FlopCounterMode(display=False) as counter:
            run()
        flops[name] = counter.get_total_flops() / 1e9
    return flops


def batches(items, size):
    return [items[i:i + size] for i in range(0, len(items), size)]


def network_inputs(method, images, prompts, batch_size):
    """Prepared (inputs, prompt tensors) per batch, as ``generate`` does."""
    prepared = []
    with torch.inference_mode():
        for chunk in batches(list(zip(images, prompts)), batch_size):
            inputs, sides = zip(*(method.to_input(image)
                                  for image, _ in chunk))
            prepared.append((torch.cat(inputs),
                             method.prompt_inputs([p for _, p in chunk],
                                                  sides)))
    return prepared


def encoder_forward(method, encoder):
    """One forward of the generator's SAM image encoder, with the same
    precision and memory layout as the generator."""
    generator = method.generator

    @torch.inference_mode()
    def run(inputs):
        inputs = normalize(inputs, generator.pixel_mean, generator.pixel_std)
        if method.channels_last:
            inputs = inputs.contiguous(memory_format=torch.channels_last)
        if method.autocast_dtype is None:
            return encoder(inputs)
        with torch.autocast(method.device.type, dtype=method.autocast_dtype):
            return encoder(inputs)

    return run


def machine(device):
    cpu = platform.processor() or platform.machine()
    if osp.isfile('/proc/cpuinfo'):
        for line in open('/proc/cpuinfo'):
            if line.startswith('model name'):
                cpu = line.split(':', 1)[1].strip()
                break
    text = (f'{cpu}, {os.cpu_count()} CPUs, torch {torch.__version__}, '
            f'{torch.get_num_threads()} threads')
    if torch.device(device).type == 'cuda':
        text += f', {torch.cuda.get_device_name(device)}'
    return text


def time_generator(args, method, images, prompts):
    """Seconds per image and peak memory of the generator, its network and
    its encoder on the same batches."""
    encoder = method.generator.image_encoder
    if args.compile:
        encoder = torch.compile(encoder)
    encode = encoder_forward(method, encoder)
    prepared = network_inputs(method, images, prompts, args.batch_size)
    chunks = batches(list(zip(images, prompts)), args.batch_size)

    def run_generate():
        for chunk in chunks:
            method.generate([i for i, _ in chunk], [p for _, p in chunk])

    def run_network():
        for inputs, prompt_kwargs in prepared:
            method.forward_network(inputs, prompt_kwargs)

    def run_encoder():
        for inputs, _ in prepared:
            encode(inputs)

    runs = dict(
        generate=run_generate, network=run_network, encoder=run_encoder)
    memory = {}
    for name, run in runs.items():  # warm-up (and compilation)
        with PeakMemory(args.device) as peak:
            run()
        memory[name] = peak
    # Interleaved, so that load from other processes hits all alike.
    times = {name: [] for name in runs}
    for _ in range(args.repeats):
        for name, run in runs.items():
            times[name].append(time_once(run, args.device))
    seconds = {
        name: statistics.median(values) / len(images)
        for name, values in times.items()
    }
    return seconds, memory


def time_em(args, images, prompts, num_classes):
    """Seconds per image, peak memory and settings of sample-wise EM on the
    first ``--em-images`` images."""
    options = dict(num_classes=num_classes, device=args.device)
    options.update(args.em_options)
    em = NOISE_METHODS.build(dict(type='ErrorMinimizingNoise', **options))
    images, prompts = images[:args.em_images], prompts[:args.em_images]
    chunks = batches(list(zip(images, prompts)), args.em_batch_size)

    def run():
        for chunk in chunks:
            em.generate([i for i, _ in chunk], [p for _, p in chunk])

    with PeakMemory(args.device) as peak:
        seconds = time_once(run, args.device) / len(images)
    settings = {
        key: value
        for key, value in vars(em).items()
        if isinstance(value, (int, float, str, bool, type(None)))
    }
    settings.update(
        images=len(images),
        batch_size=args.em_batch_size,
        passes_per_image=em.passes / len(images))
    return seconds, peak, settings


def write(result, out):
    os.makedirs(osp.dirname(out), exist_ok=True)
    with open(out, 'w') as f:
        json.dump(result, f, indent=2)
    print(f'wrote {out}')


def main():
    args = parse_args()
    register_all_modules()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    cfg = generator_config(args)
    gflops = count_flops(cfg)
    name = args.arch if args.checkpoint is None else osp.splitext(
        osp.basename(args.checkpoint))[0]
    if args.flops_only:
        result = dict(
            generator=cfg,
            gflops_per_image=gflops,
            network_over_encoder_flops=gflops['network'] / gflops['encoder'])
        print(f'GFLOPs per image: network {gflops["network"]:.4g}, encoder '
              f'{gflops["encoder"]:.4g}, ratio '
              f'{result["network_over_encoder_flops"]:.3f}')
        write(
            result, args.out
            or osp.join(REPO, 'benchmarks', 'results',
                        f'generation_speed_{name}_flops.json'))
        return
    images, prompts, num_classes = load_images(args.dataset, args.images)
    with tempfile.TemporaryDirectory() as folder:
        method = build_generator(args, cfg, folder)
    seconds, memory = time_generator(args, method, images, prompts)
    ratios = dict(
        generate_over_encoder=seconds['generate'] / seconds['encoder'],
        network_over_encoder=seconds['network'] / seconds['encoder'],
        network_over_encoder_flops=gflops['network'] / gflops['encoder'])
    em_settings = None
    if args.em_images:
        seconds['em'], memory['em'], em_settings = time_em(
            args, images, prompts, num_classes)
        ratios['generator_vs_em_speedup'] = seconds['em'] / seconds['generate']
    result = dict(
        generator=dict(
            cfg,
            checkpoint=args.checkpoint or 'random init',
            precision=args.precision,
            channels_last=args.channels_last,
            compile=args.compile),
        em=em_settings,
        dataset=osp.relpath(osp.abspath(args.dataset), REPO),
        images=len(images),
        image_sizes=sorted({f'{i.shape[1]}x{i.shape[0]}'
                            for i in images}),
        batch_size=args.batch_size,
        device=args.device,
        repeats=args.repeats,
        seconds_per_image=seconds,
        images_per_second={
            k: 1 / v
            for k, v in seconds.items()
        },
        peak_memory_mb={
            k: round(v.peak_mb, 1)
            for k, v in memory.items()
        },
        added_memory_mb={
            k: round(v.added_mb, 1)
            for k, v in memory.items()
        },
        memory_kind='cuda max_memory_allocated'
        if torch.device(args.device).type == 'cuda' else 'process RSS',
        gflops_per_image=gflops,
        ratios=ratios,
        targets=dict(
            generator_vs_em_speedup='>= 100', generate_over_encoder='<= 1.2'),
        machine=machine(args.device))
    print_table(result)
    options = [
        args.precision if args.precision != 'fp32' else '',
        'channels-last' if args.channels_last else '',
        'compile' if args.compile else ''
    ]
    suffix = ''.join(f'_{option}' for option in options if option)
    write(
        result, args.out or osp.join(
            REPO, 'benchmarks', 'results', f'generation_speed_{name}_'
            f'{torch.device(args.device).type}{suffix}.json'))


def print_table(result):
    rows = [('UnSeg generator (generate)', 'generate'),
            ('  its network alone', 'network'),
            ('  its SAM image encoder (floor)', 'encoder'),
            ('sample-wise EM (PGD min-min)', 'em')]
    print(f'{result["images"]} images {", ".join(result["image_sizes"])}, '
          f'generator input {result["generator"]["img_size"]}, '
          f'{result["device"]}, {result["machine"]}')
    print(f'| path | images/s | ms/image | peak MB {result["memory_kind"]} '
          '(added) |\n|---|---|---|---|')
    for label, key in rows:
        if key not in result['seconds_per_image']:
            continue
        print(f'| {label} | {result["images_per_second"][key]:.3g} | '
              f'{1000 * result["seconds_per_image"][key]:.3g} | '
              f'{result["peak_memory_mb"][key]:.0f} '
              f'(+{result["added_memory_mb"][key]:.0f}) |')
    ratios = result['ratios']
    if 'generator_vs_em_speedup' in ratios:
        print(f'generator vs EM: {ratios["generator_vs_em_speedup"]:.0f}x '
              'faster (target >= 100x)')
    print(f'generator / encoder time: {ratios["generate_over_encoder"]:.2f} '
          f'(network alone {ratios["network_over_encoder"]:.2f}; FLOPs '
          f'{ratios["network_over_encoder_flops"]:.2f}; target <= 1.2)')


if __name__ == '__main__':
    main()
