"""``cemnist report`` (the data CLI) forwards to ``cemnist-baselines report``, which draws a results folder."""
import argparse

from cemnist_data.viz import cli


def test_report_is_registered_and_forwards_every_argument():
    parser = argparse.ArgumentParser(prog="cemnist")
    sub = parser.add_subparsers(dest="command")
    cli.add_cli_subcommands(sub)
    args = parser.parse_args(["report", "results/v1", "--max-frames", "30"])
    assert args.func is cli.cmd_report and args.report_args == ["results/v1", "--max-frames", "30"]


def test_report_cli(results_dir, tmp_path):
    assert cli.main(["report", str(results_dir), "--out", str(tmp_path / "r"), "--max-frames", "6"]) == 0
    assert (tmp_path / "r" / "index.html").is_file()
