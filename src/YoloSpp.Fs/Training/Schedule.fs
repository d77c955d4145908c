/// Learning-rate schedules of the reference train.py / train_one_epoch, as plain functions of the step.
module YoloSpp.Training.Schedule

open System

/// The reference's cosine lambda for LambdaLR: ((1 + cos(x·π/epochs)) / 2)·(1 − lrf) + lrf, x the epoch.
let cosine (epochs: int) (lrf: float) (epoch: int) : float =
    ((1.0 + Math.Cos(float epoch * Math.PI / float epochs)) / 2.0) * (1.0 - lrf) + lrf

/// The epoch-0 warmup factor (torchvision's warmup_lr_scheduler): 1 from `warmupIters` on, else
/// warmupFactor·(1 − x/warmupIters) + x/warmupIters.
let warmup (warmupIters: int) (warmupFactor: float) (iteration: int) : float =
    if iteration >= warmupIters then 1.0
    else
        let alpha = float iteration / float warmupIters
        warmupFactor * (1.0 - alpha) + alpha

/// The trainer's warmup length: min(1000, batches per epoch − 1).
let warmupIterations (batchesPerEpoch: int) = min 1000 (batchesPerEpoch - 1)

/// Gradient accumulation of the reference: max(round(64 / batch), 1) batches per optimizer step
/// (Python's round: half to even).
let accumulate (batchSize: int) =
    max (int (Math.Round(64.0 / float batchSize, MidpointRounding.ToEven))) 1
