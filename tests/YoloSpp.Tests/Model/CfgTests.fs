/// The Darknet cfg parser: a corpus of malformed cfgs (each with its reason and line), the golden yolov3-spp
/// structure, tiny-spp, the class-count rewrite and the serializer.
module YoloSpp.Tests.Model.CfgTests

open System
open System.IO
open System.Text.Json
open Expecto
open YoloSpp.Model
open YoloSpp.Model.Cfg
open YoloSpp.Model.CfgGraph
open YoloSpp.Model.CfgParse
open YoloSpp.Tests

/// A small valid cfg; the corpus edits its lines, so the line numbers below are the ones errors must carry.
let private baseLines =
    [
        "[net]" //  1
        "width=64" //  2
        "height=64" //  3
        "channels=3" //  4
        "" //  5
        "[convolutional]" //  6  module 0
        "batch_normalize=1" //  7
        "filters=8" //  8
        "size=3" //  9
        "stride=1" // 10
        "pad=1" // 11
        "activation=leaky" // 12
        "" // 13
        "[convolutional]" // 14  module 1
        "filters=18" // 15
        "size=1" // 16
        "stride=1" // 17
        "pad=1" // 18
        "activation=linear" // 19
        "" // 20
        "[yolo]" // 21  module 2
        "mask=0,1,2" // 22
        "anchors=10,13, 16,30, 33,23" // 23
        "classes=1"
    ] // 24

let private text (lines: string list) = String.Join("\n", lines) + "\n"

/// The base cfg with 1-based lines replaced.
let private edit (changes: (int * string) list) =
    baseLines
    |> List.mapi (fun i l ->
        changes
        |> List.tryFind (fun (n, _) -> n = i + 1)
        |> Option.map snd
        |> Option.defaultValue l)
    |> text

let private append (more: string list) = text (baseLines @ more)

let private errorsOf (cfgText: string) =
    match parse "t.cfg" cfgText with
    | Ok _ -> failtest "expected errors, the cfg parsed"
    | Error es -> es |> List.map (fun e -> e.Line, e.Reason)

let private parsed (cfgText: string) =
    match parse "t.cfg" cfgText with
    | Ok c -> c
    | Error es -> failtestf "expected a valid cfg, got:\n%s" (es |> List.map string |> String.concat "\n")

let private convKeys = "batch_normalize, filters, size, stride, pad, activation"

