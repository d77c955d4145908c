namespace YoloSpp.Training

/// The optimizer a recipe trains with (the façade shows it as its own OptimizerKind, of the same values): the reference's SGD (Nesterov momentum, weight decay on every parameter), or
/// Adam / AdamW as yolov5's `--optimizer` offers them (beta1 = the recipe's momentum, weight decay on convolution
/// weights only: yolov5's parameter groups).
type OptimizerChoice =
    /// torch.optim.SGD with Nesterov momentum, as the reference's train.py
    | Sgd = 0
    /// torch.optim.Adam (L2 weight decay added to the gradient)
    | Adam = 1
    /// torch.optim.AdamW (decoupled weight decay)
    | AdamW = 2
