/// What a cfg must satisfy to run (CfgCheck): each rule with the line and layer its error names, the cfgs of the
/// project passing, the check at the size a network is run at, the shortcut over different channel counts against
/// a computation by hand (and in ONNX Runtime), and the cfg comparison of a resumed checkpoint.
module YoloSpp.Tests.Model.CfgCheckTests

open System
open System.Diagnostics
open System.IO
open Expecto
open TorchSharp
open YoloSpp
open YoloSpp.Export
open YoloSpp.Model
open YoloSpp.Tests

let private layer (name: string) (keys: string list) = ("[" + name + "]") :: keys @ [ "" ]

let private conv f size stride bn act =
    layer
        "convolutional"
        [
            sprintf "batch_normalize=%d" (if bn then 1 else 0)
            sprintf "filters=%d" f
            sprintf "size=%d" size
            sprintf "stride=%d" stride
            "pad=1"
            "activation=" + act
        ]

let private yolo =
    layer "yolo" [ "mask=0,1,2"; "anchors=10,13, 16,30, 33,23"; "classes=1"; "num=3" ]

/// A cfg from layers: [net] (3 channels), the given layers, then a prediction conv and a yolo head.
let private cfgOf (layers: string list list) =
    String.Join(
        "\n",
        [ "[net]"; "channels=3"; "" ]
        @ List.concat layers
        @ conv 18 1 1 false "linear"
        @ yolo
    )
    + "\n"

let private errorsOf (text: string) =
    match CfgCheck.parse "t.cfg" text with
    | Ok _ -> failtest "expected errors, the cfg was accepted"
    | Error es -> es |> List.map (fun e -> e.Line, e.Reason)

/// The line (1-based) of the n-th section header (0: [net]).
let private headerLine (text: string) (n: int) =
    text.Split('\n')
    |> Array.indexed
    |> Array.filter (fun (_, l) -> l.StartsWith "[")
    |> Array.item n
    |> fst
    |> (+) 1

let private expectError (text: string) (section: int) (mentions: string list) (what: string) =
    let errors = errorsOf text
    let line = headerLine text section

    Expect.exists
        errors
        (fun (l, r) -> l >= line && mentions |> List.forall r.Contains)
        (sprintf "%s: an error at or after line %d mentioning %A; got %A" what line mentions errors)

let private down = conv 8 3 2 true "leaky"
let private same = conv 8 3 1 true "leaky"

