"""Task definitions in lm-eval's YAML format, read for ftbench's own engine.

The same files run in lm-eval (`lm_eval --include_path tasks --tasks gsm8k_local`) and here
(`load_task("gsm8k_local")`). Supported: single tasks with `output_type: generate_until`; `include`;
`!function file.name` hooks (resolved next to the YAML, as lm-eval does); Jinja2 templates rendered
exactly as lm-eval renders them; lm-eval's own filter and metric code for scoring one response.
Groups, tags and promptsource prompts are lm-eval-only.

Where a name is looked up: the folders in ``include_path``, else ``$FTBENCH_TASKS_PATH`` (os.pathsep
separated), ``./tasks`` and the ``tasks/`` folder of an ftbench source checkout. Relative
``data_files`` resolve against the current directory, as in lm-eval.
"""

from __future__ import annotations

import importlib.util
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from ftbench.api.errors import InputError, UsageError
from ftbench.data.bundled import tasks_dir

_TEMPLATE_ENV = None
# `datasets` builders whose data_files ftbench reads itself (the same rows datasets would give)
LOCAL_BUILDERS = ("json", "jsonl", "parquet", "arrow", "csv", "text")


def render_template(template: str, doc: dict) -> str:
    """lm-eval's `utils.apply_template`: Jinja2, StrictUndefined, trailing newline kept, `regex_replace`."""
    global _TEMPLATE_ENV
    if _TEMPLATE_ENV is None:
        from jinja2 import BaseLoader, Environment, StrictUndefined

        _TEMPLATE_ENV = Environment(loader=BaseLoader, undefined=StrictUndefined, keep_trailing_newline=True)
        _TEMPLATE_ENV.filters["regex_replace"] = lambda s, pattern, repl, count=0: re.sub(pattern, repl, s, count=count)
    return _TEMPLATE_ENV.from_string(template).render(**doc)


class FunctionRef:
    """A `!function module.name` hook, imported from the YAML's folder on first call."""

    def __init__(self, base_dir: Path, qualname: str):
        self.base_dir, self.qualname, self._fn = base_dir, qualname, None

    def __call__(self, *args, **kwargs):
        if self._fn is None:
            module_name, _, fn_name = self.qualname.rpartition(".")
            file = self.base_dir / (module_name.replace(".", os.sep) + ".py")
            if not file.is_file():
                raise InputError(f"{file}: not found (named by '!function {self.qualname}')")
            spec = importlib.util.spec_from_file_location(f"ftbench_task_hooks.{module_name}.{id(self)}", file)
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            if not hasattr(module, fn_name):
                raise InputError(f"{file}: has no function {fn_name!r} (named by '!function {self.qualname}')")
            self._fn = getattr(module, fn_name)
        return self._fn(*args, **kwargs)

    def __repr__(self) -> str:
        return f"!function {self.qualname}"


def read_task_yaml(path: Path) -> dict:
    """A task YAML with `include`s merged (local keys win, as in lm-eval) and `!function` hooks kept lazy."""
    import yaml

    path = path.resolve()

    class Loader(yaml.SafeLoader):
        pass

    Loader.add_constructor("!function", lambda loader, node: FunctionRef(path.parent, loader.construct_scalar(node)))
    from ftbench.data.yamlfile import compose_yaml, construct

    node = compose_yaml(str(path), Loader, what="task YAML")  # SafeLoader plus one tag; aliases within a budget
    cfg = None if node is None else construct(str(path), node, Loader)
    if not isinstance(cfg, dict):
        raise InputError(f"{path}: a task file holds a mapping (task: ..., dataset_path: ...)")
    includes = cfg.pop("include", None)
    if includes is None:
        return cfg
    merged: dict = {}
    for inc in includes if isinstance(includes, list) else [includes]:
        inc_path = Path(inc) if Path(inc).is_absolute() else path.parent / inc
        if not inc_path.is_file():
            raise InputError(f"{path}: include {inc!r} not found (looked for {inc_path})")
        merged.update(read_task_yaml(inc_path))
    merged.update(cfg)
    return merged


