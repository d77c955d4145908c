/// The syntax tree of a Darknet .cfg file as the reference's parse_model_cfg / create_modules see it: the typed
/// layers, the `[net]` options and the grid stride. `CfgParse` reads text into it, `CfgGraph` answers what spans modules.
module YoloSpp.Model.Cfg

open YoloSpp

/// The coarsest yolo layer's stride (the reference's gs): network input sizes are multiples of it.
[<Literal>]
let GridStride = 32

/// Checks a network input size: positive and a multiple of `GridStride`; the error names the option.
let checkImageSize (what: string) (size: int) : Result<int, string> =
    if size > 0 && size % GridStride = 0 then
        Ok size
    else
        Error(sprintf "%s %d must be a positive multiple of %d" what size GridStride)

/// The activations the reference model builds: leaky = LeakyReLU(0.1), linear = none.
/// Darknet's others (logistic, mish, swish, relu, ...) are rejected as unknown.
type Activation =
    | Leaky
    | Linear

/// `[convolutional]`: Conv2d(size, stride, padding size/2 when pad) with BN (and no bias) when batch_normalize.
type ConvolutionalCfg =
    {
        BatchNormalize: bool
        Filters: int
        Size: int
        Stride: int
        Pad: bool
        Activation: Activation
    }

/// `[shortcut]`: the previous output plus the outputs of `From` (entries as written: negative = relative).
type ShortcutCfg =
    {
        From: int list
        Activation: Activation
    }

/// `[route]`: the channel concatenation of `Layers` (entries as written: negative = relative, else absolute).
type RouteCfg = { Layers: int list }

/// `[maxpool]`: MaxPool2d(size, stride).
type MaxPoolCfg = { Size: int; Stride: int }

/// `[upsample]`: nearest upsampling by `Stride`.
type UpsampleCfg = { Stride: int }

/// `[yolo]`: a detection head using anchors[mask] (pixels, w,h) for `Classes` classes.
type YoloCfg =
    {
        Mask: int list
        Anchors: (float * float) list
        Classes: int
    }

/// One Darknet layer, typed.
type Layer =
    | Convolutional of ConvolutionalCfg
    | Shortcut of ShortcutCfg
    | Route of RouteCfg
    | MaxPool of MaxPoolCfg
    | Upsample of UpsampleCfg
    | Yolo of YoloCfg

/// One module: its index (from 0, `[net]` excluded, as the reference's module_list) and its header's line.
type ModuleDef = { Index: int; Line: int; Layer: Layer }

/// The `[net]` section: the options the port reads, typed, and every other key in file order
/// (Darknet defines many training options the reference takes from its command line instead).
type NetOptions =
    {
        /// header line of `[net]`
        Line: int
        /// Darknet default 1
        Batch: int
        /// Darknet default 1
        Subdivisions: int
        /// None when absent (the reference takes the image size from its command line)
        Width: int option
        /// None when absent
        Height: int option
        /// input channels; 3 when absent, as the reference's create_modules (output_filters = [3])
        Channels: int
        /// the other keys with their values as written, in file order
        Other: (string * string) list
    }

/// A parsed and validated cfg.
type NetCfg =
    {
        Net: NetOptions
        Modules: ModuleDef list
    }