let rules =
    testList
        "rules"
        [
            test "a route joining a stride-2 and a stride-4 map is refused naming the layer and both sizes" {
                // 0: s1, 1: s2, 2: s4, 3: route 1 and 2
                let text = cfgOf [ same; down; down; layer "route" [ "layers=1,2" ] ]
                expectError text 4 [ "layer 3 [route]"; "joins layer 1"; "layer 2"; "different"; "no input size" ] "route"
            }
            test "a shortcut adding a map of another size is refused" {
                let text = cfgOf [ same; down; layer "shortcut" [ "from=0" ] ]
                expectError text 3 [ "layer 2 [shortcut]"; "adds layer 0" ] "shortcut"
            }
            test "-0 in a route or shortcut is refused: relative 0 is the layer itself, Python reads it as layer 0" {
                expectError (cfgOf [ same; same; layer "shortcut" [ "from=-0" ] ]) 3 [ "-0"; "absolute layer 0" ] "shortcut"
                expectError (cfgOf [ same; same; layer "route" [ "layers=-1,-0" ] ]) 3 [ "-0" ] "route"
            }
            test "num must equal the anchor count" {
                let text = (cfgOf [ same ]).Replace("num=3", "num=12")
                expectError text 3 [ "num=12"; "3 w,h pairs" ] "num"
            }
            test "the Darknet options the port ignores must still hold values of their kind" {
                let withYolo (key: string) =
                    (cfgOf [ same ]).Replace("num=3", "num=3\n" + key)

                expectError (withYolo "ignore_thresh=abc") 3 [ "'abc' is not a number" ] "ignore_thresh"
                expectError (withYolo "jitter=2") 3 [ "'jitter' = 2 must be in [0, 1]" ] "jitter"
                expectError (withYolo "iou_loss=l7") 3 [ "unknown value 'l7'" ] "iou_loss"

                let withNet (key: string) =
                    (cfgOf [ same ]).Replace("channels=3", "channels=3\n" + key)

                expectError (withNet "momentum=0.9O") 0 [ "'0.9O' is not a number" ] "momentum"
                expectError (withNet "steps=400,x") 0 [ "'x' is not an integer" ] "steps"
            }
            test "absurd widths, windows and a fourth yolo layer are refused naming the layer" {
                expectError (cfgOf [ conv 70000 3 1 true "leaky" ]) 1 [ "layer 0 [convolutional]"; "filters=70000" ] "filters"
                expectError (cfgOf [ conv 8 2001 1 true "leaky" ]) 1 [ "size=2001" ] "size"
                expectError (cfgOf [ same; layer "upsample" [ "stride=5000" ] ]) 2 [ "stride=5000" ] "upsample"

                let four =
                    cfgOf
                        [
                            same
                            conv 18 1 1 false "linear"
                            yolo
                            layer "route" [ "layers=0" ]
                            conv 18 1 1 false "linear"
                            yolo
                            layer "route" [ "layers=0" ]
                            conv 18 1 1 false "linear"
                            yolo
                            layer "route" [ "layers=0" ]
                        ]

                expectError four 12 [ "fourth [yolo]" ] "yolo count"
            }
            test "a network above the parameter budget is refused before anything is allocated, naming its largest layer" {
                // 40,000 × 40,000 × 3 × 3 = 14.4 billion weights
                let text = cfgOf [ conv 40000 1 1 true "leaky"; conv 40000 3 1 true "leaky" ]
                let watch = Stopwatch.StartNew()
                expectError text 2 [ "parameters"; "layer 1 [convolutional]"; "14,400,160,000" ] "budget"
                Expect.isLessThan watch.Elapsed.TotalSeconds 1.0 "refused at once"
            }
            test "a map that shrinks to nothing at every size is refused" {
                // five halvings leave 32 cells at 1024, the largest size tried: a 64-wide window without padding fits none
                let noPad =
                    layer "convolutional" [ "filters=8"; "size=64"; "stride=1"; "pad=0"; "activation=leaky" ]

                let text = cfgOf [ down; down; down; down; down; noPad ]
                expectError text 6 [ "layer 5 [convolutional]"; "its output would be" ] "too small"
            }
            test "the project's cfgs pass, and filters=200000 is refused within a second" {
                for f in [ "yolov3-spp.cfg"; "tiny-spp.cfg"; "shapes-spp.cfg"; "odd-widths.cfg" ] do
                    let path = TestUtil.goldenFile f
                    Expect.isOk (CfgCheck.parse path (File.ReadAllText path)) f

                Expect.isOk (CfgCheck.parse "all-layers" Export.OnnxTests.allLayersCfg) "every layer type"
                let wide = (cfgOf [ same; same ]).Replace("filters=8", "filters=200000")
                let watch = Stopwatch.StartNew()
                Expect.isError (CfgCheck.parse "wide" wide) "refused"
                Expect.isLessThan watch.Elapsed.TotalSeconds 1.0 "in under a second"
            }
        ]

/// A network of total stride 64 (six 2×2 max-pools) whose head routes the upsampled stride-64 map with the stride-32
/// one: it fits at multiples of 64 (320, 512) but not at 416 (13 cells of 32 against 6·2 = 12).
let private stride64 =
    let pool = layer "maxpool" [ "size=2"; "stride=2" ]

    cfgOf
        [
            same
            pool
            pool
            pool
            pool
            pool
            same
            pool
            same
            layer "upsample" [ "stride=2" ]
            layer "route" [ "layers=-1,6" ]
        ]

let private parsed (text: string) =
    match CfgParse.parse "t.cfg" text with
    | Ok c -> c
    | Error e -> failtestf "%A" e

/// A network whose shortcuts add a narrower feature (4 channels into 6) and a wider one (8 into 3).
let narrowWide =
    cfgOf
        [
            conv 8 3 1 true "leaky" // 0
            conv 4 3 1 true "leaky" // 1
            conv 6 3 1 true "leaky" // 2
            layer "shortcut" [ "from=-2"; "activation=linear" ] // 3: layer 1 (4) into 6 channels
            conv 3 3 1 true "leaky" // 4
            layer "shortcut" [ "from=0"; "activation=linear" ] // 5: layer 0 (8) sliced to 3
        ]

let private flat (t: torch.Tensor) =
    t.contiguous().data<float32>().ToArray()

