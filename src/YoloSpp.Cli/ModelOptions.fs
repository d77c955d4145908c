/// What the commands that use a trained model (eval, detect, export, info) say about its options, in one place: a
/// .ckpt carries its cfg, class names and image size, so `--cfg`, `--names` and `--img-size` are overrides.
module YoloSpp.Cli.ModelOptions

/// `--weights`' help: a .ckpt first, since it is what `train` writes and all it needs.
let weightsUsage =
    "a .ckpt written by `yolospp train` (it carries its cfg, class names and image size), or .weights, .pt/.pth, .safetensors with --cfg"

/// `--cfg`'s help: an override for a .ckpt, required for bare tensors.
let cfgUsage =
    "Darknet cfg file, or a built-in network (shapes-spp, yolov3-spp): needed only for weights that are not a .ckpt; given for a .ckpt, it overrides the checkpoint's"

/// `--device`'s help.
let deviceUsage =
    "auto (default: CUDA when available, else the CPU), cpu, cuda or cuda:N"

/// Prints a one-line notice (an override that differs from the checkpoint, a CUDA fallback) to stderr.
let notice (line: string) = eprintfn "%s" line
