"""Real few-shot data sets read from a user-given path (never downloaded).

* Omniglot in the torchvision folder layout::

    ROOT/[omniglot-py/]images_background/<Alphabet>/character<NN>/*.png
    ROOT/[omniglot-py/]images_evaluation/<Alphabet>/character<NN>/*.png

  background alphabets give meta-train classes (the last ``val_alphabets`` of them, in
  sorted order, meta-validation), evaluation alphabets meta-test classes. Strokes become 1
  and background 0, as in the glyph set.
* mini-ImageNet from Ravi & Larochelle's split files::

    ROOT/train.csv, ROOT/val.csv, ROOT/test.csv   (header ``filename,label``)
    ROOT/images/<filename>

  or from per-class folders: ``ROOT/{train,val,test}/<class>/*.{jpg,png}``.

Images are resized to ``image_size`` and kept as uint8 (C, H, W) per class.
"""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import torch

from learnt.fewshot.episodes import ClassSplit

OMNIGLOT_LAYOUT = ("ROOT/images_background/<Alphabet>/character<NN>/*.png and ROOT/images_evaluation/... "
                   "(torchvision layout; ROOT may also contain them under omniglot-py/)")
MINIIMAGENET_LAYOUT = ("ROOT/{train,val,test}.csv (filename,label) with ROOT/images/<filename>, "
                       "or per-class folders ROOT/{train,val,test}/<class>/*.jpg")
IMAGE_EXT = (".png", ".jpg", ".jpeg", ".bmp")


def _read_image(path: Path, size: int, mode: str) -> torch.Tensor:
    from PIL import Image
    with Image.open(path) as im:
        im = im.convert(mode).resize((size, size), Image.BILINEAR)
        a = np.asarray(im, dtype=np.uint8)
    a = a[None] if a.ndim == 2 else a.transpose(2, 0, 1)
    return torch.from_numpy(a.copy())


def _images(files: list[Path], size: int, mode: str, invert: bool = False) -> torch.Tensor:
    t = torch.stack([_read_image(f, size, mode) for f in files])
    return 255 - t if invert else t


def load_omniglot(root: str | Path, image_size: int = 28, val_alphabets: int = 5) -> dict[str, ClassSplit]:
    """Omniglot from ``root`` (torchvision layout): ``{"train", "val", "test"} -> ClassSplit``.

    Example:
        >>> splits = load_omniglot("/data/omniglot")  # doctest: +SKIP
    """
    root = Path(root).expanduser()
    base = root / "omniglot-py" if (root / "omniglot-py").is_dir() else root
    bg, ev = base / "images_background", base / "images_evaluation"
    if not bg.is_dir() or not ev.is_dir():
        raise FileNotFoundError(f"Omniglot not found at {str(root)!r}: expected {OMNIGLOT_LAYOUT}")

    def classes(d: Path) -> list[tuple[str, list[Path]]]:
        out = []
        for alpha in sorted(p for p in d.iterdir() if p.is_dir()):
            for ch in sorted(p for p in alpha.iterdir() if p.is_dir()):
                files = sorted(f for f in ch.iterdir() if f.suffix.lower() in IMAGE_EXT)
                if files:
                    out.append((f"{alpha.name}/{ch.name}", files))
        if not out:
            raise FileNotFoundError(f"no character images under {str(d)!r}: expected {OMNIGLOT_LAYOUT}")
        return out

    background, evaluation = classes(bg), classes(ev)
    alphas = sorted({n.split("/")[0] for n, _ in background})
    if not 0 <= val_alphabets < len(alphas):
        raise ValueError(f"val_alphabets={val_alphabets}; expected 0 <= it < {len(alphas)} background alphabets")
    val_set = set(alphas[len(alphas) - val_alphabets:])
    groups = {"train": [c for c in background if c[0].split("/")[0] not in val_set],
              "val": [c for c in background if c[0].split("/")[0] in val_set], "test": evaluation}
    out = {}
    for s, cl in groups.items():
        if cl:  # 'val' is empty when val_alphabets == 0
            out[s] = ClassSplit([_images(f, image_size, "L", invert=True) for _, f in cl], [n for n, _ in cl])
    return out


def load_miniimagenet(root: str | Path, image_size: int = 84) -> dict[str, ClassSplit]:
    """mini-ImageNet from Ravi's CSV split files or per-class folders: ``{"train","val","test"} -> ClassSplit``.

    Example:
        >>> splits = load_miniimagenet("/data/mini-imagenet")  # doctest: +SKIP
    """
    root = Path(root).expanduser()
    out = {}
    if all((root / f"{s}.csv").is_file() for s in ("train", "val", "test")) and (root / "images").is_dir():
        for s in ("train", "val", "test"):
            by_label: dict[str, list[Path]] = {}
            with open(root / f"{s}.csv", newline="") as f:
                rows = list(csv.reader(f))
            if not rows or [c.strip() for c in rows[0][:2]] != ["filename", "label"]:
                raise ValueError(f"{str(root / f'{s}.csv')!r}: expected a header 'filename,label'")
            for row in rows[1:]:
                if len(row) >= 2:
                    by_label.setdefault(row[1].strip(), []).append(root / "images" / row[0].strip())
            missing = [p for ps in by_label.values() for p in ps if not p.is_file()]
            if missing:
                raise FileNotFoundError(f"{len(missing)} images listed in {s}.csv are missing, e.g. {str(missing[0])!r}; "
                                        f"expected {MINIIMAGENET_LAYOUT}")
            labels = sorted(by_label)
            out[s] = ClassSplit([_images(by_label[c], image_size, "RGB") for c in labels], labels, labels)
        return out
    if all((root / s).is_dir() for s in ("train", "val", "test")):
        for s in ("train", "val", "test"):
            dirs = sorted(p for p in (root / s).iterdir() if p.is_dir())
            files = [sorted(f for f in d.iterdir() if f.suffix.lower() in IMAGE_EXT) for d in dirs]
            keep = [(d.name, f) for d, f in zip(dirs, files) if f]
            if not keep:
                raise FileNotFoundError(f"no class folders with images under {str(root / s)!r}; expected {MINIIMAGENET_LAYOUT}")
            out[s] = ClassSplit([_images(f, image_size, "RGB") for _, f in keep], [n for n, _ in keep],
                                [n for n, _ in keep])
        return out
    raise FileNotFoundError(f"mini-ImageNet not found at {str(root)!r}: expected {MINIIMAGENET_LAYOUT}")
