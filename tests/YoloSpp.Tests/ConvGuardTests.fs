/// The convolution guard, proven on any CPU: a deliberately wrong oneDNN path (an injected fault that adds to each
/// output of chosen configurations a quarter of its neighbour, as the faulty kernels were off by 10–50 %) must be
/// caught by the check, and the path the guard then takes must give the reference's numbers (the golden cases
/// with widths that are not multiples of 16).
module YoloSpp.Tests.ConvGuardTests

open System
open System.IO
open System.Text.Json
open Expecto
open TorchSharp
open YoloSpp
open YoloSpp.Data
open YoloSpp.Detection
open YoloSpp.Evaluation
open YoloSpp.Model
open YoloSpp.Training
open YoloSpp.Tests

open YoloSpp.Platform

let private case (name: string) (check: string -> JsonElement -> unit) () =
    use doc = JsonDocument.Parse(File.ReadAllText(TestUtil.goldenFile name))
    check TestUtil.repoGoldenDir doc.RootElement

let private forwardGolden =
    case "darknet_forward_odd_widths.json" Golden.DarknetForwardCases.run

let private gradGolden =
    case "darknet_grad_odd_widths.json" Golden.DarknetGradCases.run

/// The faulty configurations: the 3x3 convolutions with 24 or 40 input channels of the odd-widths network
/// (and of the probe grid), like the wrong kernels seen on an AMD EPYC.
let private fault (c: ConvConfig) =
    c.Kernel = 3 && (c.InChannels = 24 || c.InChannels = 40)

/// Runs `f` with the guard reset to `mode` and `injected`, collecting its notices; restores the guard after.
let private withGuard (mode: ConvMode) (injected: (ConvConfig -> bool) option) (f: ResizeArray<string> -> unit) =
    let notices = ResizeArray<string>()
    let previous = ConvGuard.Notice
    ConvGuard.Notice <- Action<string>(notices.Add)
    ConvGuard.Reset(Nullable mode, injected |> Option.map (fun p -> Func<ConvConfig, bool>(p)) |> Option.toObj)

    try
        f notices
    finally
        OneDnn.SimulateUnavailable <- false
        ConvGuard.Reset(Nullable())
        ConvGuard.Notice <- previous

let private fails (what: string) (check: unit -> unit) =
    let failed =
        try
            check ()
            false
        with :? AssertException ->
            true

    Expect.isTrue failed what

