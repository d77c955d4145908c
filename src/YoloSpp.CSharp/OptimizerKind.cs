namespace YoloSpp;

/// <summary>The optimizer a recipe trains with (a hyp file's <c>optimizer:</c> key, the CLI's <c>--optimizer</c>).</summary>
public enum OptimizerKind
{
    /// <summary>torch.optim.SGD with Nesterov momentum and weight decay on every parameter: the reference's.</summary>
    Sgd = 0,
    /// <summary>torch.optim.Adam (L2 weight decay added to the gradient), beta1 the recipe's momentum, weight decay on
    /// convolution weights only (yolov5's parameter groups).</summary>
    Adam = 1,
    /// <summary>torch.optim.AdamW (decoupled weight decay), groups as Adam's.</summary>
    AdamW = 2,
}
