import glob
import hashlib
import os.path as osp
import shutil

import numpy as np
import pytest

from mmunseg.models.budget import Budget, budget_levels
from mmunseg.protect import (ProtectItem, Protector, UniformNoise,
                             UnSegGenerator, load_manifest, read_image, shard)
from tests.utils import data_path, save_micro_generator

BUDGET = Budget(8 / 255, 2 / 255)


@pytest.fixture
def camvid(tmp_path):
    """Six real CamVid images with annotations, copied to tmp_path so the
    test can also plant a corrupt image beside them."""
    root = data_path('camvid')
    names = sorted(
        osp.basename(p)[:-4]
        for p in glob.glob(osp.join(root, 'img_dir', 'train', '*.jpg')))[:6]
    src = tmp_path / 'camvid'
    for name in names:
        for sub, ext in (('img_dir', '.jpg'), ('ann_dir', '.png')):
            target = src / sub / 'train'
            target.mkdir(parents=True, exist_ok=True)
            shutil.copy(
                osp.join(root, sub, 'train', name + ext),
                target / (name + ext))
    return src, names


def items_of(src, names):
    return [
        ProtectItem(
            img_path=str(src / 'img_dir' / 'train' / f'{n}.jpg'),
            root=str(src),
            seg_map_path=str(src / 'ann_dir' / 'train' / f'{n}.png'))
        for n in names
    ]


@pytest.fixture(scope='module')
def generator_checkpoint(tmp_path_factory):
    return save_micro_generator(
        tmp_path_factory.mktemp('ckpt') / 'generator.pth')


def tree_hash(folder):
    digest = hashlib.sha256()
    for path in sorted(glob.glob(osp.join(folder, '**', '*'), recursive=True)):
        digest.update(path.encode())
        if osp.isfile(path):
            digest.update(open(path, 'rb').read())
    return digest.hexdigest()


def protect(method, src, names, out_dir, **kwargs):
    protector = Protector(method, str(out_dir), BUDGET, **kwargs)
    manifest = str(out_dir / 'manifest.jsonl')
    protector.run(items_of(src, names), manifest, show_progress=False)
    return protector, load_manifest(manifest)


def test_bound_holds_per_region_after_png_round_trip(camvid, tmp_path,
                                                     generator_checkpoint):
    src, names = camvid
    before = tree_hash(str(src))
    method = UnSegGenerator(generator_checkpoint)
    protector, records = protect(method, src, names, tmp_path / 'out')
    assert tree_hash(str(src)) == before  # the source is untouched
    assert len(records) == len(names)
    for item in items_of(src, names):
        record = records[osp.relpath(
            protector.output_file(item), str(tmp_path / 'out'))]
        assert record['status'] == 'protected'
        clean = read_image(item.img_path)
        protected = read_image(protector.output_file(item))
        objects = item.objects()
        mask = np.zeros(clean.shape[:2], bool)
        for m in objects.values():
            mask |= m
        diff = np.abs(protected.astype(int) - clean.astype(int)).max(-1)
        assert diff[mask].max() <= budget_levels(BUDGET.object) == 8
        if (~mask).any():
            assert diff[~mask].max() <= budget_levels(BUDGET.background) == 2
        assert record['linf_object'] == diff[mask].max()
        assert diff.max() > 0  # something was added
        assert record['psnr'] > 30 and 0.5 < record['ssim'] <= 1


def test_corrupt_image_is_skipped_and_reported(camvid, tmp_path):
    src, names = camvid
    bad = src / 'img_dir' / 'train' / 'broken.jpg'
    bad.write_bytes(b'\xff\xd8 not a jpeg')
    shutil.copy(src / 'ann_dir' / 'train' / f'{names[0]}.png',
                src / 'ann_dir' / 'train' / 'broken.png')
    _, records = protect(UniformNoise(), src, names[:2] + ['broken'],
                         tmp_path / 'out')
    failed = [r for r in records.values() if r['status'] == 'failed']
    assert len(failed) == 1 and 'broken.jpg' in failed[0]['error']
    assert 'cannot decode' in failed[0]['error']
    assert sum(r['status'] == 'protected' for r in records.values()) == 2


