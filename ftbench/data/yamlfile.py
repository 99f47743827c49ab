"""YAML files users write (training configs, task files), composed with limits before anything is built from them:
aliases may not expand past a small budget (an "alias bomb" of a few hundred bytes otherwise becomes gigabytes in
an error message or a run_config.json), and special files are refused before reading."""

from __future__ import annotations

from ftbench.api.errors import InputError
from ftbench.data.reader import read_small_file

MAX_YAML_NODES = 100_000  # values after expanding every alias; a LLaMA-Factory config has about a hundred


def compose_yaml(path: str, loader_class=None, *, what: str = "YAML file"):
    """The root node of a YAML file (None if empty). Syntax errors, undecodable bytes and alias expansion past
    MAX_YAML_NODES raise InputError with file:line:column."""
    import yaml

    loader_class = loader_class or yaml.SafeLoader
    data = read_small_file(path, what)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise InputError(f"{path}: not UTF-8 text (byte {e.start})") from None
    try:
        node = yaml.compose(text, Loader=loader_class)
    except yaml.YAMLError as e:
        raise InputError(yaml_error(path, e)) from None
    if node is not None:
        _check_expansion(path, node)
    return node


def construct(path: str, node, loader_class=None):
    """The Python value of a composed node (its syntax already checked), with errors located."""
    import yaml

    loader = (loader_class or yaml.SafeLoader)("")
    try:
        return loader.construct_document(node)
    except yaml.YAMLError as e:
        raise InputError(yaml_error(path, e)) from None


def _check_expansion(path: str, root) -> None:
    """Count the values the document holds with every alias expanded, stopping at the budget (so a bomb, or an
    alias inside its own anchor, costs MAX_YAML_NODES steps, not its expansion)."""
    import yaml

    count, stack = 1, [root]
    while stack:
        node = stack.pop()
        if isinstance(node, yaml.MappingNode):
            children = [n for pair in node.value for n in pair]
        elif isinstance(node, yaml.SequenceNode):
            children = node.value
        else:
            continue
        count += len(children)
        if count > MAX_YAML_NODES:
            mark = node.start_mark
            raise InputError(
                f"{path}:{mark.line + 1}:{mark.column + 1}: YAML aliases (*name) expand to more than "
                f"{MAX_YAML_NODES:,} values: write the values out, or use fewer aliases"
            )
        stack.extend(children)


def yaml_error(path: str, e) -> str:
    mark = getattr(e, "problem_mark", None) or getattr(e, "context_mark", None)
    where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark is not None else path
    problem = getattr(e, "problem", None) or str(e).splitlines()[0]
    context = getattr(e, "context", None)
    return f"{where}: YAML syntax error: {problem}" + (f" ({context})" if context else "")
