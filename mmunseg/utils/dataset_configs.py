"""Walking dataset configs through their wrappers.

A dataset config may wrap others: ``dataset`` (RepeatDataset,
ClassBalancedDataset, MultiImageMixDataset, PartiallyProtectedDataset, ...)
or a ``datasets`` list (ConcatDataset). Every walk over such a config, and
the one guess of the scope its types and pipeline are built in, is here.
"""


def children(dataset_cfg):
    """The dataset configs a wrapper config wraps, in order (none for a
    leaf): its ``dataset``, then its ``datasets``."""
    inner = dataset_cfg.get('dataset')
    found = [inner] if isinstance(inner, dict) else []
    return found + [
        child for child in dataset_cfg.get('datasets') or ()
        if isinstance(child, dict)
    ]


def dataset_nodes(dataset_cfg):
    """Every dataset config in ``dataset_cfg``, wrappers first (pre-order);
    nothing for a value that is not a dict."""
    if not isinstance(dataset_cfg, dict):
        return
    yield dataset_cfg
    for child in children(dataset_cfg):
        yield from dataset_nodes(child)


def leaf_datasets(dataset_cfg):
    """The configs of the datasets that hold the samples, in order (the
    nodes themselves, so that a caller may change them in place)."""
    for node in dataset_nodes(dataset_cfg):
        if not children(node):
            yield node


def dataset_pipelines(dataset_cfg):
    """Every pipeline (list of transform configs) in a dataset config,
    wrappers' own pipelines included."""
    for node in dataset_nodes(dataset_cfg):
        if isinstance(node.get('pipeline'), list):
            yield node['pipeline']


def map_leaves(dataset_cfg, update):
    """A copy of a dataset config whose leaves are ``update(leaf)``; the
    wrappers are copied (shallowly), the input is not changed.

    Args:
        dataset_cfg (dict): A dataset config.
        update (Callable): Leaf config -> its replacement, called on the
            leaves in order.

    Returns:
        dict
    """
    if not children(dataset_cfg):
        return update(dataset_cfg)
    dataset_cfg = dict(dataset_cfg)
    if isinstance(dataset_cfg.get('dataset'), dict):
        dataset_cfg['dataset'] = map_leaves(dataset_cfg['dataset'], update)
    if dataset_cfg.get('datasets'):
        dataset_cfg['datasets'] = [
            map_leaves(child, update) for child in dataset_cfg['datasets']
        ]
    return dataset_cfg


def dataset_scope(dataset_cfg):
    """The scope a dataset config names for itself: its ``_scope_``, else
    the prefix of the first dotted ``type`` from the top down to its first
    leaf (``mmdet.CocoDataset`` -> ``mmdet``).

    Its pipeline's transforms carry no prefix and must be built in this
    scope.

    Args:
        dataset_cfg (dict): A dataset config.

    Returns:
        str | None: The scope, or None when the config names none.
    """
    if dataset_cfg.get('_scope_'):
        return dataset_cfg['_scope_']
    node = dataset_cfg
    while True:
        scope, dot, _ = str(node.get('type', '')).partition('.')
        if dot:
            return scope
        inner = children(node)
        if not inner:
            return None
        # A wrapper is built in the scope of its first dataset.
        node = inner[0]
