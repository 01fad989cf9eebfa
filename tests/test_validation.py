"""The checks of what is read from a user's file (ganbench.validation and the readers that use it)."""

import json
from pathlib import Path

import numpy as np
import pytest

from ganbench import validation
from ganbench.config import TrainConfig
from ganbench.data import idx
from ganbench.errors import GanbenchError
from ganbench.metrics.evaluate import load_images


@pytest.mark.parametrize("text, message", [
    ("[" * 100000 + "]" * 100000, "not valid JSON (nested too deeply)"),
    ("[" * 33 + "]" * 33, "JSON nested more than 32 levels deep"),
    (b"{\"a\": \"\xff\"}", "not valid JSON ('utf-8' codec can't decode byte 0xff"),
    ("{'a': 1}", "not valid JSON (Expecting property name"),
    ("1" * 5000, "not valid JSON (Exceeds the limit"),
])
def test_bad_json_is_one_line_naming_the_source(text, message):
    with pytest.raises(GanbenchError) as error:
        validation.parse_json(text, "f.json")
    assert str(error.value).startswith(f"f.json: {message}") and "\n" not in str(error.value)


def test_nesting_is_counted_without_recursion():
    assert validation.nesting(1) == 0 and validation.nesting({"a": [1, {"b": []}]}) == 4
    deep = []
    for _ in range(100000):
        deep = [deep]
    assert validation.nesting(deep) == 100001


@pytest.mark.parametrize("value, expected", [(None, "null"), ([], "a list"), ({}, "an object"), ("x", "a string"),
                                             (True, "a boolean"), (3, "3"), ("huge", "a huge number")])
def test_a_hostile_value_is_named_briefly(value, expected):
    value = 10**5000 if value == "huge" else value  # str() of it fails: not a parameter id
    assert validation.type_name(value) == expected
    assert len(validation.short("x" * 10**6)) == 40


@pytest.mark.parametrize("value, message", [
    (True, "must be an integer, got a boolean"), (1.0, "must be an integer, got 1.0"),
    (-1, r"must be in \[0, 9223372036854775807\], got -1"), (2**63, "must be in"),
])
def test_integers_are_ints_in_range(value, message):
    with pytest.raises(GanbenchError, match=f"f: the step {message}"):
        validation.integer(value, "f", "the step")


@pytest.mark.parametrize("data, message", [
    (None, "a config must be a JSON object of fields, got null"),
    ([1], "a config must be a JSON object of fields, got a list"),
    ({"steps": 2**64}, "config key 'steps' is out of range"),
    ({"lr_g": 2**60}, "config key 'lr_g' must be float, got 1152921504606846976"),
    ({"x" * 100: 1, "b": 2, "c": 3, "d": 4, "e": 5, "f": 6, "g": 7}, r"unknown config key\(s\): b, c, d, e, f and 2 more"),
])
def test_config_fields_from_a_file(data, message):
    with pytest.raises(GanbenchError, match=message):
        TrainConfig.from_dict(data)


def test_forged_idx_dimensions_cannot_overflow():
    payload = b"\x00\x00\x08\x03" + b"\xff\xff\xff\xff" * 3 + bytes(16)
    with pytest.raises(GanbenchError, match=r"wrong size, 32 bytes where dims \(4294967295, 4294967295, 4294967295\) "
                                            r"need 79228162458924105385300197391"):
        idx.parse_idx(payload, Path("x"), idx.MAGIC_IMAGES)


@pytest.mark.parametrize("order", ["C", "F"])
@pytest.mark.parametrize("save", [np.savez, np.savez_compressed])
def test_npz_images_in_every_layout_numpy_writes(tmp_path, order, save):
    images = np.arange(2 * 5 * 6 * 3, dtype=np.uint8).reshape(2, 5, 6, 3)
    save(tmp_path / "i.npz", images=np.asarray(images, order=order))
    loaded = load_images(tmp_path / "i.npz")
    assert np.array_equal(loaded, images) and loaded.flags.writeable
    save(tmp_path / "g.npz", only=images[..., 0])
    assert np.array_equal(load_images(tmp_path / "g.npz"), images[..., :1])