/// name, cfg text, the exact (line, reason) list expected.
let private corpus: (string * string * (int * string) list) list =
    [
        "unknown section",
        append [ ""; "[dropout]"; "probability=0.5" ],
        [
            26, "unknown section [dropout] (supported: net, convolutional, maxpool, route, shortcut, upsample, yolo)"
        ]
        "conv without filters (at the header)", edit [ 8, "" ], [ 6, "missing required key 'filters' in [convolutional]" ]
        "conv without size", edit [ 9, "# no size" ], [ 6, "missing required key 'size' in [convolutional]" ]
        "conv without activation (Darknet's logistic default is not built)", edit [ 12, "" ], [ 6, "missing required key 'activation' in [convolutional]" ]
        "yolo without classes", edit [ 24, "" ], [ 21, "missing required key 'classes' in [yolo]" ]
        "route without layers", append [ ""; "[route]" ], [ 26, "missing required key 'layers' in [route]" ]
        "bad integer", edit [ 8, "filters=8x" ], [ 8, "bad number for 'filters': '8x' is not an integer" ]
        "bad anchor number", edit [ 23, "anchors=10,13, 16,3O, 33,23" ], [ 23, "bad number for 'anchors': '3O' is not a number" ]
        "empty list element", edit [ 22, "mask=0,,2" ], [ 22, "bad number for 'mask': '' is not an integer" ]
        "bad [net] number", edit [ 2, "width=sixty" ], [ 2, "bad number for 'width': 'sixty' is not an integer" ]
        "line without '='", edit [ 10, "stride 1" ], [ 10, "expected 'key=value' or a [section] header, got 'stride 1'" ]
        "missing key before '='", edit [ 11, " = 1" ], [ 11, "missing key before '=' in '= 1'" ]
        "key before the first section", "batch=1\n" + text baseLines, [ 1, "key 'batch' appears before the first section header" ]
        "unsupported key in a section",
        edit [ 10, "groups=2" ],
        [
            10, sprintf "key 'groups' is not supported in [convolutional] (supported: %s)" convKeys
        ]
        "duplicate key", edit [ 10, "filters=16" ], [ 10, "duplicate key 'filters' in [convolutional] (first given at line 8)" ]
        "malformed header", edit [ 14, "[convolutional" ], [ 14, "malformed section header '[convolutional': expected [name]" ]
        "size 0", edit [ 9, "size=0" ], [ 9, "'size' must be > 0, got 0" ]
        "negative stride", edit [ 10, "stride=-1" ], [ 10, "'stride' must be > 0, got -1" ]
        "filters 0", edit [ 8, "filters=0" ], [ 8, "'filters' must be > 0, got 0" ]
        "upsample stride 0", append [ ""; "[route]"; "layers=-2"; "[upsample]"; "stride=0" ], [ 29, "'stride' must be > 0, got 0" ]
        "classes 0", edit [ 24, "classes=0" ], [ 24, "'classes' must be >= 1, got 0" ]
        "odd anchor count", edit [ 23, "anchors=10,13, 16,30, 33" ], [ 23, "'anchors' must be w,h pairs: got an odd count of 5 values" ]
        "non-positive anchor", edit [ 23, "anchors=10,13, 16,-30, 33,23" ], [ 23, "anchor value -30 must be > 0" ]
        "unknown activation", edit [ 12, "activation=mish" ], [ 12, "unknown activation 'mish' for 'activation' (supported: leaky, linear)" ]
        "batch_normalize 2", edit [ 7, "batch_normalize=2" ], [ 7, "'batch_normalize' must be 0 or 1, got 2" ]
        "pad 2", edit [ 11, "pad=2" ], [ 11, "'pad' must be 0 or 1, got 2" ]
        "route before the first layer", append [ ""; "[route]"; "layers=-4" ], [ 27, "[route] layers entry -4 resolves to layer -1, before the first layer" ]
        "route forward (absolute)",
        append [ ""; "[route]"; "layers=5" ],
        [
            27, "[route] layers entry 5 resolves to layer 5, which is not before this layer (3)"
        ]
        "route at itself",
        append [ ""; "[route]"; "layers=-2, 3" ],
        [
            27, "[route] layers entry 3 resolves to layer 3, which is not before this layer (3)"
        ]
        "route to a yolo output",
        append [ ""; "[route]"; "layers=-1" ],
        [
            27, "[route] layers entry -1 refers to [yolo] layer 2, whose output is not a feature map"
        ]
        "shortcut out of range",
        append [ ""; "[route]"; "layers=-2"; "[shortcut]"; "from=-9"; "activation=linear" ],
        [ 29, "[shortcut] from entry -9 resolves to layer -5, before the first layer" ]
        "shortcut with leaky",
        append [ ""; "[route]"; "layers=-2"; "[shortcut]"; "from=-3"; "activation=leaky" ],
        [
            30, "[shortcut] activation must be linear (the reference applies none), got 'leaky'"
        ]
        "yolo conv filters mismatch",
        edit [ 15, "filters=21" ],
        [
            15, "filters=21 of the [convolutional] before the [yolo] at line 21 must be len(mask)*(classes+5) = 3*(1+5) = 18"
        ]
        "yolo not after a conv",
        edit [ 14, "[maxpool]"; 15, "size=2"; 16, "stride=1"; 17, ""; 18, ""; 19, "" ],
        [
            21, "[yolo] must directly follow a [convolutional] layer (its prediction conv)"
        ]
        "conv consuming a yolo output",
        append [ "[convolutional]"; "filters=4"; "size=1"; "activation=linear" ],
        [
            25, "[convolutional] follows a [yolo] layer, whose output is not a feature map (put a [route] between)"
        ]
        "mask index beyond anchors", edit [ 22, "mask=0,1,3" ], [ 22, "mask index 3 is beyond the 3 anchors (valid 0..2)" ]
        "negative mask index", edit [ 22, "mask=0,-1,2" ], [ 22, "'mask' entry -1 is negative" ]
        "first section not [net]", edit [ 1, ""; 2, ""; 3, ""; 4, "" ], [ 6, "the first section must be [net], got [convolutional]" ]
        "second [net]", append [ "[net]" ], [ 25, "[net] may only appear once, as the first section" ]
        "no layers", "[net]\nwidth=64\n", [ 1, "no layers after [net]" ]
        "empty file", "# nothing but a comment\n\n", [ 0, "no sections: a cfg starts with [net] followed by layers" ]
        "all errors are collected, in line order",
        edit [ 16, "size=0"; 8, "filters=abc"; 23, "anchors=1,2,3" ],
        [
            8, "bad number for 'filters': 'abc' is not an integer"
            16, "'size' must be > 0, got 0"
            23, "'anchors' must be w,h pairs: got an odd count of 3 values"
        ]
    ]

