"""Training on several processes with ``torchrun`` (DistributedDataParallel), and its ranks.

torchrun is the launcher: it starts one process per GPU (or CPU worker) and sets ``RANK``,
``LOCAL_RANK``, ``WORLD_SIZE``, ``MASTER_ADDR`` and ``MASTER_PORT``. :func:`init_from_env`
joins the process group those variables describe (NCCL on GPUs, gloo on CPUs), once; without
them it does nothing and everything runs as one process. :func:`hartutor.train.fit` then splits
each epoch's shuffled clips over the ranks (the same permutation as one process, so a global
batch holds the same clips), averages gradients, sums the training metrics over the ranks and
lets rank 0 alone print, evaluate and write checkpoints.

    torchrun --nproc_per_node=4 -m hartutor train i3d --data ~/data/ucf101 ...
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch.utils.data import Sampler


@dataclass(frozen=True)
class World:
    """This process's place among the training processes."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        """Rank 0: the one that prints, evaluates and writes files."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1


def world() -> World:
    """The current process group's rank and size (one process when none is initialised)."""
    if dist.is_available() and dist.is_initialized():
        local = int(os.environ.get("LOCAL_RANK", 0))
        return World(dist.get_rank(), dist.get_world_size(), local)
    return World()


def init_from_env(device: str = "auto") -> World:
    """Join the process group that torchrun's environment describes; idempotent.

    ``device``: ``"auto"`` picks NCCL when CUDA is available, else gloo; each rank then uses
    the GPU ``LOCAL_RANK``. Without ``WORLD_SIZE`` > 1 this returns a one-process world.
    """
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or not dist.is_available():
        return world()
    if not dist.is_initialized():
        use_cuda = torch.cuda.is_available() and device in ("auto", "cuda")
        if use_cuda:
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    return world()


def device_for(device: str) -> torch.device:
    """The device of this rank: ``cuda:LOCAL_RANK`` under torchrun with CUDA, else ``device``."""
    here = world()
    resolved = "cuda" if device == "auto" and torch.cuda.is_available() else device
    if resolved == "auto":
        resolved = "cpu"
    if resolved == "cuda" and here.distributed:
        return torch.device("cuda", here.local_rank)
    return torch.device(resolved)


def all_sum(values: list[float], device: torch.device) -> list[float]:
    """Sum a few numbers over the ranks (a no-op in one process)."""
    if not world().distributed:
        return values
    tensor = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(tensor)
    return tensor.tolist()


def barrier() -> None:
    """Wait for every rank (a no-op in one process)."""
    if world().distributed:
        dist.barrier()


class RankShare(Sampler[int]):
    """This rank's clips of an epoch: every ``size``-th index of one process's order.

    One process's shuffled order is that of fit's ``DataLoader(shuffle=True, generator=g)``
    with ``g = hartutor.train.epoch_generator(seed)``: the loader's iterator draws one number
    from ``g`` for worker seeds, then the sampler draws ``randperm(n)``. Reproducing that order
    (not torch's ``DistributedSampler``, which draws its own permutation) makes step ``k``'s
    global batch the same clips whatever the number of processes, and a run resumable with
    another. The order is padded by repeating its start to a multiple of the number of ranks,
    as ``DistributedSampler`` pads.
    """

    def __init__(
        self, num_items: int, *, seed: int, shuffle: bool = True, here: World | None = None
    ):
        self.num_items, self.seed, self.shuffle = num_items, seed, shuffle
        self.here = here or world()

    def order(self) -> list[int]:
        """The whole epoch's order, as one process would draw it."""
        if not self.shuffle:
            return list(range(self.num_items))
        from hartutor.train import epoch_generator

        generator = epoch_generator(self.seed)
        torch.empty((), dtype=torch.int64).random_(generator=generator)  # the loader's draw
        return torch.randperm(self.num_items, generator=generator).tolist()

    def __iter__(self) -> Iterator[int]:
        order = self.order()
        padded = order + order[: (-len(order)) % self.here.size]
        return iter(padded[self.here.rank :: self.here.size])

    def __len__(self) -> int:
        return -(-self.num_items // self.here.size)
