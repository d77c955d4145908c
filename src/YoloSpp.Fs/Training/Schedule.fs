/// Learning-rate schedules of the reference train.py / train_one_epoch, as plain functions of the step.
module YoloSpp.Training.Schedule

open System

/// The reference's cosine lambda for LambdaLR: ((1 + cos(x·π/epochs)) / 2)·(1 − lrf) + lrf, x the epoch.
let cosine (epochs: int) (lrf: float) (epoch: int) : float =
    ((1.0 + Math.Cos(float epoch * Math.PI / float epochs)) / 2.0) * (1.0 - lrf)
    + lrf

/// The epoch-0 warmup factor (torchvision's warmup_lr_scheduler): 1 from `warmupIters` on, else
/// warmupFactor·(1 − x/warmupIters) + x/warmupIters.
let warmup (warmupIters: int) (warmupFactor: float) (iteration: int) : float =
    if iteration >= warmupIters then
        1.0
    else
        let alpha = float iteration / float warmupIters
        warmupFactor * (1.0 - alpha) + alpha

/// The trainer's warmup length: min(1000, batches per epoch − 1).
let warmupIterations (batchesPerEpoch: int) = min 1000 (batchesPerEpoch - 1)

/// Gradient accumulation of the reference: max(round(64 / batch), 1) batches per optimizer step
/// (Python's round: half to even).
let accumulate (batchSize: int) =
    max (int (Math.Round(64.0 / float batchSize, MidpointRounding.ToEven))) 1

/// The reference's count of batches since the start of training, ni = i + nb·epoch (train_one_epoch, epochs
/// 0-based): multi-scale redraws before, and the optimizer steps after, every batch with ni mod accumulate = 0.
let integratedBatch (batchesPerEpoch: int) (epoch: int) (batch: int) = batch + batchesPerEpoch * epoch

/// Whether batch `ni` is an accumulation boundary (ni mod accumulate = 0): the optimizer steps after it and
/// multi-scale draws a new size before it. In the warmup epoch accumulate is 1, so every batch is one.
let isBoundary (accumulate: int) (ni: int) = ni % accumulate = 0
