"""`dfdetect VERB ...`: each verb is one stage module with `add_arguments(parser)` and `run(args)`.

Modules are imported only for the verb that runs, so `dfdetect scan` does not pay for Lightning.
fit / validate / test hand their arguments to LightningCLI unchanged.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from dfdetect import __version__
from dfdetect.errors import DfdetectError

VERBS = {
    "index": ("dfdetect.datasets.cli", "index a dataset layout into INDEX.parquet"),
    "extract": ("dfdetect.extract", "detect and crop faces listed in an index"),
    "calibrate": ("dfdetect.calibrate", "fit temperature scaling and named thresholds on validation scores"),
    "export": ("dfdetect.export", "export a checkpoint to ONNX with its model contract"),
    "scan": ("dfdetect.scan.cli", "score images and videos with an ONNX model"),
    "evaluate": ("dfdetect.recipes.evaluate_command",
                 "measure a model on crop sets (--crops) or labelled media files (--media): metrics.json, report.html"),
    "explain": ("dfdetect.explain", "heatmaps of where a face's score comes from (Grad-CAM or occlusion)"),
    "review": ("dfdetect.review.cli", "export a human review queue (HTML gallery) or import its verdicts"),
    "provenance": ("dfdetect.review.provenance",
                   "trace a score: record → model file → training run → data index, each checked on disk"),
    "demo": ("dfdetect.recipes.demo", "run the whole pipeline on the bundled sample faces"),
}
LIGHTNING_VERBS = {"fit": "train a detector", "validate": "validate a checkpoint", "test": "test a checkpoint"}


class DefaultsHelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """`--help` shows each option's default, except where the default is None or False: there the
    help text says what happens instead ("default: the contract's detector"), and "(default: None)"
    would say nothing."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default is None or action.default is False or "default" in (action.help or ""):
            return action.help
        return super()._get_help_string(action)


def build_parser(verb: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dfdetect", description="Deepfake detection toolkit.")
    parser.add_argument("--version", action="version", version=f"dfdetect {__version__}")
    sub = parser.add_subparsers(dest="verb", metavar="VERB")
    for name, (module, help_text) in VERBS.items():
        verb_parser = sub.add_parser(name, help=help_text, description=help_text, formatter_class=DefaultsHelpFormatter)
        if name == verb:  # only the chosen verb's module is imported
            importlib.import_module(module).add_arguments(verb_parser)
    for name, help_text in LIGHTNING_VERBS.items():
        sub.add_parser(name, help=f"{help_text} (LightningCLI: --config RECIPE, a shipped name such as tiny_cpu "
                                  "or a YAML file; --help for all options)", add_help=False)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    verb = argv[0] if argv else None
    try:
        if verb in LIGHTNING_VERBS:
            importlib.import_module("dfdetect.train.cli").run_lightning(argv)
            return 0
        args = build_parser(verb).parse_args(argv)
        if args.verb is None:
            build_parser().print_help()
            return 2
        return importlib.import_module(VERBS[args.verb][0]).run(args) or 0  # a verb may return its exit status
    except DfdetectError as exc:
        print(f"dfdetect {verb}: error: {exc.one_line()}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"dfdetect {verb}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
