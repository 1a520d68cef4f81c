"""One epoch of ``fit`` on the stand-in UCF101, run by tests/test_distributed.py (alone or
under torchrun): a C3D without dropout (no BatchNorm either) on deterministic clips, so that
one process and two must give the same weights. SGD, whose step is linear in the gradient:
with AdamW (which divides by the gradient's running size) conv3b's weights of the two runs
differed by more than 1e-4 here, the last-bit differences of the two-process gradient sum
grown into whole steps where gradients are near zero."""

from __future__ import annotations

import sys

from hartutor.distributed import init_from_env
from hartutor.models import build_model
from hartutor.train import TrainConfig, fit, seed_everything
from hartutor.ucf101 import UCF101

root, out = sys.argv[1], sys.argv[2]
epochs = int(sys.argv[3]) if len(sys.argv) > 3 else 1
resume = "--resume" in sys.argv
if "--stop-after-epoch-1" in sys.argv:  # a restart: every rank stops once epoch 1 is saved
    import hartutor.distributed

    _barrier = hartutor.distributed.barrier

    def _stop() -> None:
        _barrier()
        raise SystemExit(0)

    hartutor.distributed.barrier = _stop
init_from_env("cpu")
seed_everything(0)
model = build_model("c3d", preset="tiny", num_classes=101, dropout=0.0)
data = UCF101(root, split=1, subset="train", num_frames=16, size=(64, 64), clip_sampling="uniform")
config = TrainConfig(
    epochs=epochs, batch_size=4, lr=0.05, optimizer="sgd", device="cpu", progress=False, seed=3
)
result = fit(
    model, data, config=config, checkpoint_path=out, resume=resume, model_meta={"name": "c3d"}
)
print("history", result.history[-1].train_loss, len(data))
