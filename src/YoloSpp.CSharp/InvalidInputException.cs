
namespace YoloSpp;

/// <summary>A problem in an input file: the file, its 1-based line (0: the whole file) and why.</summary>
/// <param name="File">The file (or the list, folder or option) the problem is in.</param>
/// <param name="Line">1-based line, 0 when the problem concerns the whole file.</param>
/// <param name="Reason">What is wrong.</param>
public sealed record InputError(string File, int Line, string Reason)
{
    /// <summary>"file:line: reason", or "file: reason" for the whole file.</summary>
    public override string ToString() => Line > 0 ? $"{File}:{Line}: {Reason}" : $"{File}: {Reason}";

    internal static InputError Of(SourceError e) => new(e.File, e.Line, e.Reason);
}

/// <summary>
/// Input that cannot be used: a malformed or missing cfg, hyp, .data, .names, label, weights or checkpoint file, or
/// inputs that do not fit together (class counts, weight shapes). <see cref="Errors"/> lists every problem found;
/// the message is one line per problem. The runner turns it into exit code 2.
/// </summary>
public sealed class InvalidInputException : Exception
{
    /// <summary>Every problem found (at least one).</summary>
    public IReadOnlyList<InputError> Errors { get; }

    /// <summary>Creates the exception from its problems.</summary>
    public InvalidInputException(IEnumerable<InputError> errors, Exception? inner = null)
        : this(errors.ToArray(), inner) { }

    InvalidInputException(InputError[] errors, Exception? inner)
        : base(errors.Length == 0 ? "invalid input" : string.Join(Environment.NewLine, errors.Select(e => e.ToString())), inner) =>
        Errors = errors.Length == 0 ? new[] { new InputError("input", 0, "invalid input") } : errors;

    /// <summary>One problem with a whole file (or list, folder, option).</summary>
    public InvalidInputException(string file, string reason, Exception? inner = null)
        : this(new[] { new InputError(file, 0, reason) }, inner) { }

    /// <summary>One problem at a line of a file.</summary>
    public InvalidInputException(string file, int line, string reason)
        : this(new[] { new InputError(file, line, reason) }, null) { }

    /// <summary>The problems a parser of the F# core returned.</summary>
    internal static InvalidInputException From(IEnumerable<SourceError> errors) => new(errors.Select(InputError.Of));
}