def test_npz_member_claiming_more_than_deflate_yields(tmp_path):
    import zipfile

    header = b"{'descr': '|u1', 'fortran_order': False, 'shape': (2000, 28, 28), }"
    header += b" " * (-(len(header) + 11) % 64) + b"\n"
    with zipfile.ZipFile(tmp_path / "bomb.npz", "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("images.npy", b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header
                         + bytes(2000 * 28 * 28))
    load_images(tmp_path / "bomb.npz")  # 1.5 MB of zeros deflates about 1000x: still believable
    info = zipfile.ZipFile(tmp_path / "bomb.npz").infolist()[0]
    assert info.file_size / info.compress_size > 500


def test_checkpoint_pointer_names_only_a_step_file(tmp_path):
    from ganbench import checkpoint

    folder = tmp_path / "checkpoints"
    folder.mkdir()
    for content in (b"../config.json", b"\xff\xfe", b"", b"step_1.safetensors", b"/etc/passwd"):
        (folder / "latest").write_bytes(content)
        with pytest.raises(GanbenchError, match="latest: damaged pointer"):
            checkpoint.resolve(tmp_path)


def test_log_records_are_checked_and_torn_lines_skipped(tmp_path):
    from ganbench.training.logger import read_log

    log = tmp_path / "log.jsonl"
    log.write_text(json.dumps({"step": 1, "d_loss": float("nan")}) + "\n" + '{"step": 2, "d_lo')
    assert [r["step"] for r in read_log(log)] == [1]  # NaN is a logged number; the torn line is skipped
    log.write_text('{"step": 1}\n{"step": true}\n')
    with pytest.raises(GanbenchError, match="log.jsonl, line 2: step must be an integer, got a boolean"):
        read_log(log)
    log.write_bytes(b'{"step": 1}\n\xff\n')
    with pytest.raises(GanbenchError, match=r"log.jsonl: not UTF-8 text \(byte 12\)"):
        read_log(log)


def test_an_npz_header_numpy_cannot_tokenize_is_refused(tmp_path):
    """Found by the fuzzer (seed 2026, case 28985): numpy's header parser raised TokenError."""
    import zipfile

    header = b"{'descr': '|u1', 'fortran_order': False, 'shape': (2, 3, }"
    header += b" " * (-(len(header) + 11) % 64) + b"\n"
    with zipfile.ZipFile(tmp_path / "t.npz", "w") as archive:
        archive.writestr("images.npy", b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header + bytes(6))
    with pytest.raises(GanbenchError, match=r"t.npz: unreadable .npz \(\('EOF in multi-line statement'"):
        load_images(tmp_path / "t.npz")


def test_idx_files_without_a_known_digest_are_checked_for_size_and_labels(tmp_path):
    """Defence behind the sha256: an IDX dataset whose files have no canonical digest."""
    import dataclasses

    from ganbench.data import catalog

    files = {key: dataclasses.replace(f, sha256_raw=None) for key, f in catalog.MNIST.files.items()}
    dataset = dataclasses.replace(catalog.MNIST, files=files, extra_dirs=())
    folder = tmp_path / "mnist"
    folder.mkdir()

    def write(images_dims, labels):
        (folder / "t10k-images-idx3-ubyte").write_bytes(
            b"\x00\x00\x08\x03" + b"".join(d.to_bytes(4, "big") for d in images_dims) + bytes(int(np.prod(images_dims))))
        (folder / "t10k-labels-idx1-ubyte").write_bytes(b"\x00\x00\x08\x01" + len(labels).to_bytes(4, "big")
                                                         + bytes(labels))

    write((2, 28, 28), [3, 4])
    assert catalog.read_split(dataset, tmp_path, "test")[1].tolist() == [3, 4]
    for dims, labels, message in (((2, 28, 28), [3], "1 labels for the 2 images"),
                                  ((2, 27, 28), [3, 4], "mnist images are 28x28, the file holds 2x27x28"),
                                  ((0, 28, 28), [], "the file holds 0x28x28"),
                                  ((2, 28, 28), [3, 10], "label 10 out of range 0..9")):
        write(dims, labels)
        with pytest.raises(GanbenchError, match=message):
            catalog.read_split(dataset, tmp_path, "test")
