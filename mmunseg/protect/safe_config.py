"""Reading configs from untrusted files without letting them choose code.

A checkpoint is untrusted input, and so is every file a tool reads back. Two
ways such content could run code are closed here:

- ``Config.fromstring`` executes Python; a checkpoint's ``meta['cfg']``
  (MMEngine's ``pretty_text``: assignments of ``dict(...)`` calls and
  literals) is evaluated by :func:`parse_config_text` with an allow-list of
  node types instead.
- MMEngine's registries build any importable dotted ``type`` (for example
  ``torch.hub.load``) and honour a ``_scope_`` key; :func:`check_own_types`
  accepts only the names registered in mmunseg's own registries.
"""
import ast

from mmengine.registry import Registry

import mmunseg.registry


class UnsafeConfig(ValueError):
    """A config read from a file names code outside mmunseg's registries."""


class UnsafeConfigText(UnsafeConfig):
    """The text holds something other than literals and ``dict(...)``."""


def _evaluate(node):
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, (ast.List, ast.Tuple)):
        values = [_evaluate(element) for element in node.elts]
        return values if isinstance(node, ast.List) else tuple(values)
    if isinstance(node, ast.Dict):
        return {
            _evaluate(key): _evaluate(value)
            for key, value in zip(node.keys, node.values)
        }
    if isinstance(node, ast.Call) and isinstance(
            node.func, ast.Name) and node.func.id == 'dict' and not node.args:
        return {kw.arg: _evaluate(kw.value) for kw in node.keywords}
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        return -_evaluate(node.operand)
    if isinstance(node, ast.Name) and node.id in ('True', 'False', 'None'):
        return {'True': True, 'False': False, 'None': None}[node.id]
    raise UnsafeConfigText(
        f'unsupported expression at line {getattr(node, "lineno", "?")}: '
        f'{ast.dump(node)[:80]}')


def parse_config_text(text):
    """Evaluate ``name = value`` lines of literal config text into a dict."""
    tree = ast.parse(text)
    config = {}
    for statement in tree.body:
        if not (isinstance(statement, ast.Assign) and len(statement.targets)
                == 1 and isinstance(statement.targets[0], ast.Name)):
            raise UnsafeConfigText(
                f'line {statement.lineno} is not a plain assignment')
        config[statement.targets[0].id] = _evaluate(statement.value)
    return config


def own_registries():
    """mmunseg's registries, their lazily imported modules registered."""
    registries = [
        value for value in vars(mmunseg.registry).values()
        if isinstance(value, Registry)
    ]
    for registry in registries:
        registry.import_from_location()
    return registries


def _own_name(type_name):
    """``X`` of ``X`` or ``mmunseg.X``; None for any other dotted name."""
    if type_name.startswith('mmunseg.'):
        type_name = type_name[len('mmunseg.'):]
    return None if '.' in type_name else type_name


def check_own_types(cfg, source, top_level=None):
    """Refuse a config that could build anything but mmunseg's modules.

    Every ``type`` in ``cfg`` (at any depth, in dicts, lists and tuples) must
    be a string naming a module registered in one of mmunseg's own
    registries, written ``X`` or ``mmunseg.X``; MMEngine's parents, other
    scopes and dotted import paths are refused, as is a ``_scope_`` other
    than ``mmunseg``.

    Args:
        cfg (dict): The config, as read from the file.
        source (str): Where it was read, for the error message.
        top_level (Registry, optional): The registry ``cfg`` itself is built
            in; its ``type`` must be registered there.

    Raises:
        UnsafeConfig: Naming the file, the offending key path and value.
    """
    registries = own_registries()
    known = set().union(*(registry.module_dict for registry in registries))

    def visit(node, where):
        if isinstance(node, (list, tuple)):
            for index, child in enumerate(node):
                visit(child, f'{where}[{index}]')
            return
        if not isinstance(node, dict):
            return
        scope = node.get('_scope_', 'mmunseg')
        if scope != 'mmunseg':
            raise UnsafeConfig(
                f'{source}: {where}._scope_ is {scope!r}; a config read '
                'from a file may only use the mmunseg scope')
        if 'type' in node:
            value = node['type']
            name = _own_name(value) if isinstance(value, str) else None
            if name is None or name not in known:
                raise UnsafeConfig(
                    f'{source}: {where}.type is {value!r}, which is not a '
                    'module registered in mmunseg\'s registries; a config '
                    'read from a file may only name those (no dotted paths, '
                    'no other scopes)')
        for key, child in node.items():
            visit(child, f'{where}.{key}')

    visit(cfg, 'cfg')
    if top_level is not None and _own_name(cfg.get(
            'type', '')) not in top_level.module_dict:
        raise UnsafeConfig(f'{source}: cfg.type {cfg.get("type")!r} is not '
                           f'a registered mmunseg {top_level.name}')
