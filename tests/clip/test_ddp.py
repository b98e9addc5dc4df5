"""DDP with two gloo processes on CPU: gathered teacher targets, the loss, its gradients and a training step all
equal the single-process computation on the same global batch."""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp

HERE = Path(__file__).parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _inputs():
    import torch.nn.functional as F

    g = torch.Generator().manual_seed(0)
    b, d, dims = 8, 6, (5, 3)
    img = F.normalize(torch.randn(b, d, generator=g, dtype=torch.float64), dim=-1)
    txt = F.normalize(torch.randn(b, d, generator=g, dtype=torch.float64), dim=-1)
    t_img = torch.cat([F.normalize(torch.randn(b, k, generator=g, dtype=torch.float64), dim=-1) for k in dims], 1)
    t_txt = torch.cat([F.normalize(torch.randn(b, k, generator=g, dtype=torch.float64), dim=-1) for k in dims], 1)
    return img, txt, t_img, t_txt, dims


def _worker(rank: int, world: int, port: int, out_dir: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world),
                      LOCAL_RANK=str(rank))
    sys.path.insert(0, str(HERE))
    torch.set_num_threads(1)
    from quartet.clip.loss import ReinforcedClipLoss
    from quartet.core.distributed import all_gather_cat, cleanup, init_distributed

    init_distributed("cpu", timeout_s=120)
    img, txt, t_img, t_txt, dims = _inputs()
    per = img.shape[0] // world
    sl = slice(rank * per, (rank + 1) * per)
    li, lt = img[sl].clone().requires_grad_(), txt[sl].clone().requires_grad_()
    out = ReinforcedClipLoss(0.5, dims, (40.0, 10.0))(li, lt, torch.tensor(20.0, dtype=torch.float64),
                                                      t_img[sl], t_txt[sl], lt, t_txt[sl])
    (out["loss"] * world).backward()
    grads = all_gather_cat(torch.cat([li.grad, lt.grad], 1))
    if rank == 0:
        np.savez(Path(out_dir) / "loss.npz", loss=out["loss"].detach().numpy(), grads=grads.numpy())

    # two training steps of a BatchNorm-free student on the same global batch
    from train_fixtures import make_table

    from quartet.clip.train import TrainConfig, train

    images = np.random.default_rng(0).integers(0, 255, (16, 40, 40, 3), dtype=np.uint8)
    table = make_table(images, [f"item {i}" for i in range(16)], n_aug=2, n_syn=2)
    res = train(TrainConfig(model="ViT-micro", image_size=32, steps=2, batch_size=8, warmup=1, log_every=1,
                            out=str(Path(out_dir) / "ddp-run")), table=table, quiet=True)
    if rank == 0:
        torch.save({k: v.clone() for k, v in res.bundle.model.state_dict().items()}, Path(out_dir) / "ddp.pt")
    cleanup()


def test_two_gloo_ranks_equal_one_process(tmp_path):
    if not torch.distributed.is_available():
        pytest.skip("torch.distributed unavailable")
    mp.start_processes(_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True, start_method="spawn")

    from quartet.clip.loss import ReinforcedClipLoss

    img, txt, t_img, t_txt, dims = _inputs()
    img.requires_grad_()
    txt.requires_grad_()
    want = ReinforcedClipLoss(0.5, dims, (40.0, 10.0), gather=False)(img, txt, torch.tensor(20.0, dtype=torch.float64),
                                                                      t_img, t_txt, txt, t_txt)
    want["loss"].backward()
    got = np.load(tmp_path / "loss.npz")
    np.testing.assert_allclose(got["loss"], want["loss"].detach().numpy(), rtol=1e-12)
    # each rank's slice gets dL/d(slice) scaled by the world size; DDP's mean over ranks then restores the
    # single-process parameter gradient (checked by the training step below)
    np.testing.assert_allclose(got["grads"], 2 * torch.cat([img.grad, txt.grad], 1).numpy(), atol=1e-12)

    from train_fixtures import make_table

    from quartet.clip.train import TrainConfig, train

    images = np.random.default_rng(0).integers(0, 255, (16, 40, 40, 3), dtype=np.uint8)
    table = make_table(images, [f"item {i}" for i in range(16)], n_aug=2, n_syn=2)
    single = train(TrainConfig(model="ViT-micro", image_size=32, steps=2, batch_size=8, warmup=1, log_every=1,
                               out=str(tmp_path / "single-run")), table=table, quiet=True)
    ddp = torch.load(tmp_path / "ddp.pt", weights_only=True)
    for k, v in single.bundle.model.state_dict().items():
        torch.testing.assert_close(ddp[k], v, atol=2e-5, rtol=1e-4, msg=k)
