#!/usr/bin/python3
"""Writes exif_pillow.json: EXIF blocks, hand-made and randomly mangled, with
the orientation Pillow 9.4's ImageOps.exif_transpose applies to a JPEG that
carries each one (found from where a marked corner of the image ends up).
Run with Debian's python3-pil 9.4: /usr/bin/python3 exif_pillow.py
TestEXIFMatchesPillow reads the output; the test itself needs no Python."""
import io
import json
import random
import struct
import warnings

import PIL
from PIL import Image, ImageOps

assert PIL.__version__.startswith("9.4"), PIL.__version__
warnings.simplefilter("ignore")

W, H = 24, 16
base = Image.new("RGB", (W, H), (0, 0, 0))
base.paste((255, 255, 255), (0, 0, 8, 8))  # white top-left block


def pil_orientation(app1):
    buf = io.BytesIO()
    base.save(buf, "JPEG", quality=95, exif=app1)
    try:
        # Image.open itself reads the EXIF block of a JPEG (for its dpi) and
        # can fail on a bad one; petbreed never fails a decode on EXIF.
        im = Image.open(io.BytesIO(buf.getvalue()))
        out = ImageOps.exif_transpose(im)
    except Exception as e:
        return "error: " + type(e).__name__
    w, h = out.size
    corners = {(0, 0): "TL", (w - 4, 0): "TR", (w - 4, h - 4): "BR", (0, h - 4): "BL"}
    white = [n for p, n in corners.items() if out.getpixel(p)[0] > 128]
    assert len(white) == 1, white
    swapped = (w, h) == (H, W)
    return {(False, "TL"): 1, (False, "TR"): 2, (False, "BR"): 3, (False, "BL"): 4,
            (True, "TL"): 5, (True, "TR"): 6, (True, "BR"): 7, (True, "BL"): 8}[(swapped, white[0])]


def ifd(bo, entries, extra=b"", magic=None):
    """A TIFF block: header, IFD0 at 8 with entries (tag, type, count,
    4-byte value field), next-IFD 0, then extra bytes."""
    e = "<" if bo == "II" else ">"
    if magic is None:
        magic = b"II*\0" if bo == "II" else b"MM\0*"
    t = magic + struct.pack(e + "L", 8) + struct.pack(e + "H", len(entries))
    for tag, typ, count, val in entries:
        t += struct.pack(e + "HHL", tag, typ, count) + val
    return t + struct.pack(e + "L", 0) + extra


def v16(bo, x):
    return struct.pack(("<" if bo == "II" else ">") + "HH", x, 0)


def v32(bo, x, fmt="L"):
    return struct.pack(("<" if bo == "II" else ">") + fmt, x)


cases = []


def add(name, tiff, prefix=b"Exif\0\0"):
    cases.append({"name": name, "app1": (prefix + tiff).hex()})


