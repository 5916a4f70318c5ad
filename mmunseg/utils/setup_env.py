from mmengine.registry import init_default_scope


def register_all_modules(init_default_scope_to_mmunseg=True):
    """Import every module that registers into mmunseg's registries.

    Args:
        init_default_scope_to_mmunseg (bool): Also set the default scope to
            ``mmunseg``, as ``default_scope='mmunseg'`` does in a config.
    """
    import mmunseg.datasets  # noqa: F401
    import mmunseg.engine  # noqa: F401
    import mmunseg.evaluation  # noqa: F401
    import mmunseg.models  # noqa: F401
    import mmunseg.protect  # noqa: F401
    if init_default_scope_to_mmunseg:
        init_default_scope('mmunseg')
