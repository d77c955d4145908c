namespace YoloSpp;

/// <summary>The optimizer a recipe trains with (a hyp file's <c>optimizer:</c> key, the CLI's <c>--optimizer</c>).</summary>
public enum OptimizerKind
{
    /// <summary>torch.optim.SGD with Nesterov momentum; weight decay on every parameter (the reference's) unless
    /// <see cref="DecayGroups.Weights"/> is chosen.</summary>
    Sgd = 0,
    /// <summary>torch.optim.Adam (L2 weight decay added to the gradient), beta1 the recipe's momentum, weight decay on
    /// convolution weights only (yolov5's parameter groups) unless <see cref="DecayGroups.All"/> is chosen.</summary>
    Adam = 1,
    /// <summary>torch.optim.AdamW (decoupled weight decay), groups as Adam's.</summary>
    AdamW = 2,
}

/// <summary>Which parameters the optimizer's weight decay applies to (the CLI's <c>--decay-groups</c>).</summary>
public enum DecayGroups
{
    /// <summary>Every trainable parameter, one torch param group: the reference's SGD.</summary>
    All = 0,
    /// <summary>yolov5's parameter groups: the weights of convolutions (parameters of more than one dimension), none
    /// on BatchNorm weights and biases.</summary>
    Weights = 1,
}
