"""Train a recurrence exported to PyTorch with DistributedDataParallel (data parallel, one batch split over
processes).

    python examples/train_ddp.py                          # fig10_3, 2 processes on this CPU (gloo, loopback)
    python examples/train_ddp.py --arch lstm --world-size 2 --steps 20 --batch 64
    torchrun --nproc-per-node 4 examples/train_ddp.py --arch lstm     # torchrun starts the processes
    torchrun --nnodes 2 --node-rank 0 --nproc-per-node 8 --master-addr HOST --master-port 29500 \\
        examples/train_ddp.py --arch lstm                 # a cluster: the same line on each node (node-rank 0, 1)

The script exports the spec with ``graphrnn.export.to_torch`` and writes the file (``--out``); the training
processes import that file only, so a node needs torch, not graphrnn (under torchrun, each process exports it
for itself).  On GPUs (``torch.cuda.is_available()``) each process takes the GPU of its local rank and the
NCCL backend; on CPUs, gloo.

**The loss is a sum, DDP averages.**  graphrnn's loss (and the exported module's) is the SUM over the sequences
of the batch (eq. 10.13).  Each of the W processes computes the loss of its share of the batch, and DDP
averages the gradients of the W processes: mean_r ∇loss_r = (1/W) ∇(Σ_r loss_r) = (1/W) ∇loss(whole batch).
So each process back-propagates ``W * loss_r``: the averaged gradient is then exactly the gradient of the
whole batch's summed loss, the gradient one process would compute on the combined batch, and the optimizer's
learning rate means the same thing whatever W is.

``--report FILE.json`` writes, from rank 0, the combined batch's loss before each step and the gradients of
the first step, which ``tests/export/test_train_ddp.py`` compares with one process on the combined batch.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import socket
import sys
import tempfile
from pathlib import Path

import numpy as np


def import_exported(path: str):
    """The exported file as a module (it imports torch only)."""
    spec = importlib.util.spec_from_file_location("exported_model", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def shard(data: dict, rank: int, world: int) -> dict:
    """This process's share of the batch: every array's sequences are on its last axis (graphrnn's layout)."""
    return {name: np.array_split(array, world, axis=-1)[rank] for name, array in data.items()}


def worker(rank: int, world: int, model_file: str, params: dict, data: dict, steps: int, lr: float,
           report: str | None) -> None:
    """One training process: its share of the batch, the exported module wrapped in DDP, ``steps`` SGD steps."""
    import torch
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel as DDP

    gpu = torch.cuda.is_available()
    local = int(os.environ.get("LOCAL_RANK", rank))
    device = torch.device("cuda", local) if gpu else torch.device("cpu")
    if gpu:
        torch.cuda.set_device(device)
    dist.init_process_group("nccl" if gpu else "gloo", rank=rank, world_size=world)
    try:
        model = import_exported(model_file).make_model(params).to(device)
        ddp = DDP(model, device_ids=[local] if gpu else None)
        optimizer = torch.optim.SGD(ddp.parameters(), lr=lr)
        mine = {name: torch.as_tensor(array, device=device) for name, array in shard(data, rank, world).items()}
        losses, first_grads = [], None
        for _ in range(steps):
            optimizer.zero_grad()
            loss = ddp(mine)
            (loss * world).backward()  # DDP averages over the W processes; the loss is a sum (see above)
            total = loss.detach().clone()
            dist.all_reduce(total)  # the whole batch's loss: the sum of the shares
            losses.append(float(total))
            if first_grads is None:
                first_grads = {n: p.grad.detach().cpu().numpy().tolist() for n, p in model.named_parameters()}
            optimizer.step()
        if rank == 0:
            split = [a.shape[-1] for a in np.array_split(np.zeros((1, batch_size(data))), world, axis=-1)]
            print(f"{world} processes, the batch split {split}: loss {losses[0]:.6f} -> {losses[-1]:.6f} "
                  f"in {steps} steps")
            if report:
                Path(report).write_text(json.dumps({"world": world, "losses": losses, "grads": first_grads}))
    finally:
        dist.destroy_process_group()


def batch_size(data: dict) -> int:
    return next(iter(data.values())).shape[-1]


def free_port() -> int:
    """A port nobody listens on, on the loopback interface."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _setup(args):
    """Export the spec, and make the initial parameters and the data (the same in every process: seeded)."""
    import graphrnn as gr

    rec = gr.load(args.arch)
    source = gr.export.to_torch(rec)
    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="graphrnn_ddp_")) / f"{rec.name}_model.py"
    out.write_text(source, encoding="utf-8")
    params = rec.init_params(seed=args.seed)
    data = rec.random_inputs(args.T, batch=args.batch, seed=args.seed)
    return str(out), params, data


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--arch", default="fig10_3", help="a zoo name or a .rnn file (default fig10_3)")
    parser.add_argument("--world-size", type=int, default=2, help="processes to start (without torchrun)")
    parser.add_argument("--steps", type=int, default=5, help="SGD steps (default 5)")
    parser.add_argument("--lr", type=float, default=0.01, help="SGD learning rate (default 0.01)")
    parser.add_argument("--batch", type=int, default=8, help="sequences in the whole batch (default 8)")
    parser.add_argument("-T", type=int, default=6, help="steps of each sequence (default 6)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", help="where to write the exported model (default: a temporary folder)")
    parser.add_argument("--start-method", choices=("spawn", "fork"), default="spawn",
                        help="how to start the processes without torchrun: spawn (default, everywhere) or fork "
                             "(Linux: faster, the processes inherit the imports)")
    parser.add_argument("--report", help="write rank 0's losses and first gradients to this JSON file")
    args = parser.parse_args(argv)
    model_file, params, data = _setup(args)
    if "RANK" in os.environ:  # started by torchrun, which set RANK, WORLD_SIZE, MASTER_ADDR and MASTER_PORT
        worker(int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]), model_file, params, data, args.steps,
               args.lr, args.report)
        return 0
    import torch.multiprocessing as mp

    if args.start_method == "fork":
        # the processes inherit what is imported here: torch, and torch._dynamo, which DDP imports when it is
        # first constructed (seconds each); imported once here instead of once in every process
        import torch._dynamo  # noqa: F401
    os.environ["MASTER_ADDR"] = "127.0.0.1"  # this machine only: loopback
    os.environ["MASTER_PORT"] = str(free_port())
    mp.start_processes(worker, args=(args.world_size, model_file, params, data, args.steps, args.lr, args.report),
                       nprocs=args.world_size, join=True, start_method=args.start_method)
    return 0


if __name__ == "__main__":
    sys.exit(main())
