"""A checkpoint's generator as a TorchScript module or an ONNX graph that need no ganbench
(ganbench.export names the ONNX output and adds the metadata):
z float32 [N, z_dim] (and labels int64 [N]) -> uint8 NCHW images, N dynamic."""

import json
import warnings
from pathlib import Path

import torch


class PixelGenerator(torch.nn.Module):
    """G in eval mode followed by ganbench's to_uint8 arithmetic (round half to even of
    (x + 1) * 127.5 in float64, clipped to 0..255), in NCHW; `rgb` repeats one channel to three."""

    def __init__(self, net, conditional: bool, rgb: bool):
        super().__init__()
        self.net, self.conditional, self.rgb = net.eval(), conditional, rgb

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        images = self.net(z, {"labels": labels} if self.conditional else None)
        pixels = torch.clamp(torch.round((images.to(torch.float64) + 1.0) * 127.5), 0.0, 255.0).to(torch.uint8)
        return pixels.repeat(1, 3, 1, 1) if self.rgb and pixels.shape[1] == 1 else pixels


def example_inputs(z_dim: int, num_classes: int) -> tuple:
    """A batch of 2 (the traced size; the exported graphs take any N)."""
    z = torch.zeros(2, z_dim)
    return (z, torch.zeros(2, dtype=torch.int64)) if num_classes else (z,)


@torch.no_grad()
def save_torchscript(net, meta: dict, path: Path, rgb: bool) -> None:
    """Traced: the spatial shapes a layer branches on are constants of the model; N is not."""
    module = PixelGenerator(net, bool(meta["num_classes"]), rgb)
    with warnings.catch_warnings():  # torch 2.14 deprecates TorchScript; the tracer notes the constant shapes
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(module, example_inputs(meta["z_dim"], meta["num_classes"]), check_trace=False)
        torch.jit.save(traced, str(path), _extra_files={"ganbench.json": json.dumps(meta)})


@torch.no_grad()
def save_onnx(net, meta: dict, path: Path, rgb: bool) -> None:
    """torch's TorchScript-based exporter (opset 17), N a dynamic axis."""
    module = PixelGenerator(net, bool(meta["num_classes"]), rgb)
    names = ["z", "labels"] if meta["num_classes"] else ["z"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, example_inputs(meta["z_dim"], meta["num_classes"]), str(path), input_names=names,
                          output_names=["images"], dynamic_axes={name: {0: "N"} for name in [*names, "images"]},
                          opset_version=17, dynamo=False)
