"""The baseline `mbv2 evaluate` is timed against: a plain Pillow + torchvision eager loop, one image at a time.

    .venv/bin/python benchmarks/naive_evaluate.py ../shared/weights/mobilenet_v2_1.0_224_tf2_ptq.json \
        ../shared/imagenet-eval

What anyone would write first: torchvision's `mobilenet_v2` with the state_dict loaded, in eval mode
under `torch.no_grad`; each image opened with Pillow, preprocessed as the weights' JSON says, and
classified on its own. Where the weights want TensorFlow's padding (`tf_same`), each stride-2
convolution pads like `mbv2.model.TFSameConv2d`, so the top-1 is the one `mbv2 evaluate` must give.
Prints one JSON object: the images, top-1 and top-5 in percent.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
import torchvision
from PIL import Image
from torch import nn
from torchvision.transforms import v2

from mbv2.model import TFSameConv2d

SYNSETS = (Path(__file__).resolve().parents[1] / "mbv2" / "imagenet_synsets.txt").read_text().split()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("weights", type=Path, help="a .json weights description beside its .pth")
    parser.add_argument("images", type=Path, help="a folder of <synset>_*.JPEG files")
    args = parser.parse_args()
    description = json.loads(args.weights.read_text())
    model = torchvision.models.mobilenet_v2()
    model.load_state_dict(torch.load(args.weights.with_name(description["file"]), weights_only=True))
    if description.get("padding") == "tf_same":
        _tf_same_padding(model)
    model.eval()
    recipe = description["preprocess"]
    size = recipe["size"]
    transform = v2.Compose(
        [
            v2.Lambda(lambda image: v2.functional.center_crop(
                image, [round(image.height * recipe["central_crop_fraction"]),
                        round(image.width * recipe["central_crop_fraction"])])),
            v2.Resize([size, size], antialias=True),
            v2.PILToTensor(),
            v2.ToDtype(torch.float32, scale=True),
            v2.Normalize(recipe["mean"], recipe["std"]),
        ]
    )
    top1 = top5 = 0
    paths = sorted(path for path in args.images.iterdir() if path.suffix.lower() in {".jpeg", ".jpg"})
    with torch.no_grad():
        for path in paths:
            image = Image.open(path).convert("RGB")
            logits = model(transform(image).unsqueeze(0))[0]
            label = SYNSETS.index(path.name.split("_", 1)[0])
            best = logits.topk(5).indices.tolist()
            top1 += best[0] == label
            top5 += label in best
    print(json.dumps({"images": len(paths), "top1": 100 * top1 / len(paths), "top5": 100 * top5 / len(paths)}))


def _tf_same_padding(model: nn.Module) -> None:
    """Every stride-2 convolution padded as TensorFlow's SAME (extra pixel right and bottom), same weights."""
    for parent in list(model.modules()):
        for name, child in parent.named_children():
            if type(child) is nn.Conv2d and child.stride[0] > 1:
                same = TFSameConv2d(child.in_channels, child.out_channels, child.kernel_size, child.stride, 0,
                                    groups=child.groups, bias=child.bias is not None)
                same.load_state_dict(child.state_dict())
                setattr(parent, name, same)


if __name__ == "__main__":
    main()
