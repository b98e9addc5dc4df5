"""Training throughput: reinforced vs plain CLIP vs online distillation, interleaved in one run.

All three arms train the same student (``MCi-nano``) on the same data with the same global batch; they differ only
in where the teacher targets come from: nothing (plain CLIP loss on real captions), rows read from the reinforced
table (reinforced: one extra text forward for the synthetic-caption batch plus a row gather), or the teacher
ensemble run on every step's views and captions (online). Arms are interleaved (core.bench.interleaved) so machine
load hits all of them alike; the printed ratios are against numbers measured in the same run.

Targets (issue): reinforced >= 0.85x plain; reinforced >= 3x online when the teachers cost >= 4x the student's
FLOPs (reported below from torch's FLOP counter).

    python benchmarks/clip/train.py --batch-size 32 --repeats 5
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import torch


def build_table(n: int, crop: int, n_aug: int, n_syn: int, ensemble, seed: int = 0):
    """Emoji training pairs with stored views and teacher embeddings, computed the way reinforcement does."""
    from PIL import Image

    from quartet import data
    from quartet.clip.augment import AugConfig, apply_record, sample_record
    from quartet.clip.evaluate import heldout_split
    from quartet.clip.train_data import ReinforcedTable

    ds = data.load("emoji", size=64)
    ds = ds.subset(heldout_split(len(ds))[0][:n])
    rng = np.random.default_rng(seed)
    cfg = AugConfig(crop_size=crop)
    pils = [Image.fromarray(a) for a in ds.images]
    aug = [[sample_record(rng, 64, 64, cfg) for _ in range(n_aug)] for _ in pils]
    syn = [[f"an emoji of {c}", f"a picture of {c}", f"{c} icon"][:n_syn] for c in ds.captions]
    with torch.no_grad():
        iemb = [ensemble.encode_images([apply_record(im, r, crop) for r in recs]).numpy() for im, recs in
                zip(pils, aug)]
        temb = ensemble.encode_texts(list(ds.captions)).numpy()
        semb = [ensemble.encode_texts(s).numpy() for s in syn]
    return ReinforcedTable([str(i) for i in range(len(pils))], pils, list(ds.captions), syn, aug, iemb, temb, semb,
                           ensemble.names, ensemble.dims, ensemble.scales, {"crop_size": crop})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--student", default="MCi-nano")
    ap.add_argument("--teachers", default="MCi-micro,ViT-micro")
    ap.add_argument("--image-size", type=int, default=32, help="student resolution")
    ap.add_argument("--crop-size", type=int, default=32, help="stored view size = teacher input size")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--samples", type=int, default=256)
    ap.add_argument("--steps-per-call", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", default="", help="also write the results here")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    from quartet.clip.models import create_model, flops_per_sample
    from quartet.clip.teachers import OpenClipTeacher, TeacherEnsemble
    from quartet.clip.train import TrainConfig, setup
    from quartet.core.bench import interleaved

    torch.manual_seed(0)
    teachers, t_flops = [], 0.0
    for k, name in enumerate(args.teachers.split(",")):
        b = create_model(name, image_size=args.crop_size)
        f = flops_per_sample(b)
        t_flops += f["image"] + 2 * f["text"]  # online: one view + real and synthetic caption per sample
        teachers.append(OpenClipTeacher.from_model(b.model, f"t{k}-{name}", args.crop_size, b.mean, b.std,
                                                   b.tokenizer))
    ens = TeacherEnsemble(teachers)
    sb = create_model(args.student, image_size=args.image_size)
    sf = flops_per_sample(sb)
    s_flops = sf["image"] + 2 * sf["text"]  # forward, same inputs as the teachers see
    table = build_table(args.samples, args.crop_size, 2, 2, ens)

    students = {}
    for mode in ("reinforced", "plain", "online"):
        cfg = TrainConfig(model=args.student, mode=mode, image_size=args.image_size, batch_size=args.batch_size,
                          steps=10**6, warmup=10, kd_scales=[50.0])
        students[mode] = setup(cfg, table=table, teachers=ens if mode == "online" else None)
    counters = dict.fromkeys(students, 0)

    def arm(mode: str):
        def run() -> None:
            for _ in range(args.steps_per_call):
                students[mode].step(counters[mode])
                counters[mode] += 1
        return run

    work = {m: float(args.batch_size * args.steps_per_call) for m in students}
    res = interleaved({m: arm(m) for m in students}, repeats=args.repeats, warmup=1, work=work)
    print(res.table(baseline="plain", unit="samples"))
    r_plain = res.ratio("reinforced", "plain")
    r_online = res.ratio("reinforced", "online")
    flop_ratio = t_flops / s_flops
    print(f"\nforward FLOPs per sample (1 view + real + synthetic caption): student {s_flops / 1e6:.1f} M, "
          f"teachers {t_flops / 1e6:.1f} M ({flop_ratio:.1f}x the student; training the student costs ~3x its forward)")
    print(f"reinforced / plain  = {r_plain:.3f}x   (target >= 0.85)  {'MET' if r_plain >= 0.85 else 'MISSED'}")
    print(f"reinforced / online = {r_online:.3f}x   (target >= 3 when teachers >= 4x student FLOPs)  "
          f"{'MET' if r_online >= 3 else 'MISSED'}")
    print(f"plain / online      = {res.ratio('plain', 'online'):.3f}x")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"samples_per_s": {m: res.throughput(m) for m in students}, "reinforced_vs_plain": r_plain,
                       "reinforced_vs_online": r_online, "student_forward_mflops": s_flops / 1e6,
                       "teacher_mflops": t_flops / 1e6, "args": vars(args)}, f, indent=2)


if __name__ == "__main__":
    main()
