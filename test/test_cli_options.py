import argparse

import pytest

from mhr2_ros.cli.options import add_detector_options, inference_config


def _parse(argv):
    parser = argparse.ArgumentParser()
    add_detector_options(parser)
    return parser.parse_args(argv)


def test_padding_flags_set_the_inference_config_and_exclude_each_other(capsys):
    """No flag leaves the rows to the weights (None); --pad-rows forces the paper's padding, --no-pad
    turns padding off; both at once is refused by name."""
    plain, rows, off = (inference_config(_parse(a)) for a in ([], ["--pad-rows"], ["--no-pad"]))
    assert (plain.pad_to_train_aspect, plain.pad_rows) == (True, None)
    assert (rows.pad_to_train_aspect, rows.pad_rows) == (True, True)
    assert (off.pad_to_train_aspect, off.pad_rows) == (False, None)
    with pytest.raises(SystemExit):
        _parse(["--no-pad", "--pad-rows"])
    assert "not allowed with argument --no-pad" in capsys.readouterr().err
