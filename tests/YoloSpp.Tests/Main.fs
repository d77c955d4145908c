module YoloSpp.Tests.Main

open System
open Expecto
open Expecto.Impl
open YoloSpp.Tests

let private fsCheckConfig =
    { FsCheckConfig.defaultConfig with
        maxTest = 200
    }

let private propertyList name (props: (string * FsCheck.Property) list) =
    testList name [ for n, p in props -> testPropertyWithConfig fsCheckConfig n (fun () -> p) ]

let allTests () =
    TestList(
        [
            Golden.Runner.goldenTests TestUtil.goldenDir
            Golden.Runner.copyTests TestUtil.repoGoldenDir
            propertyList "properties.iou" Geometry.IouProperties.properties
            propertyList "properties.targets-loss" Training.TargetLossProperties.properties
            propertyList "properties.pyfloat" Data.PyFloatTests.properties
            propertyList "properties.slicing" Detection.SlicingTests.properties
            testList
                "core"
                [
                    Training.HypTests.tests
                    Training.LossTests.tests
                    Training.ScheduleTests.tests
                    Training.SgdTests.tests
                    Training.AdamTests.tests
                    Geometry.BoxTests.tests
                    FacadeTests.tests
                ]
            Model.CfgTests.tests
            Model.ModelTests.tests
            Training.TrainTests.tests
            Training.ValidationLossTests.tests
            Training.EmaPatienceTests.tests
            Training.FineTuneTests.tests
            Training.Bf16Tests.tests
            NativeSafetyTests.tests
            HostMemoryTests.tests
            ConvGuardTests.tests
            Api.PublicApiTests.tests
            Architecture.LayerTests.tests
            testList
                "eval"
                [
                    Detection.NmsTests.tests
                    Evaluation.CocoEvalTests.tests
                    Evaluation.ValidationPlotsTests.tests
                ]
            Data.ShapesTests.tests
            testList
                "build"
                [
                    BuildTests.nativeFixTests
                    BuildTests.cliTests
                    BuildTests.infoTests
                    BenchTests.tests
                    AppTests.tests
                    BuildTests.exampleTests
                ]
            Data.PyFloatTests.tests
            Data.DataTests.tests
            Data.CocoYamlTests.tests
            Detection.EvalDetectTests.tests
            Detection.DetectSourcesTests.tests
            Detection.AnnotatorTests.tests
            Training.CheckpointTests.tests
            Training.RunTests.tests
            Export.OnnxTests.tests
            Export.OnnxBackendTests.tests
            Export.OnnxNmsTests.tests
            Detection.SlicingTests.tests
            Export.OnnxInt8Tests.tests
            Distributed.CommunicatorTests.tests
            Distributed.DataParallelTests.tests
            Docs.DocTests.tests
            Docs.AcceptanceTests.tests
            testList
                "robustness"
                [
                    Data.ImageCheckTests.tests
                    Training.RunFolderTests.tests
                    Model.CfgCheckTests.tests
                    Model.MalformedFilesTests.tests
                ]
            Robustness.WhyTests.tests
            Robustness.CampaignRuns.tests
        ],
        Normal
    )

[<EntryPoint>]
let main argv =
    YoloSpp.Platform.Backend.Initialize()
    // Expecto's own summary is coloured and worded its own way; CI reads a plain "N passed, N failed" line.
    let mutable summary: TestRunSummary option = None

    let printer =
        let p = TestPrinters.defaultPrinter

        { p with
            summary =
                fun config s ->
                    async {
                        summary <- Some s
                        do! p.summary config s
                    }
        }
    // Sequenced by default (--parallel overrides): TorchSharp leaves temporary Scalars (even the implicit
    // alpha of tensor + tensor) to the finalizer, and a GC triggered by another test thread can free one while
    // the native op that reads it runs. One test thread at a time keeps GCs out of those windows.
    let code = runTestsWithCLIArgs [ Printer printer; Sequenced ] argv (allTests ())

    match summary with
    | Some s ->
        let failed = s.failed.Length + s.errored.Length
        // Expecto's console logger may leave colour resets and padding on the current line: start a fresh one.
        // Expecto replaces Console.Out with a writer that pads lines, so the line goes to the raw stdout stream.
        Console.Out.Flush()
        use raw = new IO.StreamWriter(Console.OpenStandardOutput())
        raw.Write(sprintf "\n%d skipped\n%d passed, %d failed\n" s.ignored.Length s.passed.Length failed)
    | None -> ()

    code
