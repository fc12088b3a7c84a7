"""Fine-tune an ImageNet-pretrained timm ViT on FER-2013 and export the checkpoint the app ships.

Runs on the CPU, one GPU, or several (``torchrun --nproc_per_node N -m training.train ...``;
two CPU processes work too, with the gloo backend). The loop reads top to bottom:

1. config and distributed setup      5. resume from ``last.pt`` if asked
2. data: the official split           6. per epoch: augment, forward, loss, step, EMA
3. model from pretrained weights      7. evaluate on PublicTest, log, checkpoint, export the best
4. optimizer with layer-wise decay    8. a one-line summary

Example:
    python -m training.train --data ../shared/data/fer2013.npz \
        --pretrained-file ../shared/weights/deit_tiny_patch16_224.fb_in1k_lnq.safetensors \
        --img-size 112 --epochs 12 --out runs/deit112
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import logging
import math
import os
import random
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from timm.optim import create_optimizer_v2
from timm.utils import ModelEmaV3
from tqdm import tqdm

from fer.checkpoint import ModelConfig, build_model, load_checkpoint, save_checkpoint
from fer.preprocess import PreprocessConfig, normalize
from training.augment import AugmentConfig, augment_batch, mix_batch
from training.data import FerData, load_fer2013

logger = logging.getLogger("training.train")


@dataclass
class TrainConfig:
    """Every setting of a run; saved into the log and the checkpoint."""

    data: str = "../shared/data/fer2013.npz"
    out: str = "runs/train"
    model: str = "deit_tiny_patch16_224"
    pretrained_file: str | None = None  # local ImageNet weights; None + hub_pretrained: timm Hub weights
    init_checkpoint: str | None = None  # fine-tune a trained checkpoint folder (all weights, head too)
    hub_pretrained: bool = False
    img_size: int = 112
    epochs: int = 12
    batch_size: int = 64  # global, split across processes
    lr: float = 5e-4
    min_lr: float = 1e-6
    warmup_epochs: float = 1.0
    weight_decay: float = 0.05
    layer_decay: float = 0.75
    label_smoothing: float = 0.1
    class_weight_power: float = 0.3  # loss weight per class = (count / mean count) ** -power
    ferplus_votes: str | None = None  # FER+ votes file (ferplus_votes.npz): soft targets from the votes
    ferplus_weight: float = 0.0  # target = (1 - w) * FER-2013 one-hot + w * FER+ vote distribution
    ferplus_min_share: float = 0.5  # with FER+ on, drop rows whose votes are mostly contempt / unknown / not-a-face
    drop_path: float = 0.1
    ema_decay: float = 0.999
    grad_clip: float = 1.0
    scale_min: float = 0.75
    rotation: float = 15.0
    erase: float = 0.25
    mixup: float = 0.0
    cutmix: float = 0.0
    seed: int = 0
    workers_threads: int = 0  # torch threads per process; 0 = torch default
    eval_batch_size: int = 256
    limit_train: int = 0  # use only the first N training rows (tests, quick checks)
    limit_eval: int = 0
    resume: bool = False
    device: str = "auto"


def parse_args(argv: list[str] | None) -> TrainConfig:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    for f in dataclasses.fields(TrainConfig):
        flag = "--" + f.name.replace("_", "-")
        if f.type == "bool":
            parser.add_argument(flag, action="store_true", default=f.default)
        else:
            kind = {"int": int, "float": float}.get(str(f.type), str)
            parser.add_argument(flag, type=kind, default=f.default)
    return TrainConfig(**vars(parser.parse_args(argv)))


def lr_at(step: int, total: int, warmup: int, config: TrainConfig) -> float:
    """Linear warmup, then cosine decay to ``min_lr``."""
    if step < warmup:
        return config.lr * (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return config.min_lr + 0.5 * (config.lr - config.min_lr) * (1 + math.cos(math.pi * min(1.0, progress)))


@torch.inference_mode()
def predict_probabilities(
    model: torch.nn.Module, pixels: torch.Tensor, preprocess: PreprocessConfig, batch_size: int, flip_tta: bool = False
) -> torch.Tensor:
    """Class probabilities ``(N, C)`` for ``(N, 48, 48)`` uint8 faces, on the model's device."""
    model.eval()
    device = next(model.parameters()).device
    outputs = []
    for start in range(0, len(pixels), batch_size):
        batch = normalize(pixels[start : start + batch_size].to(device).float().div(255).unsqueeze(1), preprocess)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            probs = model(batch).float().softmax(-1)
            if flip_tta:
                probs = (probs + model(batch.flip(-1)).float().softmax(-1)) / 2
        outputs.append(probs.float())
    return torch.cat(outputs)


