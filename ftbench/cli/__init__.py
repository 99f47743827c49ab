"""The `ftbench` command line: a thin click group whose commands are imported only when run.

Every command module is loaded lazily so that `ftbench --help` and `ftbench validate` start without
importing torch, transformers, datasets or lm-eval. Errors the user can fix become one line and an exit
code (0 ok, 1 the input has errors, 2 usage or I/O problem, 3 internal error); `--debug` shows tracebacks.
"""

from __future__ import annotations

import os
import sys
import traceback

import click

from ftbench import __version__
from ftbench.api.errors import EXIT_INTERNAL, EXIT_INTERRUPTED, EXIT_USAGE, FtbenchError
from ftbench.api.registry import Registry
from ftbench.cli.options import common_options
from ftbench.cpu_kernels import use_avx2_mkl

# name -> (click command as "module:attribute", one-line help). The help lives here, and only here, so that
# `ftbench --help` imports no command module. Packages add commands through the `ftbench.commands` entry points.
_BUILTIN_COMMANDS: dict[str, tuple[str, str]] = {
    "train-and-compare": (
        "ftbench.cli.train_and_compare:train_and_compare",
        "The main command: evaluate, train LoRA, evaluate again, and write a before/after report.",
    ),
    "sweep": (
        "ftbench.cli.sweep:sweep",
        "Which lever to pull: runs around your config (data size, learning rate, epochs, rank, model) and a verdict.",
    ),
    "compare": ("ftbench.cli.compare:compare", "Compare two prediction files, two run folders, or two metrics.json."),
    "judge": ("ftbench.cli.judge:judge", "A judge model compares two sets of answers pairwise, in both orders."),
    "validate": ("ftbench.cli.validate:validate", "Check SFT data files for every mistake before training."),
    "make-tiny-model": (
        "ftbench.cli.make_tiny_model:make_tiny_model",
        "Build the tiny offline Qwen2-architecture model (random weights) for pipeline runs.",
    ),
    "predict": ("ftbench.cli.predict:predict", "Generate answers for a data file (resumable, batched, greedy)."),
    "train": ("ftbench.cli.train:train", "Train a LoRA adapter from a LLaMA-Factory-style YAML config."),
    "export": ("ftbench.cli.export:export", "Merge a LoRA adapter into its base model (safetensors + tokenizer)."),
    "backends": ("ftbench.cli.backends:backends", "List the installed training backends."),
    "templates": ("ftbench.cli.templates:templates", "List the chat templates (LLaMA-Factory's names) for --template."),
    "score": (
        "ftbench.cli.score:score",
        "Score predictions: LLaMA-Factory BLEU/ROUGE or lm-eval GSM8K, with uncertainty.",
    ),
    "eval": (
        "ftbench.cli.eval:eval",
        "Evaluate a model (and LoRA adapter) on a task YAML, with ftbench's engine or lm-eval's.",
    ),
    "augment": (
        "ftbench.cli.augment:augment",
        "Grow a dataset: fill {{placeholders}}, or generate validated, de-duplicated variants with an LLM.",
    ),
}
COMMANDS: Registry[click.Command] = Registry(
    "command",
    entry_point_group="ftbench.commands",
    builtins={n: target for n, (target, _) in _BUILTIN_COMMANDS.items()},
)
COMMAND_HELP = {name: text for name, (_, text) in _BUILTIN_COMMANDS.items()}


def _debug_requested(args) -> bool:
    argv = sys.argv[1:] if args is None else list(args)
    return "--debug" in argv or os.environ.get("FTBENCH_DEBUG", "") not in ("", "0")


class FtbenchGroup(click.Group):
    """A click group that loads commands lazily and turns every failure into one line and an exit code."""

    def list_commands(self, ctx):
        return COMMANDS.names()

    def get_command(self, ctx, name):
        if name not in COMMANDS:
            return None
        command = COMMANDS.load(name)
        if name in COMMAND_HELP:
            command.short_help = COMMAND_HELP[name]
        return command

    def format_commands(self, ctx, formatter):
        rows = [
            (name, COMMAND_HELP.get(name) or self.get_command(ctx, name).get_short_help_str())
            for name in self.list_commands(ctx)
        ]
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        debug = _debug_requested(args)
        use_avx2_mkl()  # before any command imports torch: MKL reads it at its first call
        try:
            rv = super().main(args, prog_name or "ftbench", complete_var, standalone_mode=False, **extra)
        except click.ClickException as e:  # usage errors: one line, exit 2
            where = f"{e.ctx.command_path}: " if getattr(e, "ctx", None) else "ftbench: "
            hint = ""
            if getattr(e, "ctx", None) is not None:
                hint = f" (see '{e.ctx.command_path} --help')"
            click.echo(f"{where}error: {e.format_message()}{hint}", err=True)
            sys.exit(e.exit_code)
        except click.exceptions.Abort as e:  # click's name for a KeyboardInterrupt in a command
            signum = getattr(e.__cause__, "signum", 2)  # SIGTERM/SIGHUP while a child runs: processes.Stopped
            click.echo("ftbench: aborted" + (f" ({e.__cause__})" if signum != 2 else ""), err=True)
            sys.exit(EXIT_INTERRUPTED)
        except FtbenchError as e:
            if debug:
                traceback.print_exc()
            click.echo(f"ftbench: error: {e}", err=True)
            sys.exit(e.exit_code)
        except KeyboardInterrupt as e:
            signum = getattr(e, "signum", 2)
            click.echo("ftbench: interrupted" + (f" ({e})" if signum != 2 else ""), err=True)
            sys.exit(EXIT_INTERRUPTED)
        except BrokenPipeError:  # `ftbench ... | head`
            sys.stderr.close()
            sys.exit(0)
        except OSError as e:
            if debug:
                traceback.print_exc()
            click.echo(f"ftbench: error: {e.strerror or e}{': ' + str(e.filename) if e.filename else ''}", err=True)
            sys.exit(EXIT_USAGE)
        except Exception as e:  # a bug: still one line unless --debug
            if debug:
                traceback.print_exc()
            click.echo(
                f"ftbench: internal error: {type(e).__name__}: {e} (rerun with --debug for the traceback)", err=True
            )
            sys.exit(EXIT_INTERNAL)
        sys.exit(rv if isinstance(rv, int) else 0)


@click.group(cls=FtbenchGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", "-V", prog_name="ftbench")
@common_options
def cli():
    """ftbench: check fine-tuning data, train LoRA adapters, and show whether training helped.

    Exit codes: 0 no errors (warnings allowed), 1 the input has errors, 2 usage or I/O problem.
    """


main = cli
