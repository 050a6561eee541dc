"""Real-data loaders on tiny fixtures built here; nothing is downloaded."""
import numpy as np
import pytest
import torch
from PIL import Image

from learnt.fewshot.episodes import EpisodeSampler
from learnt.fewshot.loaders import load_miniimagenet, load_omniglot


def _png(path, value, size=(105, 105), mode="L"):
    path.parent.mkdir(parents=True, exist_ok=True)
    shape = size[::-1] + ((3,) if mode == "RGB" else ())
    Image.fromarray(np.full(shape, value, np.uint8)).save(path)


@pytest.fixture
def omniglot(tmp_path):
    root = tmp_path / "omniglot-py"
    for part, alphabets in (("images_background", ["Alpha", "Beta", "Gamma"]), ("images_evaluation", ["Delta"])):
        for a in alphabets:
            for c in range(5):
                for d in range(4):
                    # background white (255), a dark square: the loader inverts so strokes are 1
                    arr = np.full((105, 105), 255, np.uint8)
                    arr[10 + 10 * c: 30 + 10 * c, 20:60] = 0
                    p = root / part / a / f"character{c + 1:02d}" / f"{c:04d}_{d:02d}.png"
                    p.parent.mkdir(parents=True, exist_ok=True)
                    Image.fromarray(arr).save(p)
    return tmp_path


def test_omniglot_layout_gives_episodes(omniglot):
    splits = load_omniglot(omniglot, image_size=28, val_alphabets=1)
    assert len(splits["train"]) == 10 and len(splits["val"]) == 5 and len(splits["test"]) == 5
    assert set(splits["val"].alphabets) == {"Gamma"} and splits["test"].names[0] == "Delta/character01"
    ep = EpisodeSampler(splits["test"], n_way=5, k_shot=1, n_query=3, split="test").episode(0)
    assert ep.support_x.shape == (5, 1, 28, 28) and ep.query_y.shape == (15,)
    x = splits["test"].class_images(0).float() / 255
    assert x.mean() < 0.3 and x.max() > 0.9   # strokes 1 on a 0 background, as the glyphs
    # also accepts the folder that directly holds images_background/
    assert len(load_omniglot(omniglot / "omniglot-py", val_alphabets=0)["train"]) == 15


def test_missing_paths_name_the_expected_layout(tmp_path):
    with pytest.raises(FileNotFoundError, match="images_background/<Alphabet>/character"):
        load_omniglot(tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match=r"train,val,test\}.csv"):
        load_miniimagenet(tmp_path / "nowhere")


def test_miniimagenet_from_csv_split_files(tmp_path):
    for s, labels in (("train", ["n01", "n02", "n03"]), ("val", ["n04", "n05"]), ("test", ["n06", "n07"])):
        lines = ["filename,label"]
        for lab in labels:
            for i in range(3):
                name = f"{lab}{i:08d}.jpg"
                _png(tmp_path / "images" / name, 30 * int(lab[1:]), size=(30, 20), mode="RGB")
                lines.append(f"{name},{lab}")
        (tmp_path / f"{s}.csv").write_text("\n".join(lines) + "\n")
    splits = load_miniimagenet(tmp_path, image_size=16)
    assert splits["train"].names == ["n01", "n02", "n03"] and len(splits["test"]) == 2
    ep = EpisodeSampler(splits["train"], n_way=3, k_shot=1, n_query=2).episode(0)
    assert ep.support_x.shape == (3, 3, 16, 16) and ep.support_x.dtype == torch.float32
    # a class's images carry that class's colour: labels follow the images
    for x, y in zip(ep.query_x, ep.query_y):
        same = ep.support_x[ep.support_y == y][0]
        assert torch.allclose(x, same, atol=2 / 255)
    (tmp_path / "images" / "n0100000000.jpg").unlink()
    with pytest.raises(FileNotFoundError, match="missing"):
        load_miniimagenet(tmp_path)


def test_miniimagenet_from_class_folders(tmp_path):
    for s in ("train", "val", "test"):
        for c in range(2):
            for i in range(3):
                _png(tmp_path / s / f"class{c}" / f"{i}.png", 100 * c, size=(12, 12), mode="RGB")
    splits = load_miniimagenet(tmp_path, image_size=8)
    assert {k: len(v) for k, v in splits.items()} == {"train": 2, "val": 2, "test": 2}
    ep = EpisodeSampler(splits["val"], n_way=2, k_shot=2, n_query=1, split="val").episode(3)
    assert ep.query_x.shape == (2, 3, 8, 8)
