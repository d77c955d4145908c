/// The code blocks of the project's Markdown (README.md, CONTRIBUTING.md, docs/*.md) and their markers: every shell
/// block is `<!-- tested: ID -->` (a test runs it) or `<!-- illustrative -->` on the line before its fence.
module YoloSpp.Tests.Docs.DocBlocks

open System
open System.IO
open System.Text.RegularExpressions
open YoloSpp.Tests

/// How a block is marked.
type Marker =
    | Tested of id: string
    | Illustrative
    | Unmarked

/// A fenced code block: where it starts (1-based line of the fence), its language and lines, and its marker.
type Block =
    {
        File: string
        Line: int
        Language: string
        Lines: string list
        Marker: Marker
    }

    member b.Where = sprintf "%s:%d" b.File b.Line

/// The languages whose blocks are commands.
let shellLanguages = set [ "sh"; "bash"; "shell"; "console" ]

let private markerOf (line: string) =
    let m =
        Regex.Match(line.Trim(), @"^<!--\s*(tested:\s*(?<id>[\w-]+)|illustrative)\b.*-->$")

    if not m.Success then Unmarked
    elif m.Groups["id"].Success then Tested m.Groups["id"].Value
    else Illustrative

/// The fenced blocks of a Markdown file (its path relative to the repository in `File`).
let blocksOf (path: string) : Block list =
    let lines = File.ReadAllLines path
    let rel = Path.GetRelativePath(TestUtil.repoRoot, path).Replace('\\', '/')

    let rec scan i acc =
        if i >= lines.Length then
            List.rev acc
        elif lines[i].StartsWith "```" then
            let language = lines[i].Substring(3).Trim()

            let close =
                seq { i + 1 .. lines.Length - 1 }
                |> Seq.tryFind (fun j -> lines[j].StartsWith "```")

            match close with
            | None -> failwithf "%s:%d: a code block without its closing fence" rel (i + 1)
            | Some j ->
                let marker = if i > 0 then markerOf lines[i - 1] else Unmarked

                let block =
                    {
                        File = rel
                        Line = i + 1
                        Language = language
                        Lines = [ for k in i + 1 .. j - 1 -> lines[k] ]
                        Marker = marker
                    }

                scan (j + 1) (block :: acc)
        else
            scan (i + 1) acc

    scan 0 []

/// The project's Markdown files that are documentation: README.md, CONTRIBUTING.md and docs/*.md.
let docFiles () =
    [
        Path.Combine(TestUtil.repoRoot, "README.md")
        Path.Combine(TestUtil.repoRoot, "CONTRIBUTING.md")
        yield!
            Directory.GetFiles(Path.Combine(TestUtil.repoRoot, "docs"), "*.md")
            |> Array.sort
    ]

/// Every block of the documentation.
let allBlocks () = docFiles () |> List.collect blocksOf

/// The commands of the shell blocks marked `tested: id`, in order: one per line, without comments and blank lines.
let testedCommands (id: string) : string list =
    allBlocks ()
    |> List.filter (fun b -> b.Marker = Tested id)
    |> List.collect (fun b -> b.Lines)
    |> List.map (fun l ->
        (match l.IndexOf " #" with
         | -1 -> l
         | k -> l.Substring(0, k))
            .Trim())
    |> List.filter (fun l -> l <> "" && not (l.StartsWith "#"))

/// Splits a command line into words (no quoting is used in the documentation's commands).
let words (command: string) =
    command.Split(' ', StringSplitOptions.RemoveEmptyEntries) |> List.ofArray

/// The text of a README section (from its `## ` heading to the next).
let section (file: string) (heading: string) =
    let text = File.ReadAllText(Path.Combine(TestUtil.repoRoot, file))
    let start = text.IndexOf("\n## " + heading + "\n")

    if start < 0 then
        failwithf "%s has no section '## %s'" file heading

    let rest = text.Substring(start + 1)
    let next = rest.IndexOf("\n## ", 3)
    if next < 0 then rest else rest.Substring(0, next)

/// The first block of a language in a section of a file.
let blockIn (file: string) (heading: string) (language: string) =
    let s = section file heading

    let m =
        Regex.Match(s, "```" + Regex.Escape language + @"\n(?<code>.*?)```", RegexOptions.Singleline)

    if not m.Success then
        failwithf "%s, section '%s': no ```%s block" file heading language

    m.Groups["code"].Value