@dataclass
class TaskSpec:
    """One generate_until task: how to build prompts, where the documents are, how to score a response."""

    name: str
    path: Path
    config: dict[str, Any]
    _filters: list | None = field(default=None, repr=False)

    # --- what an engine needs -------------------------------------------------------------------------
    @property
    def num_fewshot(self) -> int:
        return int(self.config.get("num_fewshot") or 0)

    @property
    def test_split(self) -> str | None:
        return self.config.get("test_split") or self.config.get("validation_split")

    @property
    def fewshot_split(self) -> str | None:
        return (
            self.config.get("fewshot_split") or self.config.get("training_split") or self.config.get("validation_split")
        )

    @property
    def generation_kwargs(self) -> dict[str, Any]:
        return dict(self.config.get("generation_kwargs") or {})

    @property
    def until(self) -> list[str]:
        """Stop strings; lm-eval's default when the YAML gives none is the fewshot delimiter."""
        until = self.generation_kwargs.get("until") or [self.fewshot_delimiter]
        return [until] if isinstance(until, str) else list(until)

    @property
    def target_delimiter(self) -> str:
        return self.config.get("target_delimiter", " ")

    @property
    def fewshot_delimiter(self) -> str:
        return self.config.get("fewshot_delimiter", "\n\n")

    @property
    def filters(self) -> list[dict[str, Any]]:
        """lm-eval's filter_list: [{"name": ..., "filter": [{"function": ..., **kwargs}, ...]}]."""
        return list(self.config.get("filter_list") or [{"name": "none", "filter": [{"function": "take_first"}]}])

    @property
    def metrics(self) -> list[dict[str, Any]]:
        return list(self.config.get("metric_list") or [])

    def doc_to_text(self, doc: dict) -> str:
        return self._resolve(self.config.get("doc_to_text"), doc)

    def doc_to_target(self, doc: dict) -> str:
        return self._resolve(self.config.get("doc_to_target"), doc)

    def _resolve(self, spec, doc: dict):
        # lm-eval: an int is returned as is, a field name gives the field, a callable is called, else a template
        if isinstance(spec, int) or spec is None:
            return spec
        if callable(spec):
            return spec(doc)
        if spec in doc:
            return doc[spec]
        return render_template(spec, doc)

    def fewshot_context(self, doc: dict, examples: Sequence[dict] = (), description: str = "") -> str:
        """The plain-text prompt lm-eval builds (no chat template): description, then each example as
        text + target_delimiter + target + fewshot_delimiter, then this document's text. Which examples:
        lm-eval samples ``num_fewshot`` documents of ``fewshot_split`` with its own seeded sampler."""
        prefix = description  # lm-eval 0.4.13 puts nothing between the description and the first example
        shots = "".join(
            self.doc_to_text(ex) + self.target_delimiter + str(self.doc_to_target(ex)) + self.fewshot_delimiter
            for ex in examples
        )
        return prefix + shots + self.doc_to_text(doc)

    def docs(self, split: str | None = None) -> list[dict]:
        """The documents of a split (default: the test split): local files (JSON, JSON Lines, Parquet, Arrow, CSV,
        text) read directly by ftbench's reader, anything else through `datasets.load_dataset` (imported only
        then)."""
        split = split or self.test_split
        path, kwargs = self.config.get("dataset_path"), dict(self.config.get("dataset_kwargs") or {})
        data_files = kwargs.get("data_files")
        if path in LOCAL_BUILDERS and isinstance(data_files, dict):
            if split not in data_files:
                raise UsageError(f"{self.path}: no data_files entry for split {split!r} (has: {', '.join(data_files)})")
            docs = self._read_local(data_files[split], split)
        else:
            import datasets

            docs = list(datasets.load_dataset(path, self.config.get("dataset_name"), split=split, **kwargs))
        process_docs = self.config.get("process_docs")
        return list(process_docs(docs)) if callable(process_docs) else docs

    def _read_local(self, files, split: str) -> list[dict]:
        from ftbench.api.findings import Finding
        from ftbench.data.reader import read_records

        docs: list[dict] = []
        for name in files if isinstance(files, list) else [files]:
            if not os.path.isfile(name):
                raise UsageError(
                    f"{self.path}: data_files.{split} {name!r} not found — relative paths resolve "
                    f"against the current directory ({os.getcwd()}), as in lm-eval: run from the "
                    "repository root or use an absolute path"
                )
            findings: list[Finding] = []
            docs += [r.value for r in read_records(name, findings)]
            errors = [f for f in findings if f.severity == "error" and f.code != "utf8-bom"]
            if errors:
                raise InputError(errors[0].one_line())
        return docs

    # --- scoring one response, with lm-eval's own filters and metrics -----------------------------------
    def apply_filters(self, response: str, doc: dict | None = None) -> dict[str, Any]:
        """filter name -> the filtered response, each pipeline built from lm-eval's filter registry."""
        if self._filters is None:
            import lm_eval.filters  # noqa: F401  (registers lm-eval's filters)
            from lm_eval.api.registry import get_filter

            self._filters = [
                (
                    f["name"],
                    [
                        (get_filter(step["function"]), {k: v for k, v in step.items() if k != "function"})
                        for step in f["filter"]
                    ],
                )
                for f in self.filters
            ]
        out = {}
        for name, steps in self._filters:
            resps: Any = [[response]]
            for filter_cls, kwargs in steps:
                resps = list(filter_cls(**kwargs).apply(resps, [doc]))
            out[name] = resps[0]
        return out

    def process_results(self, doc: dict, response: str) -> dict[str, Any]:
        """``"metric,filter" -> value`` for one response, as lm-eval's ConfigurableTask computes it."""
        hook = self.config.get("process_results")
        out: dict[str, Any] = {}
        for filter_name, filtered in self.apply_filters(response, doc).items():
            if callable(hook):
                values = hook(doc, [filtered])
            else:
                values = {}
                gold = self.doc_to_target(doc)
                gold = type(filtered)(gold) if not isinstance(gold, type(filtered)) else gold
                for metric in self.metrics:
                    values[metric["metric"]] = _metric_value(metric, gold, filtered)
            out.update({f"{k},{filter_name}": v for k, v in values.items()})
        return out