def test_mismatched_annotation_size_is_reported(camvid, tmp_path):
    import cv2
    src, names = camvid
    ann = src / 'ann_dir' / 'train' / f'{names[0]}.png'
    cv2.imwrite(str(ann), np.zeros((10, 10), np.uint8))
    _, records = protect(UniformNoise(), src, names[:1], tmp_path / 'out')
    (record, ) = records.values()
    assert record['status'] == 'failed'
    assert '10x10' in record['error'] and names[0] in record['error']


def test_resume_after_a_kill_gives_the_same_result(camvid, tmp_path,
                                                   generator_checkpoint):
    src, names = camvid
    method = UnSegGenerator(generator_checkpoint)
    full, _ = protect(method, src, names, tmp_path / 'full')
    # A killed run: the first two images done, a partial manifest line.
    killed = tmp_path / 'killed'
    part, _ = protect(method, src, names[:2], killed)
    with open(killed / 'manifest.jsonl', 'a') as f:
        f.write('{"file": "img_dir/train/trunc')
    with pytest.raises(FileExistsError, match='--resume'):
        protect(method, src, names, killed)
    resumed = Protector(method, str(killed), BUDGET, resume=True)
    done = load_manifest(str(killed / 'manifest.jsonl'))
    counts = resumed.run(
        items_of(src, names),
        str(killed / 'manifest.jsonl'),
        done=done,
        show_progress=False)
    assert counts == {'protected': len(names) - 2}
    for item in items_of(src, names):
        assert np.array_equal(
            read_image(full.output_file(item)),
            read_image(resumed.output_file(item)))
    assert len(load_manifest(str(killed / 'manifest.jsonl'))) == len(names)


def test_empty_mask_copies_pixels_unchanged(camvid, tmp_path):
    import cv2
    src, names = camvid
    ann = src / 'ann_dir' / 'train' / f'{names[0]}.png'
    shape = read_image(str(src / 'img_dir' / 'train' / f'{names[0]}.jpg'))
    cv2.imwrite(str(ann), np.full(shape.shape[:2], 255, np.uint8))
    protector, records = protect(UniformNoise(), src, names[:1],
                                 tmp_path / 'out')
    (record, ) = records.values()
    assert record['status'] == 'copied_empty_mask'
    item = items_of(src, names[:1])[0]
    assert np.array_equal(
        read_image(item.img_path), read_image(protector.output_file(item)))


@pytest.mark.parametrize('mode', ['per-class', 'box', 'points'])
def test_prompt_modes_respect_the_bound(camvid, tmp_path, mode,
                                        generator_checkpoint):
    src, names = camvid
    method = UnSegGenerator(generator_checkpoint)
    _, records = protect(
        method, src, names[:2], tmp_path / mode, prompt_mode=mode)
    for record in records.values():
        assert record['status'] == 'protected'
        assert record['linf_object'] <= 8 and record['linf_background'] <= 2


def test_jpeg_output_is_checked_on_the_decoded_file(camvid, tmp_path):
    src, names = camvid
    _, records = protect(
        UniformNoise(), src, names[:1], tmp_path / 'jpg', fmt='jpg')
    (record, ) = records.values()
    assert record['file'].endswith('.jpg')
    assert record['linf_object'] is not None


def test_sharding_covers_every_item_once():
    items = list(range(23))
    shards = [shard(items, rank, 4) for rank in range(4)]
    assert sorted(sum(shards, [])) == items


def test_bad_options_are_rejected():
    with pytest.raises(ValueError, match='prompt mode'):
        Protector(
            UniformNoise(), '/tmp/x', Budget(0.1, 0.1), prompt_mode='all')
    with pytest.raises(ValueError, match='object budget'):
        Protector(UniformNoise(), '/tmp/x', dict(object=8, background=2))


