"""How fast SOLIDER's 2 + 8 multi-crop can be fed: per image in PIL on one CPU core (what the
official code and `MultiCropTransform` do in loader workers) against batched on a device
(`DeviceMultiCrop`), with JPEG decoding counted in both.

    python benchmarks/multicrop_pipeline.py --device cuda --batch 256
    python benchmarks/multicrop_pipeline.py --device cpu --batch 32 --images 64

Inputs are synthetic 256x128 person images encoded as JPEG (quality 90), as LUPerson ships
them. The PIL figure is per core: a host with C free cores feeds about C times that. The device
figure is one process: decode (torchvision.io.decode_jpeg, on the device where it is CUDA) and
crops. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import datetime
import io
import json
import time

import torch
from PIL import Image
from step_timing import device_name, sync
from torchvision.io import decode_jpeg

from humanssl.data.device_multicrop import DeviceMultiCrop
from humanssl.data.synthetic import SyntheticPersons
from humanssl.data.transforms import MultiCropConfig, MultiCropTransform


def jpeg_files(count: int) -> list[bytes]:
    world = SyntheticPersons(seed=0, num_cameras=6, image_size=(256, 128))
    files = []
    for i in range(count):
        buf = io.BytesIO()
        world.render(1 + i % 50, 1 + i % 6, i).save(buf, format="JPEG", quality=90)
        files.append(buf.getvalue())
    return files


def pil_images_per_second(files: list[bytes], cfg: MultiCropConfig) -> float:
    transform = MultiCropTransform(cfg)
    t0 = time.perf_counter()
    for data in files:
        transform(Image.open(io.BytesIO(data)).convert("RGB"))
    return len(files) / (time.perf_counter() - t0)


def device_images_per_second(files: list[bytes], cfg: MultiCropConfig, device: torch.device, batch: int,
                             repeats: int) -> float:
    crops = DeviceMultiCrop(cfg)
    raw = [torch.frombuffer(bytearray(d), dtype=torch.uint8) for d in files[:batch]]
    decode_on = "cuda" if device.type == "cuda" else "cpu"

    def one_batch():
        images = torch.stack(decode_jpeg(raw, device=decode_on)).to(device)
        return crops({"image": images})

    one_batch()  # warm-up
    sync(device)
    t0 = time.perf_counter()
    for _ in range(repeats):
        one_batch()
    sync(device)
    return repeats * len(raw) / (time.perf_counter() - t0)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--images", type=int, default=256, help="images for the PIL timing")
    p.add_argument("--repeats", type=int, default=10)
    args = p.parse_args()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the PIL figure is per core
    cfg = MultiCropConfig()  # the official sizes: 2 x 256x128 + 8 x 128x64
    files = jpeg_files(max(args.images, args.batch))
    pil = pil_images_per_second(files[: args.images], cfg)
    torch.set_num_threads(threads)
    device = torch.device(args.device)
    dev = device_images_per_second(files, cfg, device, args.batch, args.repeats)
    print(json.dumps({
        "device": device_name(device), "date": datetime.date.today().isoformat(), "torch": torch.__version__,
        "crops": "2x256x128 + 8x128x64", "pil_img_per_s_per_core": round(pil, 1),
        "device_batch": args.batch, "device_img_per_s": round(dev, 1),
    }))


if __name__ == "__main__":
    main()
