"""Image data: the embedded digits split, IDX reading and MNIST loading from a folder."""
from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest
import torch

from learnt.tasks.datasets import MNIST_FILES, ImageData, load_dataset, load_digits, load_mnist, read_idx

# ------------------------------------------------------------------ digits


def test_digits_sizes_shapes_and_range():
    d = load_digits()
    assert isinstance(d, ImageData) and d.name == "digits" and d.n_classes == 10
    sizes = [len(d.x_train), len(d.x_val), len(d.x_test)]
    assert sizes == [1078, 359, 360] and sum(sizes) == 1797  # 60/20/20 of 1797
    for which in ("train", "val", "test"):
        x, y = d.split(which)
        assert x.shape == (len(y), 1, 8, 8) and x.dtype == torch.float32
        assert y.dtype == torch.int64 and y.shape == (len(x),)
        assert x.min() >= 0 and x.max() <= 1
        assert set(y.unique().tolist()) == set(range(10))
    assert d.image_shape == (1, 8, 8)
    # pixels are really scaled to [0, 1] (sklearn's are 0..16), not left at 0..16 / 255 etc.
    assert d.x_train.max() == 1.0


def test_digits_splits_partition_the_data_set():
    """The three splits together are exactly sklearn's 1797 (image, label) pairs, each once
    (compared as multisets, since digits holds some duplicate images)."""
    from sklearn.datasets import load_digits as sk_digits

    sk = sk_digits()
    ref = np.concatenate([sk.images.reshape(len(sk.images), -1) / 16.0, sk.target[:, None]], axis=1)
    d = load_digits()
    ours = np.concatenate([
        np.concatenate([x.reshape(len(x), -1).double().numpy(), y[:, None].double().numpy()], axis=1)
        for x, y in (d.split("train"), d.split("val"), d.split("test"))])
    assert ours.shape == ref.shape

    def canon(a):
        return a[np.lexsort(a.T[::-1])]
    np.testing.assert_allclose(canon(ours), canon(ref), atol=1e-6)


def test_digits_split_is_deterministic_across_loads():
    from learnt.tasks.datasets import _digits_arrays
    first = load_digits()
    _digits_arrays.cache_clear()
    try:
        second = load_digits()
        assert second is not first
        for which in ("train", "val", "test"):
            assert torch.equal(first.split(which)[0], second.split(which)[0])
            assert torch.equal(first.split(which)[1], second.split(which)[1])
    finally:
        _digits_arrays.cache_clear()


def test_split_rejects_unknown_name():
    with pytest.raises(ValueError, match="'bogus'"):
        load_digits().split("bogus")


# ------------------------------------------------------------------ IDX files


def _idx_bytes(arr: np.ndarray) -> bytes:
    assert arr.dtype == np.uint8
    return bytes([0, 0, 0x08, arr.ndim]) + struct.pack(">" + "I" * arr.ndim, *arr.shape) + arr.tobytes()


def _write_idx(path, arr: np.ndarray) -> None:
    data = _idx_bytes(arr)
    if str(path).endswith(".gz"):
        with gzip.open(path, "wb") as f:
            f.write(data)
    else:
        path.write_bytes(data)


@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_read_idx_images_and_labels(tmp_path, suffix):
    rng = np.random.RandomState(0)
    images = rng.randint(0, 256, size=(5, 4, 3)).astype(np.uint8)
    labels = rng.randint(0, 10, size=(5,)).astype(np.uint8)
    _write_idx(tmp_path / f"img{suffix}", images)
    _write_idx(tmp_path / f"lab{suffix}", labels)
    got_i, got_l = read_idx(tmp_path / f"img{suffix}"), read_idx(tmp_path / f"lab{suffix}")
    assert got_i.shape == (5, 4, 3) and got_i.dtype == np.uint8
    np.testing.assert_array_equal(got_i, images)
    assert got_l.shape == (5,)
    np.testing.assert_array_equal(got_l, labels)


def test_read_idx_big_endian_int32(tmp_path):
    vals = np.array([[1, -2], [70000, 3]], dtype=">i4")
    (tmp_path / "i4").write_bytes(bytes([0, 0, 0x0C, 2]) + struct.pack(">II", 2, 2) + vals.tobytes())
    np.testing.assert_array_equal(read_idx(tmp_path / "i4"), [[1, -2], [70000, 3]])


def test_read_idx_short_data_raises(tmp_path):
    data = _idx_bytes(np.zeros((4, 3, 3), np.uint8))
    (tmp_path / "t").write_bytes(data[:-5])
    with pytest.raises(ValueError, match=r"holds 31 values \(truncated\?\)"):
        read_idx(tmp_path / "t")


def test_read_idx_cut_header_raises_value_error(tmp_path):
    data = _idx_bytes(np.zeros((4, 3, 3), np.uint8))
    (tmp_path / "t").write_bytes(data[:10])  # magic + 1.5 of the 3 dims
    with pytest.raises(ValueError) as exc:
        read_idx(tmp_path / "t")
    assert str(tmp_path / "t") in str(exc.value)


@pytest.mark.parametrize("data", [b"\x01\x00\x08\x01\x00\x00\x00\x01\x07", b"\x00\x05\x08\x01\x00\x00\x00\x01\x07",
                                  b"PK\x03\x04\x00\x00", b"\x00\x00", b""])
def test_read_idx_rejects_non_idx_header(tmp_path, data):
    path = tmp_path / "f"
    path.write_bytes(data)
    with pytest.raises(ValueError, match=r"is not an IDX file \(bad magic number\)") as exc:
        read_idx(path)
    assert str(path) in str(exc.value)