def test_noise_transforms_reproduce_the_protected_copy(camvid, tmp_path,
                                                       generator_checkpoint):
    from mmunseg.datasets import AddUnlearnableNoise
    from mmunseg.protect import GenerateUnlearnableNoise
    src, names = camvid
    method = UnSegGenerator(generator_checkpoint)
    out = tmp_path / 'out'
    protector = Protector(method, str(out), BUDGET, save_noise=True)
    protector.run(
        items_of(src, names[:2]), str(out / 'm.jsonl'), show_progress=False)
    stored = AddUnlearnableNoise(str(out / 'noise'), str(src))
    on_the_fly = GenerateUnlearnableNoise(generator_checkpoint)
    assert GenerateUnlearnableNoise(
        generator_checkpoint,
        budget=dict(object=4 / 255,
                    background=1 / 255)).budget == Budget.preset('medical')
    for item in items_of(src, names[:2]):
        clean_bgr = read_image(item.img_path)[..., ::-1].copy()
        expected = read_image(protector.output_file(item))
        added = stored(dict(img=clean_bgr.copy(), img_path=item.img_path))
        assert np.array_equal(added['img'][..., ::-1], expected)
        generated = on_the_fly(
            dict(
                img=clean_bgr.copy(),
                img_path=item.img_path,
                gt_seg_map=item.read_label_map()))
        # Same noise up to float differences of a batched forward pass.
        diff = np.abs(generated['img'][..., ::-1].astype(int) - expected)
        assert diff.max() <= 1 and (diff > 0).mean() < 0.01
    with pytest.raises(FileNotFoundError, match='no stored noise'):
        stored(dict(img=clean_bgr, img_path=str(src / 'other.jpg')))


def test_prompts_carry_the_class_of_every_object_pixel():
    from mmunseg.protect.objects import class_map
    from mmunseg.protect.protector import prompts_for
    sky = np.zeros((4, 6), bool)
    sky[:2] = True
    car = np.zeros((4, 6), bool)
    car[3, :2] = True
    objects = {'class_0': sky, 'instance_1_class_8': car}
    object_mask = sky | car
    labels = class_map(objects, object_mask.shape)
    assert (labels[sky] == 0).all() and (labels[car] == 8).all()
    assert (labels[~object_mask] == -1).all()
    for mode in ('union', 'box', 'points'):
        (_, prompt), = prompts_for(mode, objects, object_mask, 'a.png')
        np.testing.assert_array_equal(prompt.labels, labels)
        (_, prompt), = prompts_for(
            mode, objects, object_mask, 'a.png', class_labels=False)
        assert prompt.labels is None


def test_the_class_map_is_made_only_for_methods_that_read_it(camvid):
    """An (H, W) int64 map per image costs its load stage and its crossing
    to the main process: methods that do not read it do not get it."""
    from mmunseg.protect.baselines.synthetic import SyntheticNoise
    from mmunseg.protect.protector import Loaded, load_item
    src, names = camvid
    item = items_of(src, names[:1])[0]
    for method, made in ((UniformNoise(), False), (SyntheticNoise(), True)):
        spec = Protector(method, '/tmp/unused', BUDGET).spec
        loaded = load_item(spec, item)
        assert isinstance(loaded, Loaded)
        (_, prompt), = loaded.calls
        assert (prompt.labels is not None) is made


def test_constant_shift_control_brightens_each_region_by_its_budget(
        camvid, tmp_path):
    from mmunseg.protect.controls import ConstantShift
    from mmunseg.protect.image_io import read_image
    src, names = camvid
    out = tmp_path / 'out'
    _, records = protect(ConstantShift(1.0), src, names[:2], out)
    for record in records.values():
        assert record['linf_object'] == 8 and record['linf_background'] <= 2
        clean = read_image(record['source']).astype(int)
        shifted = read_image(str(out / record['file'])).astype(int)
        # +8 wherever the clean pixel has room (void pixels get +2).
        room = clean <= 255 - 8
        assert np.isin((shifted - clean)[room], [2, 8]).all()
    with pytest.raises(ValueError, match='in \\[-1, 1\\]'):
        ConstantShift(2.0)