/// Module fields as the golden model_summary names them, read from a parsed layer.
let private checkAgainstSummary (cfg: NetCfg) (summary: JsonElement) =
    let ints (e: JsonElement) =
        e.EnumerateArray() |> Seq.map (fun x -> x.GetInt32()) |> List.ofSeq

    let p (name: string) (e: JsonElement) = e.GetProperty name
    Expect.equal cfg.Modules.Length ((p "num_modules" summary).GetInt32()) "num_modules"
    Expect.equal (yoloLayers cfg) (ints (p "yolo_layers" summary)) "yolo_layers"
    Expect.equal (routs cfg) (ints (p "routs" summary)) "routs"
    let channels = outputChannels cfg |> Array.ofList

    for jm in (p "modules" summary).EnumerateArray() do
        let i = (p "index" jm).GetInt32()
        let m = cfg.Modules.[i]
        let at what = sprintf "module %d %s" i what
        let int name = (p name jm).GetInt32()
        let typ = (p "type" jm).GetString()

        match m.Layer with
        | Convolutional c ->
            Expect.equal "convolutional" typ (at "type")
            Expect.equal c.Filters (int "filters") (at "filters")
            Expect.equal c.Size (int "size") (at "size")
            Expect.equal c.Stride (int "stride") (at "stride")
            Expect.equal (if c.BatchNormalize then 1 else 0) (int "batch_normalize") (at "batch_normalize")

            Expect.equal
                (match c.Activation with
                 | Leaky -> "leaky"
                 | Linear -> "linear")
                ((p "activation" jm).GetString())
                (at "activation")
        | Shortcut s ->
            Expect.equal "shortcut" typ (at "type")
            Expect.equal s.From (ints (p "from" jm)) (at "from")
        | Route r ->
            Expect.equal "route" typ (at "type")
            Expect.equal r.Layers (ints (p "layers" jm)) (at "layers")
        | MaxPool mp ->
            Expect.equal "maxpool" typ (at "type")
            Expect.equal (mp.Size, mp.Stride) (int "size", int "stride") (at "size/stride")
        | Upsample u ->
            Expect.equal "upsample" typ (at "type")
            Expect.equal u.Stride (int "stride") (at "stride")
        | Yolo y ->
            Expect.equal "yolo" typ (at "type")
            Expect.equal y.Mask (ints (p "mask" jm)) (at "mask")
            Expect.equal y.Classes (int "classes") (at "classes")

        match (p "out_channels" jm).ValueKind with
        | JsonValueKind.Null -> ()
        | _ -> Expect.equal channels.[i] (int "out_channels") (at "out_channels")

    for jy in (p "yolo" summary).EnumerateArray() do
        let i = (p "index" jy).GetInt32()

        let expected =
            [
                for a in (p "anchors_px" jy).EnumerateArray() -> a.[0].GetDouble(), a.[1].GetDouble()
            ]

        match cfg.Modules.[i].Layer with
        | Yolo y -> Expect.equal (maskedAnchors y) expected (sprintf "yolo %d anchors[mask]" i)
        | l -> failtestf "module %d is %A, the summary says yolo" i l