def test_read_idx_unknown_element_type_raises(tmp_path):
    (tmp_path / "u").write_bytes(bytes([0, 0, 0x07, 1]) + struct.pack(">I", 1) + b"\x00")
    with pytest.raises(ValueError, match="0x07"):
        read_idx(tmp_path / "u")


# ------------------------------------------------------------------ MNIST from a folder


def _mnist_folder(root, n_train=30, n_test=10, gz=("test_images",), seed=0):
    rng = np.random.RandomState(seed)
    arrays = {"train_images": rng.randint(0, 256, (n_train, 28, 28)).astype(np.uint8),
              "train_labels": rng.randint(0, 10, (n_train,)).astype(np.uint8),
              "test_images": rng.randint(0, 256, (n_test, 28, 28)).astype(np.uint8),
              "test_labels": rng.randint(0, 10, (n_test,)).astype(np.uint8)}
    arrays["train_images"][0, 0, 0] = 255  # so the /255 scaling shows as an exact 1.0
    root.mkdir(exist_ok=True)
    for key, arr in arrays.items():
        _write_idx(root / (MNIST_FILES[key] + (".gz" if key in gz else "")), arr)
    return arrays


def test_load_mnist_shapes_scaling_and_val_from_end(tmp_path):
    arrays = _mnist_folder(tmp_path / "mnist")
    d = load_mnist(tmp_path / "mnist")
    assert d.name == "mnist" and d.n_classes == 10 and d.image_shape == (1, 28, 28)
    n_val = 30 // 5  # min(10_000, n_train // 5)
    assert d.x_train.shape == (30 - n_val, 1, 28, 28) and d.x_val.shape == (n_val, 1, 28, 28)
    assert d.x_test.shape == (10, 1, 28, 28)
    assert d.x_train.dtype == torch.float32 and d.y_train.dtype == torch.int64
    xtr = torch.from_numpy(arrays["train_images"].astype(np.float32) / 255.0)[:, None]
    ytr = torch.from_numpy(arrays["train_labels"].astype(np.int64))
    # validation images are the *last* training images, in order
    assert torch.equal(d.x_train, xtr[:-n_val]) and torch.equal(d.y_train, ytr[:-n_val])
    assert torch.equal(d.x_val, xtr[-n_val:]) and torch.equal(d.y_val, ytr[-n_val:])
    assert torch.equal(d.x_test, torch.from_numpy(arrays["test_images"].astype(np.float32) / 255.0)[:, None])
    assert torch.equal(d.y_test, torch.from_numpy(arrays["test_labels"].astype(np.int64)))
    assert d.x_train.max() == 1.0 and d.x_train.min() >= 0


def test_load_mnist_accepts_dotted_names(tmp_path):
    root = tmp_path / "m"
    _mnist_folder(root, gz=())
    for stem in MNIST_FILES.values():
        (root / stem).rename(root / stem.replace("-idx", ".idx"))
    assert len(load_mnist(root).x_test) == 10


def test_load_dataset_mnist_goes_through_the_path(tmp_path):
    _mnist_folder(tmp_path / "m")
    assert load_dataset("mnist", str(tmp_path / "m")).x_test.shape == (10, 1, 28, 28)


def test_load_mnist_missing_folder_names_path_and_files(tmp_path):
    path = tmp_path / "nowhere"
    with pytest.raises(FileNotFoundError) as exc:
        load_mnist(path)
    msg = str(exc.value)
    assert str(path) in msg
    for stem in MNIST_FILES.values():
        assert stem in msg


def test_load_mnist_lists_the_missing_file(tmp_path):
    root = tmp_path / "m"
    _mnist_folder(root)
    (root / MNIST_FILES["train_labels"]).unlink()
    with pytest.raises(FileNotFoundError) as exc:
        load_mnist(root)
    msg = str(exc.value)
    assert f"lacks ['{MNIST_FILES['train_labels']}']" in msg and str(root) in msg


def test_load_mnist_short_file_raises(tmp_path):
    root = tmp_path / "m"
    _mnist_folder(root, gz=())
    p = root / MNIST_FILES["test_images"]
    p.write_bytes(p.read_bytes()[:-100])
    with pytest.raises(ValueError, match=r"holds 7740 values \(truncated\?\)"):
        load_mnist(root)


def test_load_mnist_count_mismatch_raises(tmp_path):
    root = tmp_path / "m"
    _mnist_folder(root, gz=())
    _write_idx(root / MNIST_FILES["train_labels"], np.zeros(29, np.uint8))
    with pytest.raises(ValueError, match="counts differ"):
        load_mnist(root)


def test_load_dataset_errors():
    with pytest.raises(ValueError, match="data_path"):
        load_dataset("mnist")
    with pytest.raises(ValueError, match="'cifar'"):
        load_dataset("cifar")
    assert torch.equal(load_dataset("digits").x_test, load_digits().x_test)


def test_load_mnist_tiny_train_set_keeps_its_training_images(tmp_path):
    _mnist_folder(tmp_path / "m", n_train=4)
    d = load_mnist(tmp_path / "m")
    assert len(d.x_train) >= 1 and len(d.x_train) + len(d.x_val) == 4


def test_load_digits_hands_out_tensors_of_its_own():
    from learnt.tasks.datasets import load_digits
    a = load_digits()
    a.x_train.mul_(0)
    b = load_digits()
    assert float(b.x_train.abs().sum()) > 0
