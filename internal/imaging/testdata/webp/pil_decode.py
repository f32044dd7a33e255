#!/usr/bin/python3
"""Pillow's view of WebP files, for petbreed's WebP parity test.

Run with Debian's /usr/bin/python3 and python3-pil (Pillow 9.4, the version
of the shared pil-reference outputs). For each WebP path given, writes:
  PATH.rgb       Image.open(PATH).convert('RGB').tobytes()
  PATH.crop.rgb  torchvision's evaluation transform of that image: short side
                 to 256 with Image.BILINEAR (long side int(256*long/short)),
                 then CenterCrop(224) (offsets int(round((dim-224)/2.0)))
and prints one JSON line a file: {"path", "mode", "size", "pillow"}.
"""
import json
import sys

import PIL
from PIL import Image


def torchvision_crop(im, short=256, size=224):
    w, h = im.size
    if w <= h:
        nw, nh = short, int(short * h / w)
    else:
        nw, nh = int(short * w / h), short
    im = im.resize((nw, nh), Image.BILINEAR)
    left = int(round((nw - size) / 2.0))
    top = int(round((nh - size) / 2.0))
    return im.crop((left, top, left + size, top + size))


def main(paths):
    for p in paths:
        with Image.open(p) as im:
            mode = im.mode
            rgb = im.convert("RGB")
        with open(p + ".rgb", "wb") as f:
            f.write(rgb.tobytes())
        with open(p + ".crop.rgb", "wb") as f:
            f.write(torchvision_crop(rgb).tobytes())
        print(json.dumps({"path": p, "mode": mode, "size": list(rgb.size),
                          "pillow": PIL.__version__}))


if __name__ == "__main__":
    main(sys.argv[1:])
