"""A checkpoint's generator as a TensorFlow SavedModel that needs no ganbench: `generate(z)` (or
`generate(z, labels)`), z float32 [N, z_dim], labels int64 [N] -> uint8 NCHW images, N dynamic;
or the same function as ONNX, by tf2onnx."""

import json
from pathlib import Path

import tensorflow as tf


def pixel_function(net, meta: dict, rgb: bool):
    """G in eval mode followed by ganbench's to_uint8 arithmetic, NHWC -> NCHW, as a tf.function."""
    signature = [tf.TensorSpec([None, meta["z_dim"]], tf.float32, name="z")]
    if meta["num_classes"]:
        signature.append(tf.TensorSpec([None], tf.int64, name="labels"))

    def generate(z, labels=None):
        images = net(z, False, {"labels": labels} if meta["num_classes"] else None)
        pixels = tf.cast(tf.clip_by_value(tf.round((tf.cast(images, tf.float64) + 1.0) * 127.5), 0.0, 255.0), tf.uint8)
        pixels = tf.transpose(pixels, (0, 3, 1, 2))
        return tf.tile(pixels, (1, 3, 1, 1)) if rgb and pixels.shape[1] == 1 else pixels

    return tf.function(generate, input_signature=signature)


def save_onnx(net, meta: dict, path: Path, rgb: bool) -> None:
    """tf2onnx's converter (opset 17) from the same tf.function; N stays dynamic."""
    import tf2onnx

    from ganbench.errors import GanbenchError

    function = pixel_function(net, meta, rgb)
    try:
        tf2onnx.convert.from_function(function, input_signature=function.input_signature, opset=17,
                                      output_path=str(path))
    except Exception as exc:  # noqa: BLE001 - a converter that does not know this TensorFlow
        raise GanbenchError(f"tf2onnx {tf2onnx.__version__} cannot convert with TensorFlow {tf.__version__} "
                            f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}); "
                            "use --onnx-from torch") from None


def save_savedmodel(net, meta: dict, path: Path, rgb: bool) -> None:
    module = tf.Module()
    module.net = net  # tracks G's variables
    module.generate = pixel_function(net, meta, rgb)
    module.ganbench_json = tf.Variable(json.dumps(meta), trainable=False)
    tf.saved_model.save(module, str(path), signatures={"serving_default": module.generate})