let tests =
    testList
        "conv-guard"
        [
            test "unfold + matmul equals libtorch's float64 convolution (forward and both gradients, to float32 rounding) on odd shapes" {
                use _ = torch.NewDisposeScope()

                for cin, cout, k, s, h, w in
                    [
                        3, 5, 3, 1, 13, 17
                        24, 40, 3, 2, 21, 10
                        7, 9, 1, 1, 9, 11
                        40, 24, 1, 2, 15, 14
                    ] do
                    let c = ConvConfig(cin, cout, k, s, k / 2)

                    let r =
                        ConvCheck.Run(
                            c,
                            2,
                            h,
                            w,
                            Func<_, _, _, _>(fun x wt c ->
                                torch.nn.functional.conv2d (
                                    x.to_type (torch.float64),
                                    wt.to_type (torch.float64),
                                    strides = [| int64 s; int64 s |],
                                    padding = [| int64 (k / 2); int64 (k / 2) |]
                                )),
                            9UL,
                            "float64"
                        )

                    for what, e in
                        [
                            "forward", r.Forward
                            "input gradient", r.InputGrad
                            "weight gradient", r.WeightGrad
                        ] do
                        // the gradients come back in the inputs' float32, so 1e-6 is float32 rounding
                        Expect.isLessThan e 1e-6 (sprintf "%O %s" c what)
            }
            test "the check catches an injected fault: without the guard the golden cases fail" {
                withGuard ConvMode.OneDnn (Some fault) (fun _ ->
                    let r =
                        ConvCheck.Run(ConvConfig(24, 16, 3, 1, 1), 2, 40, 40, Func<_, _, _, _>(fun x w c -> ConvGuard.Conv2d(x, w, null, c)), 1UL, "oneDNN")

                    Expect.isFalse r.Ok (sprintf "the faulty configuration is wrong: %s" (r.Describe()))
                    fails "darknet_forward_odd_widths fails on the faulty path" forwardGolden
                    fails "darknet_grad_odd_widths fails on the faulty path" gradGolden)
            }
            test "the bfloat16 check (--bf16 auto, doctor) catches the injected fault in bfloat16 too, and passes the rest" {
                withGuard ConvMode.OneDnn (Some fault) (fun _ ->
                    let checks =
                        Bf16Support.Check [ ConvConfig(24, 16, 3, 1, 1); ConvConfig(16, 8, 3, 1, 1) ]

                    Expect.isFalse checks.[0].Ok (string checks.[0])
                    Expect.isTrue checks.[1].Ok (string checks.[1])
                    let struct (on, why) = Bf16Support.Decide [ ConvConfig(24, 16, 3, 1, 1) ]
                    Expect.isFalse on why)
            }
            test "bfloat16: a wrong bfloat16 kernel is caught when a network turns bfloat16 on, and computes in float32" {
                let badBf16 (c: ConvConfig) = c.Kernel = 3

                let rawOut () =
                    torch.manual_seed 3L |> ignore
                    use m = DarkNet.FromCfgFile(Path.Combine(TestUtil.repoGoldenDir, "tiny-spp.cfg"))
                    m.train () |> ignore
                    m.ComputeType <- Nullable torch.bfloat16
                    use g = new torch.Generator(5UL)
                    use x = torch.rand ([| 2L; 3L; 64L; 96L |], generator = g)
                    let out = m.forward x
                    torch.cat([| for r in out.Raw -> r.flatten () |], 0L).detach ()

                let rel (a: torch.Tensor) (b: torch.Tensor) =
                    (a - b).norm().ToDouble() / b.norm().ToDouble()

                // withGuard returns nothing: each run leaves its output here
                let outs = Collections.Generic.Dictionary<string, torch.Tensor>()
                withGuard ConvMode.Auto None (fun _ -> outs["clean"] <- rawOut ())

                withGuard ConvMode.OneDnn None (fun _ ->
                    ConvGuard.InjectedBf16Fault <- Func<ConvConfig, bool>(badBf16)
                    outs["faulty"] <- rawOut ())

                withGuard ConvMode.Auto None (fun notices ->
                    ConvGuard.InjectedBf16Fault <- Func<ConvConfig, bool>(badBf16)
                    outs["guarded"] <- rawOut ()
                    let report = ConvGuard.Report
                    Expect.isNonEmpty report.Bf16Routed "the wrong configurations compute in float32"
                    Expect.isTrue (report.Bf16Routed |> Seq.forall badBf16) "only those"
                    Expect.isTrue (report.Bf16Checks |> Seq.forall (fun r -> r.Ok <> badBf16 r.Config)) "the checks tell them apart"
                    Expect.isTrue report.OneDnnEnabled "float32 is right: oneDNN stays on"
                    Expect.exists notices (fun n -> n.Contains "bfloat16 kernels computed" && n.Contains "now run in float32") "says so"
                    let struct (on, why) = Bf16Support.Decide report.Bf16Routed
                    Expect.isFalse on ("--bf16 auto stays off: " + why))

                Expect.isGreaterThan (rel outs["faulty"] outs["clean"]) 0.05 "the injected fault is wrong by far unchecked"
                Expect.isLessThan (rel outs["guarded"] outs["clean"]) 1e-2 "guarded, the output is the right bfloat16 one (to bfloat16 rounding)"
            }
            test "auto: a wrong oneDNN turns oneDNN off, says so in one line, and the golden cases pass" {
                withGuard ConvMode.Auto (Some fault) (fun notices ->
                    forwardGolden ()
                    gradGolden ()
                    let report = ConvGuard.Report
                    Expect.isFalse report.OneDnnEnabled "oneDNN is off"
                    Expect.isNonEmpty report.Failures "the failures are reported"
                    Expect.isTrue (report.Failures |> Seq.forall (fun f -> fault f.Config)) "only the faulty configurations failed"
                    Expect.isTrue report.Correct "the kernels in use check out"
                    Expect.stringContains report.Decision "native" "decision"
                    Expect.equal (notices |> Seq.filter (fun n -> n.Contains "oneDNN off") |> Seq.length) 1 "one notice of the switch")
            }
            test "route: only the configurations that failed go through unfold + matmul, oneDNN stays, the golden cases pass" {
                withGuard ConvMode.Route (Some fault) (fun notices ->
                    forwardGolden ()
                    gradGolden ()
                    let report = ConvGuard.Report
                    Expect.isTrue report.OneDnnEnabled "oneDNN stays on"
                    Expect.isNonEmpty report.Routed "configurations are routed"
                    Expect.isTrue (report.Routed |> Seq.forall fault) "only faulty configurations are routed"
                    Expect.isTrue (report.Failures |> Seq.forall (fun f -> report.Routed |> Seq.contains f.Config)) "every failure is routed"
                    Expect.isTrue report.Correct "correct"
                    Expect.isNonEmpty notices "says so")
            }
            test "auto where oneDNN cannot be turned off: every convolution goes through unfold + matmul, the golden cases pass" {
                withGuard ConvMode.Auto (Some fault) (fun notices ->
                    OneDnn.SimulateUnavailable <- true
                    forwardGolden ()
                    gradGolden ()
                    let report = ConvGuard.Report
                    Expect.isTrue report.RoutesAll "every convolution routed"
                    Expect.isTrue (notices |> Seq.exists (fun n -> n.Contains "unfold + matmul")) "says so")
            }
            test "native: oneDNN is off without checks, the golden cases pass" {
                withGuard ConvMode.Native None (fun _ ->
                    forwardGolden ()
                    gradGolden ()
                    Expect.isFalse ConvGuard.Report.OneDnnEnabled "oneDNN off"
                    Expect.isEmpty ConvGuard.Report.Checks "nothing checked")
            }
            test "on this CPU, after the guard, every check on the kernels in use is right" {
                withGuard ConvMode.Auto None (fun _ ->
                    use m = DarkNet.FromCfgFile(TestUtil.goldenFile "odd-widths.cfg")
                    let report = ConvGuard.Report
                    Expect.isGreaterThanOrEqual report.Checks.Count ConvGuard.ProbeGrid.Count "the grid and the network were checked"

                    Expect.isTrue
                        report.Correct
                        (sprintf "%s; failures: %s" report.Decision (String.Join("; ", report.Failures |> Seq.map (fun f -> f.Describe())))))
            }
            test "doctor: wrong convolutions on the kernels in use are a problem with the reason; auto mends them" {
                withGuard ConvMode.OneDnn (Some fault) (fun _ ->
                    let r = Doctor.Run(DarkNet.BuiltInWorkload(), false)
                    Expect.isFalse r.Ok "not ok"
                    Expect.stringContains (String.Join(" ", r.Problems)) "convolution checks are wrong" "reason")

                withGuard ConvMode.Auto (Some fault) (fun _ ->
                    let r = Doctor.Run(DarkNet.BuiltInWorkload(), false)
                    Expect.isTrue r.Ok (sprintf "ok after the guard switched: %A" r.Problems)
                    Expect.isFalse r.Guard.OneDnnEnabled "the guard turned oneDNN off")

                // the channels-last kernels of the wide network's inference are checked too
                withGuard ConvMode.Auto None (fun _ ->
                    ConvGuard.InjectedChannelsLastFault <- Func<ConvConfig, bool>(fun c -> c.Kernel = 3 && c.InChannels = 64)
                    let r = Doctor.Run(DarkNet.BuiltInWorkload(), false)
                    Expect.isFalse r.Ok "a wrong channels-last kernel is a problem"
                    Expect.stringContains (String.Join(" ", r.Problems)) "channels-last" "named")
            }
            test "YOLOSPP_CONV values other than auto, onednn, native and route are refused with the variable named" {
                for v, expected in
                    [
                        null, ConvMode.Auto
                        "AUTO", ConvMode.Auto
                        "onednn", ConvMode.OneDnn
                        " native ", ConvMode.Native
                        "route", ConvMode.Route
                    ] do
                    Expect.equal (ConvGuard.ParseMode v) expected (sprintf "%A" v)

                let message =
                    TestUtil.throwsMessage<ArgumentException> (fun () -> ConvGuard.ParseMode "fast" |> ignore)

                Expect.stringContains message "YOLOSPP_CONV=fast" "refused, naming the variable and value"
            }
            test "channels-last inference: checked by the guard, taken in eval mode only, and a wrong channels-last kernel keeps the network contiguous" {
                use _ = torch.NewDisposeScope()
                // 96x64: non-square; the odd-widths network's 24- and 40-channel convs are the faulty ones
                let x = torch.rand ([| 2L; 3L; 96L; 64L |], generator = new torch.Generator(5UL))

                let evalOut (m: DarkNet) =
                    use _ = torch.no_grad ()
                    m.eval () |> ignore
                    // the heads before decoding: the most sensitive view of the convolutions
                    torch.cat ((m.forward x).Raw |> Array.map (fun (r: torch.Tensor) -> r.flatten ()), 0L)

                // batch statistics: independent of the running stats, which a train-mode forward moves
                let trainOut (m: DarkNet) =
                    use _ = torch.no_grad ()
                    m.train () |> ignore
                    (m.forward x).Raw.[0]

                let maxDiff (a: torch.Tensor) (b: torch.Tensor) = (a - b).abs().max().item<float32> ()

                withGuard ConvMode.Auto None (fun _ ->
                    torch.manual_seed 3L |> ignore
                    use m = DarkNet.FromCfgFile(TestUtil.goldenFile "odd-widths.cfg")

                    DarknetWeights.Load(m, TestUtil.goldenFile "odd-widths-random.weights")
                    |> ignore

                    Expect.isFalse m.ChannelsLast "a network with 4-filter convs stays contiguous by default"
                    let e0 = evalOut m
                    m.ChannelsLast <- true
                    let e1 = evalOut m
                    let scale = e0.abs().max().item<float32> ()
                    Expect.isLessThan (maxDiff e1 e0) (1e-5f * scale) "channels-last computes the same heads"
                    // from here on the channels-last path of the faulty configurations is wrong
                    ConvGuard.InjectedChannelsLastFault <- Func<ConvConfig, bool>(fault)
                    Expect.isGreaterThan (maxDiff (evalOut m) e0) (1e-2f * scale) "eval mode computes channels-last"
                    let t1 = trainOut m
                    m.ChannelsLast <- false
                    Expect.equal (maxDiff (trainOut m) t1) 0.0f "train mode computes contiguous")

                withGuard ConvMode.Auto None (fun notices ->
                    ConvGuard.InjectedChannelsLastFault <- Func<ConvConfig, bool>(fault)
                    torch.manual_seed 3L |> ignore
                    use m = DarkNet.FromCfgFile(TestUtil.goldenFile "odd-widths.cfg")

                    let refused =
                        try
                            m.ChannelsLast <- true
                            ""
                        with :? InvalidOperationException as e ->
                            e.Message

                    Expect.stringContains refused "channels-last" "refused, saying why"
                    Expect.isFalse m.ChannelsLast "still contiguous"
                    Expect.exists notices (fun n -> n.Contains "channels-last" && n.Contains "wrong") "the guard said so"
                    let e0 = evalOut m
                    ConvGuard.InjectedChannelsLastFault <- null
                    Expect.equal (maxDiff (evalOut m) e0) 0.0f "the refused network computed contiguous")
            }
            test "channels-last by default only where every conv has 32 filters or more; YOLOSPP_CHANNELS_LAST is parsed" {
                Expect.isTrue (ConvLayout.PrefersChannelsLast(DarkNet.ConvConfigsOf(ModelCfg.Topology("yolov3-spp", 80)))) "yolov3-spp"
                Expect.isFalse (ConvLayout.PrefersChannelsLast(DarkNet.ConvConfigsOf(ModelCfg.Topology("shapes-spp", 5)))) "the demo network"

                for v, expected in
                    [
                        null, LayoutChoice.Auto
                        " Auto", LayoutChoice.Auto
                        "on", LayoutChoice.ChannelsLast
                        "off", LayoutChoice.Contiguous
                    ] do
                    Expect.equal (ConvLayout.Parse v) expected (sprintf "%A" v)

                let message =
                    TestUtil.throwsMessage<ArgumentException> (fun () -> ConvLayout.Parse "nhwc" |> ignore)

                Expect.stringContains message "YOLOSPP_CHANNELS_LAST=nhwc" "refused, naming the variable and value"
            }
        ]
