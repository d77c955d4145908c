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

    interface IArgParserTemplate with
        member this.Usage =
            match this with
            | Gt _ -> "COCO ground truth json (images, categories, annotations)"
            | Dt _ -> "COCO detection list json ([{image_id, category_id, bbox, score}, ...]; [] allowed)"
            | Json -> "print the 12 stats as a JSON array instead of the summary table"

let private exists (path: string) =
    if File.Exists path then
        Ok()
    else
        Error(sprintf "%s: no such file" path)

/// Runs the command; returns the exit code (2 for bad input, with a one-line reason on stderr).
let run (args: ParseResults<CocoEvalArgs>) : int =
    let gtPath, dtPath = args.GetResult Gt, args.GetResult Dt

    let result =
        exists gtPath
        |> Result.bind (fun () -> CocoJson.readGroundTruth gtPath)
        |> Result.bind (fun gt ->
            exists dtPath
            |> Result.bind (fun () -> CocoJson.readDetections dtPath gt)
            |> Result.map (fun dt -> CocoEval.evaluate gt dt))

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
