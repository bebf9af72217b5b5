"""`mhr2 export OUT.onnx`: the network as one ONNX graph, for ONNX Runtime (CPU, CUDA providers).

The file is checked against PyTorch at several input sizes before it is kept
(model/onnx_export.py) and carries its model config and the checkpoint's metadata, so
`mhr2 detect --weights OUT.onnx`, `mhr2 eval` and the node's `weights` parameter take it
as they take a .safetensors file.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from mhr2_ros.cli.formatting import HelpFormatter
from mhr2_ros.config import DEFAULT_WEIGHTS


def add_parser(sub) -> None:
    p = sub.add_parser(
        "export",
        help="export the network to ONNX (run by ONNX Runtime on the CPU or CUDA)",
        description="Write OUTPUT (.onnx): the network of --weights (encoder, decoder, heads) as one "
        "ONNX graph with a dynamic batch, height and width, its model config and the checkpoint's "
        "metadata inside. Before the file is kept, ONNX Runtime and PyTorch run the same inputs at "
        "every --check-size and must agree; the body model and the rest of the pipeline stay in "
        "PyTorch. Use the file wherever weights are taken: mhr2 detect/eval/bag --weights OUT.onnx, "
        "the node's weights parameter. Needs pip install 'mhr2_ros[onnx]'.",
        formatter_class=HelpFormatter,
    )
    p.add_argument("output", type=Path, help="ONNX file to write, ending in .onnx")
    p.add_argument("--weights", type=Path, default=DEFAULT_WEIGHTS,
                   help=f"checkpoint .safetensors with its .json beside it (default: {DEFAULT_WEIGHTS})")
    p.add_argument("--config", default=None,
                   help="model preset or YAML/JSON model config; by default the JSON beside --weights")
    p.add_argument("--check-size", action="append", default=None, metavar="HxW", type=_size,
                   help="network input size (pixels, multiples of the patch size) at which the graph must "
                   "match PyTorch; repeat for several (default: the input of every training aspect "
                   "ratio and one larger size)")
    p.add_argument("--opset", type=int, default=None, help="ONNX opset (default: 18)")
    p.set_defaults(run=run)


def _size(text: str):
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected HEIGHTxWIDTH in pixels, e.g. 192x256, got {text!r}") from None
    return h, w


def run(args: argparse.Namespace) -> int:
    from mhr2_ros.checkpoint import load_model
    from mhr2_ros.config import load_model_config
    from mhr2_ros.errors import ConfigError
    from mhr2_ros.model.onnx_export import DEFAULT_OPSET, export_onnx

    if args.output.suffix != ".onnx":
        raise ConfigError(f"output must end in .onnx, got {args.output}")
    if args.weights.suffix == ".onnx":
        raise ConfigError(f"--weights {args.weights} is already ONNX; export a .safetensors checkpoint")
    model_cfg = load_model_config(args.config) if args.config else None
    model, _, metadata = load_model(args.weights, model_cfg)
    metadata = {**metadata, "exported_from": str(args.weights)}
    result = export_onnx(model, args.output, metadata, args.check_size, args.opset or DEFAULT_OPSET)
    sizes = ", ".join(f"{h}x{w}" for h, w in result["sizes"])
    worst = ", ".join(f"{name} {value:.1e}" for name, value in result["max_abs"].items())
    print(f"wrote {result['path']} ({result['path'].stat().st_size / 2**20:.1f} MiB)")
    print(f"matches PyTorch at {sizes} (largest |difference|: {worst})")
    return 0
