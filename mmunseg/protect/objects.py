"""Object masks of the things to protect, from a dataset's annotations."""
import numpy as np

PROMPT_MODES = ('union', 'per-class', 'per-instance', 'box', 'points',
                'everything')


def semantic_objects(label_map, ignore_index=255, background_ids=()):
    """Per-class object masks of a semantic label map.

    Args:
        label_map (np.ndarray): (H, W) integer labels.
        ignore_index (int): Unlabelled pixels (void), never an object.
        background_ids (Sequence[int]): Classes that are not objects (for
            example ``background`` in VOC or Kvasir).

    Returns:
        dict[int, np.ndarray]: Class id to (H, W) bool mask, classes present.
    """
    skip = {ignore_index, *background_ids}
    return {
        int(label): label_map == label
        for label in np.unique(label_map) if int(label) not in skip
    }


def instance_objects(instances, height, width):
    """Per-instance object masks of COCO-style instances (crowd skipped).

    Args:
        instances (list[dict]): MMDet instances with ``mask`` (polygons or
            RLE), ``bbox_label`` and ``ignore_flag``.
        height (int): Image height.
        width (int): Image width.

    Returns:
        list[tuple[int, np.ndarray]]: (label, (H, W) bool mask) pairs.
    """
    from pycocotools import mask as mask_utils
    objects = []
    for instance in instances:
        if instance.get('ignore_flag', 0) or 'mask' not in instance:
            continue
        segmentation = instance['mask']
        if isinstance(segmentation, list):
            rles = mask_utils.frPyObjects(segmentation, height, width)
            rle = mask_utils.merge(rles)
        elif isinstance(segmentation.get('counts'), list):
            rle = mask_utils.frPyObjects(segmentation, height, width)
        else:
            rle = segmentation
        mask = mask_utils.decode(rle).astype(bool)
        if mask.any():
            objects.append((int(instance.get('bbox_label', -1)), mask))
    return objects


def union(masks, shape):
    """Union of bool masks; an all-False mask of ``shape`` when empty."""
    out = np.zeros(shape, dtype=bool)
    for mask in masks:
        out |= mask
    return out


def class_id(name):
    """The class of an object named ``...class_<id>``; 0 without a class
    (automatic masks)."""
    _, found, label = name.rpartition('class_')
    return int(label) if found and label.isdigit() else 0


def class_map(objects, shape):
    """Class id of every object pixel, -1 elsewhere, from named masks.

    Names end in ``class_<id>`` (semantic or instance objects); objects
    without a class (automatic masks) count as class 0. Later objects
    overwrite earlier ones where they overlap.

    Args:
        objects (dict[str, np.ndarray]): (H, W) bool masks by name.
        shape (tuple[int, int]): (H, W).

    Returns:
        np.ndarray: (H, W) int64.
    """
    labels = np.full(shape, -1, np.int64)
    for name, mask in objects.items():
        labels[mask] = class_id(name)
    return labels
