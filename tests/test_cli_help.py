"""`--help` shows each option's default and the choices of options that take a name, so a user need
not read the code to learn what `--timeout` or `--detector` will be."""

from __future__ import annotations

import pytest

from dfdetect.cli import main


@pytest.mark.parametrize(("verb", "expected"), [
    ("scan", ["--timeout TIMEOUT", "(default: 600.0)", "{blazeface,blazeface_short,mtcnn}", "(default: 50000000)",
              "{auto,cpu,cuda}", "(default: auto)"]),
    ("extract", ["{blazeface,blazeface_short,mtcnn}", "(default: blazeface)", "(default: 224)"]),
])
def test_help_lists_defaults_and_choices(capsys, verb, expected):
    with pytest.raises(SystemExit) as exited:
        main([verb, "--help"])
    assert exited.value.code == 0
    shown = " ".join(capsys.readouterr().out.split())  # argparse wraps lines at the terminal width
    for text in expected:
        assert text in shown, text
    assert "(default: None)" not in shown and "(default: False)" not in shown