for bo in ("MM", "II"):
    add(f"{bo} short 6", ifd(bo, [(0x112, 3, 1, v16(bo, 6))]))
    add(f"{bo} short 6 count 0xFFFFFFFF", ifd(bo, [(0x112, 3, 0xFFFFFFFF, v16(bo, 6))]))
    add(f"{bo} short 6 count 0", ifd(bo, [(0x112, 3, 0, v16(bo, 6))]))
    add(f"{bo} short 6 count 2", ifd(bo, [(0x112, 3, 2, v16(bo, 6))]))
    add(f"{bo} short count 3 out of line", ifd(bo, [(0x112, 3, 3, v32(bo, 26))], extra=struct.pack(("<" if bo == "II" else ">") + "HHH", 8, 1, 1)))
    add(f"{bo} short count 3 past the end", ifd(bo, [(0x112, 3, 3, v32(bo, 400))]))
    add(f"{bo} long 6", ifd(bo, [(0x112, 4, 1, v32(bo, 6))]))
    add(f"{bo} long 0x10006", ifd(bo, [(0x112, 4, 1, v32(bo, 0x10006))]))
    add(f"{bo} byte 6", ifd(bo, [(0x112, 1, 1, b"\x06\0\0\0")]))
    add(f"{bo} sbyte 6", ifd(bo, [(0x112, 6, 1, b"\x06\0\0\0")]))
    add(f"{bo} ascii 6", ifd(bo, [(0x112, 2, 2, b"6\0\0\0")]))
    add(f"{bo} undefined 6", ifd(bo, [(0x112, 7, 1, b"\x06\0\0\0")]))
    add(f"{bo} sshort 8", ifd(bo, [(0x112, 8, 1, v16(bo, 8))]))
    add(f"{bo} slong 3", ifd(bo, [(0x112, 9, 1, v32(bo, 3))]))
    add(f"{bo} slong -6", ifd(bo, [(0x112, 9, 1, v32(bo, -6, "l"))]))
    add(f"{bo} float 6.0", ifd(bo, [(0x112, 11, 1, v32(bo, 6.0, "f"))]))
    add(f"{bo} float 6.5", ifd(bo, [(0x112, 11, 1, v32(bo, 6.5, "f"))]))
    add(f"{bo} rational 12/2", ifd(bo, [(0x112, 5, 1, v32(bo, 26))], extra=v32(bo, 12) + v32(bo, 2)))
    add(f"{bo} rational 6/0", ifd(bo, [(0x112, 5, 1, v32(bo, 26))], extra=v32(bo, 6) + v32(bo, 0)))
    add(f"{bo} srational -12/-2", ifd(bo, [(0x112, 10, 1, v32(bo, 26))], extra=v32(bo, -12, "l") + v32(bo, -2, "l")))
    add(f"{bo} double 8.0", ifd(bo, [(0x112, 12, 1, v32(bo, 26))], extra=struct.pack(("<" if bo == "II" else ">") + "d", 8.0)))
    add(f"{bo} ifd type 5", ifd(bo, [(0x112, 13, 1, v32(bo, 5))]))
    add(f"{bo} long8 7", ifd(bo, [(0x112, 16, 1, v32(bo, 26))], extra=struct.pack(("<" if bo == "II" else ">") + "Q", 7)))
    add(f"{bo} unknown type 0", ifd(bo, [(0x112, 0, 1, v16(bo, 6))]))
    add(f"{bo} unknown type 14", ifd(bo, [(0x112, 14, 1, v16(bo, 6))]))
    add(f"{bo} twice: last wins", ifd(bo, [(0x112, 3, 1, v16(bo, 6)), (0x112, 3, 1, v16(bo, 3))]))
    add(f"{bo} twice: empty second skipped", ifd(bo, [(0x112, 3, 1, v16(bo, 6)), (0x112, 3, 0, v16(bo, 3))]))
    add(f"{bo} bad entry after it", ifd(bo, [(0x112, 3, 1, v16(bo, 6)), (0x100, 3, 0xFFFFFFFF, v32(bo, 8))]))
    add(f"{bo} bad entry before it", ifd(bo, [(0x100, 3, 0xFFFFFFFF, v32(bo, 8)), (0x112, 3, 1, v16(bo, 6))]))
    add(f"{bo} unknown type before it", ifd(bo, [(0x100, 99, 0xFFFFFFFF, v32(bo, 8)), (0x112, 3, 1, v16(bo, 6))]))
    add(f"{bo} 9", ifd(bo, [(0x112, 3, 1, v16(bo, 9))]))
    add(f"{bo} 0", ifd(bo, [(0x112, 3, 1, v16(bo, 0))]))
    swapped = b"II\0*" if bo == "II" else b"MM*\0"
    add(f"{bo} swapped 42", ifd(bo, [(0x112, 3, 1, v16(bo, 6))], magic=swapped))
    add(f"{bo} bigtiff magic", ifd(bo, [(0x112, 3, 1, v16(bo, 6))], magic=(b"II+\0" if bo == "II" else b"MM\0+")))
    t = ifd(bo, [(0x112, 3, 1, v16(bo, 6))])
    add(f"{bo} truncated entry", t[:20])
    add(f"{bo} entry count past the end", t[:10] + b"\xff" + t[11:] if bo == "II" else t[:8] + b"\x00\x09" + t[10:])
    add(f"{bo} ifd offset past the end", t[:4] + v32(bo, 5000) + t[8:])
    add(f"{bo} ifd offset 0", t[:4] + v32(bo, 0) + t[8:])
    add(f"{bo} no Exif prefix", t, prefix=b"Exif\0X")

# Random mangling of a few realistic blocks: types, counts, offsets, bytes.
rnd = random.Random(8)
seeds = [ifd(bo, [(0x10F, 2, 6, v32(bo, 38)), (0x112, 3, 1, v16(bo, o)), (0x11A, 5, 1, v32(bo, 44))],
             extra=b"Canon\0" + v32(bo, 72) + v32(bo, 1)) for bo in ("MM", "II") for o in (3, 6, 8)]
for i in range(240):
    t = bytearray(rnd.choice(seeds))
    for _ in range(rnd.randint(1, 4)):
        n = len(t)
        try:
            k = rnd.random()
            if k < 0.3:  # the orientation entry's type
                t[10 + 12 + 2 + (1 if t[:2] == b"MM" else 0)] = rnd.choice([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 16, 255])
            elif k < 0.55:  # a count
                e = 10 + 12 * rnd.randint(0, 2) + 4
                t[e:e + 4] = rnd.choice([b"\0\0\0\0", b"\xff\xff\xff\xff", b"\0\0\0\x02", b"\x02\0\0\0", b"\0\0\0\x03", b"\x03\0\0\0"])
            elif k < 0.75:  # a value byte
                t[10 + 12 * rnd.randint(0, 2) + 8 + rnd.randint(0, 3)] = rnd.choice([0, 1, 3, 6, 8, 9, 38, 44, 200])
            elif k < 0.85:  # the entry count
                t[8 + rnd.randint(0, 1)] = rnd.choice([0, 1, 2, 3, 4, 255])
            elif k < 0.95:  # truncation
                t = t[: rnd.randint(0, len(t))]
            else:  # a tag becomes the orientation tag
                e = 10 + 12 * rnd.choice([0, 2])
                t[e:e + 2] = b"\x01\x12" if t[:2] == b"MM" else b"\x12\x01"
        except IndexError:
            pass
        if len(t) > n:  # a slice assignment past the end grew it
            t = t[:n]
    add(f"random {i}", bytes(t))

for c in cases:
    c["pillow"] = pil_orientation(bytes.fromhex(c["app1"]))
with open("exif_pillow.json", "w") as f:
    json.dump({"pillow": PIL.__version__, "cases": cases}, f, indent=0)
print(len(cases), "cases;", sum(c["pillow"] not in (1,) and not str(c["pillow"]).startswith("error") for c in cases), "rotate;",
      sum(str(c["pillow"]).startswith("error") for c in cases), "fail in Pillow")
for c in cases:
    if str(c["pillow"]).startswith("error"):
        print(" ", c["name"], c["pillow"])
