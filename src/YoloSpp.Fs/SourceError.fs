namespace YoloSpp

/// A problem in an input file (cfg, hyp.yaml, .data, .names, a label file, a VOC annotation...): the file, its
/// 1-based line (0 when the problem concerns the whole file) and why. The parsers return lists of them; the shell
/// turns them into one InvalidInputException, printed as "file:line: reason".
type SourceError =
    {
        File: string
        Line: int
        Reason: string
    }

    override this.ToString() =
        if this.Line > 0 then
            sprintf "%s:%d: %s" this.File this.Line this.Reason
        else
            sprintf "%s: %s" this.File this.Reason
