"""A toy temporal task shared by the engine tests: solvable only by looking at frame order."""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.data import Dataset


class ToyClips(Dataset):
    """Clips whose class is the sign of their temporal gradient: needs time to be solved."""

    def __init__(self, n: int, seed: int = 0):
        g = torch.Generator().manual_seed(seed)
        self.labels = torch.randint(0, 2, (n,), generator=g)
        base = torch.rand(n, 1, 1, 4, 4, generator=g)
        ramp = torch.linspace(-0.5, 0.5, 4).view(1, 1, 4, 1, 1)
        direction = torch.where(self.labels == 1, 1.0, -1.0).view(n, 1, 1, 1, 1)
        self.videos = (base + direction * ramp).expand(n, 3, 4, 4, 4).clone()

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"video": self.videos[i], "label": self.labels[i]}


class TinyNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv3d(3, 4, kernel_size=(3, 1, 1))
        self.drop = nn.Dropout(0.2)
        self.fc = nn.Linear(4, 2)

    def forward(self, x):
        return self.fc(self.drop(self.conv(x).mean(dim=(2, 3, 4))))