def main(argv: list[str] | None = None) -> dict:
    # 1. Config and distributed setup -------------------------------------------------------
    config = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if config.device == "auto":
        device = torch.device(f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu")
    else:
        device = torch.device(config.device)
    if world > 1:
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    if device.type == "cuda":
        torch.cuda.set_device(device)
        torch.backends.cuda.matmul.allow_tf32 = True
    if config.workers_threads:
        torch.set_num_threads(config.workers_threads)
    is_main = rank == 0
    torch.manual_seed(config.seed + rank)
    np.random.seed(config.seed + rank)
    random.seed(config.seed + rank)
    out = Path(config.out)
    if is_main:
        out.mkdir(parents=True, exist_ok=True)

    # 2. Data: train on Training, select on PublicTest (PrivateTest is for training.evaluate) --
    data: FerData = load_fer2013(config.data, config.ferplus_votes)
    # With FER+ on, the rows FER+ dropped (no votes) and the rows whose annotators mostly said
    # contempt, unknown or not-a-face are left out: neither label is trustworthy there.
    train = data.split("Training").head(config.limit_train)
    if train.ferplus_share is not None:
        kept = train.ferplus_share >= config.ferplus_min_share
        logger.info("FER+: %d of %d training rows kept (>= %.0f%% of votes in the 7 classes)", kept.sum(), len(train),
                    100 * config.ferplus_min_share)
        train = train.select(kept)
    public = data.split("PublicTest").head(config.limit_eval)
    num_classes = len(data.classes)
    train_pixels = torch.from_numpy(train.pixels).to(device)
    train_labels = torch.from_numpy(train.labels).to(device)
    targets = F.one_hot(train_labels, num_classes).float()
    if train.soft_labels is not None:
        weight = config.ferplus_weight
        targets = (1 - weight) * targets + weight * torch.from_numpy(train.soft_labels).to(device)
    counts = targets.sum(0).clamp(min=1)  # class mass of the targets
    class_weight = (counts / counts.mean()) ** -config.class_weight_power
    class_weight = class_weight / (class_weight * counts).sum() * counts.sum()  # mean weight per sample = 1

    # 3. Model from pretrained weights ------------------------------------------------------
    preprocess = PreprocessConfig(input_size=config.img_size)
    model_config = ModelConfig(architecture=config.model, label_names=data.classes, preprocess=preprocess,
                               model_args={"img_size": config.img_size})
    if config.init_checkpoint:
        # Fine-tune our own checkpoint: its config (architecture, size, preprocessing) wins.
        initial, model_config = load_checkpoint(config.init_checkpoint)
        model_config = dataclasses.replace(model_config, extra={})
        preprocess = model_config.preprocess
        if preprocess.input_size != config.img_size or model_config.label_names != data.classes:
            raise ValueError(f"{config.init_checkpoint} is {preprocess.input_size} px with labels {model_config.label_names}; "
                             f"this run asks for {config.img_size} px and {data.classes}")
        model = build_model(dataclasses.replace(model_config, model_args={**model_config.model_args, "drop_path_rate": config.drop_path}))
        model.load_state_dict(initial.state_dict())
        del initial
    else:
        model = build_model(dataclasses.replace(model_config, model_args={**model_config.model_args, "drop_path_rate": config.drop_path}),
                            pretrained_file=config.pretrained_file, pretrained=config.hub_pretrained)
        pretrained_cfg = getattr(model, "pretrained_cfg", {})
        preprocess = PreprocessConfig(input_size=config.img_size, mean=tuple(pretrained_cfg.get("mean", preprocess.mean)),
                                      std=tuple(pretrained_cfg.get("std", preprocess.std)))
        model_config = dataclasses.replace(model_config, preprocess=preprocess)
    model.to(device)
    ema = ModelEmaV3(model, decay=config.ema_decay, device=device)
    wrapped = torch.nn.parallel.DistributedDataParallel(model, device_ids=[local_rank] if device.type == "cuda" else None) if world > 1 else model

    # 4. Optimizer: AdamW, layer-wise lr decay, warmup + cosine -------------------------------
    optimizer = create_optimizer_v2(model, opt="adamw", lr=config.lr, weight_decay=config.weight_decay, layer_decay=config.layer_decay)
    per_rank_batch = max(1, config.batch_size // world)
    steps_per_epoch = len(train_pixels) // (per_rank_batch * world)
    if steps_per_epoch == 0:
        raise ValueError(f"{len(train_pixels)} training faces are fewer than one batch of {config.batch_size}")
    total_steps = steps_per_epoch * config.epochs
    warmup_steps = int(config.warmup_epochs * steps_per_epoch)
    augment = AugmentConfig(scale=(config.scale_min, 1.0), rotation=config.rotation, erase=config.erase,
                            mixup=config.mixup, cutmix=config.cutmix)

    # 5. Resume -------------------------------------------------------------------------------
    start_epoch, history, best = 0, [], {"accuracy": -1.0}
    last_path = out / "last.pt"
    if config.resume and last_path.exists():
        state = torch.load(last_path, map_location=device, weights_only=False)
        model.load_state_dict(state["model"])
        ema.module.load_state_dict(state["ema"])
        optimizer.load_state_dict(state["optimizer"])
        start_epoch, history, best = state["epoch"], state["history"], state["best"]
        logger.info("resumed from %s at epoch %d", last_path, start_epoch)
    elif config.resume:
        logger.info("no %s yet: starting fresh", last_path)

    # 6-7. Epochs ---------------------------------------------------------------------------
    # Model selection: FER+ majority accuracy on PublicTest when training on FER+ votes, else FER-2013's.
    public_pixels = torch.from_numpy(public.pixels)
    public_labels = torch.from_numpy(public.labels)
    public_majority = None if public.ferplus_majority is None else torch.from_numpy(public.ferplus_majority)
    select_key = "public_ferplus_acc_{}" if public_majority is not None else "public_acc_{}"
    started = time.time()
    for epoch in range(start_epoch, config.epochs):
        model.train()
        generator = torch.Generator(device=device).manual_seed(config.seed * 1000 + epoch)
        order = torch.randperm(len(train_pixels), generator=generator, device=device)
        aug_generator = torch.Generator(device=device).manual_seed(config.seed * 1000 + epoch * 7919 + rank + 1)
        epoch_loss, epoch_start = 0.0, time.time()
        bar = tqdm(range(steps_per_epoch), desc=f"epoch {epoch + 1}/{config.epochs}", disable=not is_main, mininterval=5)
        for step_in_epoch in bar:
            step = epoch * steps_per_epoch + step_in_epoch
            lr = lr_at(step, total_steps, warmup_steps, config)
            for group in optimizer.param_groups:
                group["lr"] = lr * group.get("lr_scale", 1.0)
            first = step_in_epoch * per_rank_batch * world + rank * per_rank_batch
            index = order[first : first + per_rank_batch]
            images = augment_batch(train_pixels[index].float().div(255).unsqueeze(1), config.img_size, augment, aug_generator)
            batch_targets = targets[index]
            images, batch_targets = mix_batch(images, batch_targets, augment, aug_generator)
            images = normalize(images, preprocess)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
                logits = wrapped(images)
            smoothed = batch_targets * (1 - config.label_smoothing) + config.label_smoothing / num_classes
            per_sample = -(smoothed * logits.float().log_softmax(-1)).sum(-1)
            weights = (batch_targets * class_weight).sum(-1)
            loss = (per_sample * weights).mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if config.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
            optimizer.step()
            ema.update(model, step=step)
            epoch_loss += loss.item()
            if is_main and step_in_epoch % 20 == 0:
                bar.set_postfix(loss=f"{loss.item():.3f}", lr=f"{lr:.2e}")

        if is_main:
            record = {"epoch": epoch + 1, "train_loss": epoch_loss / steps_per_epoch, "lr": lr,
                      "epoch_seconds": round(time.time() - epoch_start, 1)}
            for name, candidate in (("model", model), ("ema", ema.module)):
                probs = predict_probabilities(candidate, public_pixels, preprocess, config.eval_batch_size)
                predicted = probs.argmax(1).cpu()
                record[f"public_acc_{name}"] = float((predicted == public_labels).float().mean())
                if public_majority is not None:
                    known = public_majority >= 0
                    record[f"public_ferplus_acc_{name}"] = float((predicted[known] == public_majority[known]).float().mean())
            history.append(record)
            logger.info("epoch %d: %s", epoch + 1, json.dumps(record))
            for name in ("model", "ema"):
                if record[select_key.format(name)] > best["accuracy"]:
                    best = {"accuracy": record[select_key.format(name)], "epoch": epoch + 1, "weights": name,
                            "metric": select_key.format("").rstrip("_")}
                    chosen = model if name == "model" else ema.module
                    save_checkpoint(chosen, dataclasses.replace(model_config, extra={"selected": best}), out / "best")
            save_checkpoint(ema.module, model_config, out / "last_ema")
            with (out / "log.csv").open("w", newline="") as handle:
                writer = csv.DictWriter(handle, fieldnames=list(history[-1].keys()))
                writer.writeheader()
                writer.writerows(history)
            (out / "log.json").write_text(json.dumps({"config": dataclasses.asdict(config), "history": history, "best": best}, indent=2))
            torch.save({"model": model.state_dict(), "ema": ema.module.state_dict(), "optimizer": optimizer.state_dict(),
                        "epoch": epoch + 1, "history": history, "best": best, "config": dataclasses.asdict(config)},
                       out / "last.pt.tmp")
            os.replace(out / "last.pt.tmp", last_path)  # atomic: an interrupted save never corrupts last.pt
        if world > 1:
            dist.barrier()

    # 8. Summary ------------------------------------------------------------------------------
    if world > 1:
        dist.destroy_process_group()
    summary = {"best": best, "epochs": config.epochs, "seconds": round(time.time() - started, 1), "out": str(out)}
    if is_main:
        print(f"trained {config.model}@{config.img_size}: best PublicTest {best.get('metric', 'accuracy')} {best['accuracy']:.4f} "
              f"(epoch {best.get('epoch')}, {best.get('weights')}) in {summary['seconds']} s -> {out / 'best'}")
    return summary


if __name__ == "__main__":
    main()