let private golden name =
    Path.Combine(TestUtil.repoGoldenDir, name)

let private readJson name =
    JsonDocument.Parse(File.ReadAllText(golden name))

let private modulesWithoutLines (c: NetCfg) =
    c.Modules |> List.map (fun m -> m.Index, m.Layer)

let tests =
    testList
        "cfg"
        [
            testCase "the corpus base cfg is valid (so each corpus error comes from its edit)"
            <| fun () ->
                let c = parsed (text baseLines)
                Expect.equal (c.Modules |> List.map (fun m -> m.Line)) [ 6; 14; 21 ] "header lines"
                Expect.equal (c.Net.Width, c.Net.Height, c.Net.Channels, c.Net.Batch) (Some 64, Some 64, 3, 1) "[net]"

            testList
                "malformed"
                [
                    for name, cfgText, expected in corpus ->
                        testCase name
                        <| fun () -> Expect.equal (errorsOf cfgText) expected "errors (line, reason)"
                ]

            testCase "errors print as file:line: reason"
            <| fun () ->
                match parse "my.cfg" (edit [ 9, "size=0" ]) with
                | Error [ e ] -> Expect.equal (string e) "my.cfg:9: 'size' must be > 0, got 0" "ToString"
                | r -> failtestf "expected one error, got %A" r

            testCase "comments, blank lines, spaces and CRLF do not change the parse"
            <| fun () ->
                let messy =
                    [
                        "# a cfg"
                        "  [net]   "
                        "width = 64 ; trailing"
                        "height=64"
                        "channels =3"
                        "; semicolon line"
                        ""
                        "[convolutional]  # header comment"
                        "  batch_normalize = 1"
                        "filters=8   # eight"
                        "size= 3"
                        "stride =1"
                        "pad=1"
                        "activation = leaky"
                        ""
                        ""
                        "[convolutional]"
                        "filters=18"
                        "size=1"
                        "stride=1"
                        "pad=1"
                        "activation=linear"
                        "[yolo]"
                        "mask = 0, 1 ,2"
                        "anchors = 10,13,  16,30,  33,23  "
                        "classes=1"
                        "jitter=.3"
                        "ignore_thresh = .7"
                        "random=1"
                    ]

                let c = parsed (String.Join("\r\n", messy))
                Expect.equal (modulesWithoutLines c) (modulesWithoutLines (parsed (text baseLines))) "same modules"
                Expect.equal (c.Modules |> List.map (fun m -> m.Line)) [ 8; 17; 23 ] "header lines"

            testCase "Darknet defaults: stride 1, pad 0, no BN; maxpool size = stride; upsample stride 2"
            <| fun () ->
                let c =
                    parsed (
                        text
                            [
                                "[net]"
                                "[convolutional]"
                                "filters=4"
                                "size=3"
                                "activation=leaky"
                                "[maxpool]"
                                "stride=2"
                                "[upsample]"
                                "[route]"
                                "layers=0,-2"
                                "[shortcut]"
                                "from=0"
                            ]
                    )

                Expect.equal
                    (c.Modules |> List.map (fun m -> m.Layer))
                    [
                        Convolutional
                            {
                                BatchNormalize = false
                                Filters = 4
                                Size = 3
                                Stride = 1
                                Pad = false
                                Activation = Leaky
                            }
                        MaxPool { Size = 2; Stride = 2 }
                        Upsample { Stride = 2 }
                        Route { Layers = [ 0; -2 ] }
                        Shortcut { From = [ 0 ]; Activation = Linear }
                    ]
                    "layers"

                Expect.equal (c.Modules |> List.map references) [ []; []; []; [ 0; 1 ]; [ 0 ] ] "absolute references"
                Expect.equal (outputChannels c) [ 4; 4; 4; 8; 8 ] "channels (route 0,-2 = 4 + 4)"
                Expect.equal c.Net.Channels 3 "channels default"

            testCase "resolveIndex: negative is relative, non-negative absolute"
            <| fun () -> Expect.equal [ resolveIndex 93 -1; resolveIndex 93 61; resolveIndex 83 -6; resolveIndex 5 0 ] [ 92; 61; 77; 0 ] ""

            testCase "yolov3-spp.cfg matches the reference's module list, routs and channels (nc 80)"
            <| fun () ->
                let c = parsed (File.ReadAllText(golden "yolov3-spp.cfg"))
                Expect.equal (yoloLayers c) [ 89; 101; 113 ] "yolo layers"
                use doc = readJson "model_summary_yolov3spp_nc80.json"
                checkAgainstSummary c doc.RootElement
                Expect.equal c.Net.Other.[0] ("momentum", "0.9") "[net] keys kept in order"

            testCase "withClasses 20 on yolov3-spp.cfg matches the reference's nc 20 model and changes only 6 lines"
            <| fun () ->
                let original = File.ReadAllText(golden "yolov3-spp.cfg")

                match CfgWrite.withClasses "yolov3-spp.cfg" 20 None original with
                | Error es -> failtestf "%A" es
                | Ok rewritten ->
                    let c = parsed rewritten
                    use doc = readJson "model_summary_yolov3spp_nc20.json"
                    checkAgainstSummary c doc.RootElement
                    let a, b = original.Split('\n'), rewritten.Split('\n')
                    Expect.equal b.Length a.Length "line count"

                    let changed =
                        [
                            for i in 0 .. a.Length - 1 do
                                if a.[i] <> b.[i] then
                                    i + 1, b.[i]
                        ]
                    // Line 643 is "classes=80 ": its trailing space stays.
                    Expect.equal
                        (changed |> List.map (fun (_, l) -> l.TrimEnd()))
                        [
                            for _ in 1..3 do
                                yield "filters=75"
                                yield "classes=20"
                        ]
                        "changed lines"
                    // Everything else identical: the parses differ only in the yolo classes and their convs' filters.
                    let o = parsed original

                    let undo =
                        c.Modules
                        |> List.map (fun m ->
                            match m.Layer with
                            | Yolo y ->
                                { m with
                                    Layer = Yolo { y with Classes = 80 }
                                }
                            | Convolutional cv when cv.Filters = 75 ->
                                { m with
                                    Layer = Convolutional { cv with Filters = 255 }
                                }
                            | _ -> m)

                    Expect.equal undo o.Modules "other modules unchanged"
                    Expect.equal c.Net o.Net "[net] unchanged"

            testCase "withClasses keeps comments, spacing and CRLF; replaces anchors when asked"
            <| fun () ->
                let src =
                    (edit [ 15, "filters = 18   # 3*(1+5)"; 24, "classes = 1 ; one class" ]).Replace("\n", "\r\n")

                let anchors = [ 5.0, 6.0; 7.5, 8.0; 9.0, 10.0; 11.0, 12.0 ]

                match CfgWrite.withClasses "t.cfg" 3 (Some anchors) src with
                | Error es -> failtestf "%A" es
                | Ok out ->
                    let lines = out.Split('\n')
                    Expect.equal lines.[14] "filters = 24   # 3*(1+5)\r" "filters line"
                    Expect.equal lines.[23] "classes = 3 ; one class\r" "classes line"
                    Expect.equal lines.[22] "anchors=5,6,  7.5,8,  9,10,  11,12\r" "anchors line"

                    match (parsed out).Modules.[2].Layer with
                    | Yolo y -> Expect.equal (y.Classes, y.Anchors) (3, anchors) "yolo"
                    | l -> failtestf "%A" l

            testCase "withClasses reports what the rewrite cannot fix"
            <| fun () ->
                Expect.equal
                    (CfgWrite.withClasses "t.cfg" 0 None (text baseLines)
                     |> Result.mapError (List.map string))
                    (Error [ "t.cfg: class count must be >= 1, got 0" ])
                    "nc 0"
                // Two anchors are too few for mask 0,1,2: the error points at the mask line.
                Expect.equal
                    (CfgWrite.withClasses "t.cfg" 2 (Some [ 1.0, 2.0; 3.0, 4.0 ]) (text baseLines)
                     |> Result.mapError (List.map string))
                    (Error [ "t.cfg:22: mask index 2 is beyond the 2 anchors (valid 0..1)" ])
                    "anchors"

            testCase "toText writes a cfg that parses to the same modules"
            <| fun () ->
                for file in [ "yolov3-spp.cfg"; "tiny-spp.cfg" ] do
                    let c = parsed (File.ReadAllText(golden file))
                    let again = parsed (CfgWrite.toText c)
                    Expect.equal (modulesWithoutLines again) (modulesWithoutLines c) file
                    Expect.equal { again.Net with Line = 0 } { c.Net with Line = 0 } (file + " [net]")

            testCase "tiny-spp.cfg parses to the darknet_forward case's module types and yolo layers"
            <| fun () ->
                let c = parsed (File.ReadAllText(golden "tiny-spp.cfg"))
                use doc = readJson "darknet_forward_tiny_spp.json"
                let root = doc.RootElement

                let types =
                    c.Modules
                    |> List.map (fun m ->
                        match m.Layer with
                        | Convolutional _ -> "convolutional"
                        | Shortcut _ -> "shortcut"
                        | Route _ -> "route"
                        | MaxPool _ -> "maxpool"
                        | Upsample _ -> "upsample"
                        | Yolo _ -> "yolo")

                let expected =
                    [
                        for m in root.GetProperty("modules").EnumerateArray() -> m.GetProperty("type").GetString()
                    ]

                Expect.equal types expected "module types"
                Expect.equal (yoloLayers c) [ for x in root.GetProperty("yolo_layers").EnumerateArray() -> x.GetInt32() ] "yolo layers"
                Expect.equal (List.last (outputChannels c)) 21 "last yolo input channels"

            testCase "Topology: yolov3-spp is golden yolov3-spp.cfg and shapes-spp is cfg/shapes-spp.cfg, module for module"
            <| fun () ->
                let golden80 = parsed (File.ReadAllText(golden "yolov3-spp.cfg"))
                Expect.equal (modulesWithoutLines (Topology.build (Topology.yolov3SppSpec 80))) (modulesWithoutLines golden80) "yolov3-spp"

                let shapes =
                    parsed (File.ReadAllText(Path.Combine(TestUtil.repoRoot, "cfg", "shapes-spp.cfg")))

                Expect.equal (modulesWithoutLines (Topology.build (Topology.shapesSppSpec 5))) (modulesWithoutLines shapes) "shapes-spp"
                // written out, it parses back to the same network
                let c20 = Topology.build (Topology.yolov3SppSpec 20)
                Expect.equal (modulesWithoutLines (parsed (CfgWrite.toText c20))) (modulesWithoutLines c20) "toText round trip"
                Expect.equal (yoloLayers c20) [ 89; 101; 113 ] "yolo layers"

            testCase "Topology: bad specs and names are clear errors"
            <| fun () ->
                let s = Topology.yolov3SppSpec 20
                Expect.isError (Topology.validate { s with Repeats = [ 1; 2 ] }) "repeats"

                Expect.isError
                    (Topology.validate
                        { s with
                            Widths = [ 32; 64; 128; 256; 512; 1023 ]
                        })
                    "odd width"

                Expect.isError (Topology.validate { s with Classes = 0 }) "classes"

                match Topology.named "yolov4" 20 with
                | Error e -> Expect.stringContains e "yolov4" "names the topology"
                | Ok _ -> failtest "unknown topology accepted"
        ]
