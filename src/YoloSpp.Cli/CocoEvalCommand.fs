/// `yolospp cocoeval`: pycocotools' bbox evaluation of a COCO detection list against COCO ground truth.
module YoloSpp.Cli.CocoEvalCommand

open System
open System.IO
open System.Text.Json
open Argu
open YoloSpp.Evaluation

type CocoEvalArgs =
    | [<Mandatory>] Gt of path: string
    | [<Mandatory>] Dt of path: string
    | Json
    | Strict

    interface IArgParserTemplate with
        member this.Usage =
            match this with
            | Gt _ -> "COCO ground truth json (images, categories, annotations)"
            | Dt _ -> "COCO detection list json ([{image_id, category_id, bbox, score}, ...]; [] allowed)"
            | Json -> "print the 12 stats as a JSON array instead of the summary table"
            | Strict -> "refuse (exit 2) what is otherwise a warning: boxes of negative size, annotations of unknown images or categories, ids used twice"

let private exists (path: string) =
    if File.Exists path then
        Ok()
    else
        Error(sprintf "%s: no such file" path)

/// Runs the command; returns the exit code (2 for bad input, with a one-line reason on stderr).
let run (args: ParseResults<CocoEvalArgs>) : int =
    let gtPath, dtPath = args.GetResult Gt, args.GetResult Dt

    let inputs =
        exists gtPath
        |> Result.bind (fun () -> CocoJson.readGroundTruth gtPath)
        |> Result.bind (fun gt ->
            exists dtPath
            |> Result.bind (fun () -> CocoJson.readDetections dtPath gt)
            |> Result.map (fun dt -> gt, dt))

    // pycocotools evaluates these without a word, and the numbers move: say so, or refuse under --strict
    let problems =
        match inputs with
        | Ok(gt, dt) -> CocoLint.groundTruth gtPath gt @ CocoLint.detections dtPath gt dt
        | Error _ -> []

    let strict = args.Contains Strict

    for p in problems do
        eprintfn "%s%s" (if strict then "" else "warning: ") p

    let result =
        match inputs with
        | Ok _ when strict && not problems.IsEmpty -> Error "--strict: the inputs have the problems listed above (without --strict they are warnings)"
        | Ok(gt, dt) -> Ok(CocoEval.evaluate gt dt)
        | Error e -> Error e

    match result with
    | Ok r ->
        if args.Contains Json then
            printfn "%s" (JsonSerializer.Serialize r.Stats)
        else
            printf "%s" r.Summary

        0
    | Error e ->
        eprintfn "%s" e
        2