let runtime =
    testList
        "at run time"
        [
            test "a network that fits at some sizes is accepted when read and refused at a size it does not fit, naming the layer" {
                Expect.isOk (CfgCheck.parse "s64" stride64) "fits at 320 and 512"
                Expect.isNonEmpty (CfgCheck.shapesAt (parsed stride64) (416, 416)) "not at 416"

                Export.OnnxTests.withTempDir (fun dir ->
                    let path = Path.Combine(dir, "s64.cfg")
                    File.WriteAllText(path, stride64)
                    use m = DarkNet.FromCfgFile path
                    m.eval () |> ignore
                    use _ = torch.no_grad ()
                    m.forward (torch.zeros (1L, 3L, 512L, 512L)) |> ignore

                    let message =
                        TestUtil.throwsMessage<InvalidInputException> (fun () -> m.forward (torch.zeros (1L, 3L, 416L, 416L)) |> ignore)

                    for m in [ path; "layer 10 [route]"; "416x416" ] do
                        Expect.stringContains message m "names the cfg, the layer and the size")
            }
            test "a shortcut adds a narrower feature into the first channels and slices a wider one (the reference's fusion), by hand" {
                use _ = torch.NewDisposeScope()
                let g = new torch.Generator(3UL)

                let rand (c: int64) =
                    torch.randn ([| 2L; c; 3L; 4L |], generator = g)

                let x, narrow, wide, equal = rand 6L, rand 4L, rand 9L, rand 6L
                let before = flat x
                let fusion = new WeightedFeatureFusion([| 0; 1; 2 |])
                let y = fusion.Forward(x, [| narrow; wide; equal |])
                Expect.sequenceEqual y.shape [| 2L; 6L; 3L; 4L |] "x's channels"
                let xa, na, wa, ea, ya = flat x, flat narrow, flat wide, flat equal, flat y
                // element (b, c, p) of an n-channel NCHW tensor with 12 pixels a channel
                let at (a: float32[]) (n: int) b c p = a.[(b * n + c) * 12 + p]

                for b in 0..1 do
                    for c in 0..5 do
                        for p in 0..11 do
                            let expected =
                                at xa 6 b c p
                                + (if c < 4 then at na 4 b c p else 0.0f)
                                + at wa 9 b c p
                                + at ea 6 b c p

                            Expect.floatClose Accuracy.high (float (at ya 6 b c p)) (float expected) (sprintf "(%d, %d, %d)" b c p)

                Expect.sequenceEqual (flat x) before "x itself is left as it was"
            }
            test "a network with such shortcuts trains a step and exports to ONNX with the port's output" {
                Export.OnnxTests.withTempDir (fun dir ->
                    let path = Path.Combine(dir, "narrow-wide.cfg")
                    File.WriteAllText(path, narrowWide)
                    torch.manual_seed 5L |> ignore
                    use m = DarkNet.FromCfgFile path
                    m.train () |> ignore
                    let raw = m.forward(torch.rand (2L, 3L, 64L, 96L)).Raw

                    let loss =
                        raw
                        |> Array.map (fun r -> r.square().mean ())
                        |> Array.reduce (fun a b -> a.add b)

                    loss.backward ()
                    Expect.isTrue (m.parameters () |> Seq.forall (fun p -> not (isNull p.grad))) "every parameter has a gradient"
                    Export.OnnxTests.randomiseBatchNorm m 2L
                    Export.OnnxTests.checkAgainstEval m (OnnxExportOptions(Opset = 11)) (Export.OnnxTests.input 1L 64L 96L))
            }
        ]

let resume =
    testList
        "the cfg of a resumed checkpoint"
        [
            test "comments and spacing are no difference; an anchor, an activation or a layer is, named" {
                let a = parsed (cfgOf [ same ])
                Expect.isNone (CfgCheck.difference a (parsed ("# a comment\n" + (cfgOf [ same ]).Replace("=", " = ")))) "comments and spaces"

                let differs (text: string) (mentions: string list) =
                    match CfgCheck.difference a (parsed text) with
                    | Some d ->
                        for m in mentions do
                            Expect.stringContains d m (sprintf "'%s' in %s" m d)
                    | None -> failtestf "no difference found in %s" text

                differs ((cfgOf [ same ]).Replace("anchors=10,13,", "anchors=11,13,")) [ "layer 2 [yolo]"; "anchors=10,13"; "anchors=11,13" ]
                differs ((cfgOf [ same ]).Replace("activation=leaky", "activation=linear")) [ "layer 0 [convolutional]"; "activation=leaky in the checkpoint" ]
                differs (cfgOf [ same; layer "route" [ "layers=-1" ] ]) [ "layer 1 is [convolutional] in the checkpoint, [route] now" ]
            }
        ]

let tests = testList "cfg-check" [ rules; runtime; resume ]