def _metric_value(metric: dict, gold, result):
    from lm_eval.api.registry import get_metric

    fn = get_metric(metric["metric"])
    kwargs = {k: v for k, v in metric.items() if k not in ("metric", "aggregation", "higher_is_better", "hf_evaluate")}
    value = fn(references=[gold], predictions=[result], **kwargs)
    return value[metric["metric"]] if isinstance(value, dict) else value


def task_paths(include_path: str | Path | Sequence[str | Path] | None = None) -> list[Path]:
    """The folders searched for task names, in priority order."""
    if include_path is not None:
        paths = [include_path] if isinstance(include_path, (str, Path)) else list(include_path)
    else:
        env = os.environ.get("FTBENCH_TASKS_PATH", "")
        paths = [p for p in env.split(os.pathsep) if p]
        paths += ["tasks", tasks_dir()]
    out: list[Path] = []
    for p in paths:
        p = Path(p).resolve()
        if p.is_dir() and p not in out:
            out.append(p)
    return out


def list_tasks(include_path=None) -> dict[str, Path]:
    """task name -> YAML file, first folder wins."""
    found: dict[str, Path] = {}
    for folder in task_paths(include_path):
        for yaml_path in sorted(folder.glob("**/*.yaml")):
            try:
                cfg = read_task_yaml(yaml_path)
            except (InputError, OSError):
                continue  # a broken file is reported when it is asked for by path
            name = cfg.get("task")
            if isinstance(name, str) and name not in found:
                found[name] = yaml_path
    return found


def load_task(name_or_path: str | Path, include_path=None) -> TaskSpec:
    """A task by name (see `task_paths`) or by YAML path."""
    path = Path(name_or_path)
    if not (path.suffix in (".yaml", ".yml") and path.is_file()):
        tasks = list_tasks(include_path)
        if str(name_or_path) not in tasks:
            where = ", ".join(str(p) for p in task_paths(include_path)) or "no task folder found"
            known = ", ".join(sorted(tasks)) or "none"
            raise UsageError(f"no task {str(name_or_path)!r} in {where} (known: {known})")
        path = tasks[str(name_or_path)]
    cfg = read_task_yaml(path)
    if "group" in cfg or not isinstance(cfg.get("task"), str):
        raise InputError(f"{path}: not a single task (group files are lm-eval-only)")
    output_type = cfg.get("output_type", "generate_until")
    if output_type != "generate_until":
        raise InputError(f"{path}: output_type {output_type!r} — ftbench runs generate_until tasks only")
    return TaskSpec(cfg["task"], path.resolve(), cfg)
