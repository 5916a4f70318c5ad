"""Read the config text stored in an MMEngine checkpoint without running it.

``Config.fromstring`` executes Python; a checkpoint is untrusted input, so its
``meta['cfg']`` (MMEngine's ``pretty_text``: assignments of ``dict(...)``
calls and literals) is evaluated here with an allow-list of node types.
"""
import ast


class UnsafeConfigText(ValueError):
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
