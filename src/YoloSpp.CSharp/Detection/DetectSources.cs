using Microsoft.Extensions.FileSystemGlobbing;
using YoloSpp.Data;

namespace YoloSpp.Detection;

/// <summary>What one input of <c>detect</c> is.</summary>
public enum SourceKind
{
    /// <summary>A still image (one of <see cref="Labels.imageExtensions"/>).</summary>
    Image,
    /// <summary>A video file (one of <see cref="DetectSources.VideoExtensions"/>), decoded with ffmpeg.</summary>
    Video,
}

/// <summary>One file to detect on.</summary>
/// <param name="Path">The file, as found (a list's relative entries resolved).</param>
/// <param name="Kind">Image or video.</param>
public sealed record DetectSource(string Path, SourceKind Kind);

/// <summary>The files behind <c>detect</c>'s sources, and the sources that gave none.</summary>
/// <param name="Files">Images and videos in a deterministic order: the sources in the order given, a folder's, a
/// glob's files sorted by path (ordinal), a list's in its order; each file once.</param>
/// <param name="Problems">Sources that are missing, unreadable or hold nothing to detect on, each named.</param>
/// <param name="Ignored">Files of the folders read that are neither images nor videos (left out, not problems).</param>
public sealed record SourceExpansion(IReadOnlyList<DetectSource> Files, IReadOnlyList<InputError> Problems, IReadOnlyList<string> Ignored);

/// <summary>
/// Expands <c>detect</c>'s sources as yolov5's detect.py and LoadImages read them: image and video files, folders
/// (their images and videos; with <c>recursive</c> their sub-folders' too), globs (<c>*</c> within a name, <c>**</c> across folders;
/// expanded here so that a quoted pattern works in every shell) and list files (<c>.txt</c>: one path a line, relative
/// to the list's folder, then the working directory; blank lines and <c>#</c> comments skipped).
/// </summary>
public static class DetectSources
{
    /// <summary>The video extensions <c>detect</c> decodes with ffmpeg.</summary>
    public static IReadOnlyList<string> VideoExtensions { get; } = [".mp4", ".avi", ".mkv", ".mov", ".m4v", ".webm", ".mpg", ".mpeg", ".wmv"];

    /// <summary>The kind of a file by its extension, or null when it is neither an image nor a video.</summary>
    public static SourceKind? KindOf(string path)
    {
        if (Labels.isImagePath(path)) return SourceKind.Image;
        var ext = Path.GetExtension(path).ToLowerInvariant();
        return VideoExtensions.Contains(ext) ? SourceKind.Video : null;
    }

    static bool IsList(string path) => Path.GetExtension(path).Equals(".txt", StringComparison.OrdinalIgnoreCase);

    // Microsoft.Extensions.FileSystemGlobbing's patterns: '*' within a name, '**' across folders ('?' and '[...]' are literal)
    static bool IsGlob(string s) => s.Contains('*');

    /// <summary>Expands <paramref name="sources"/>; never throws for a bad source (it goes to <see cref="SourceExpansion.Problems"/>).</summary>
    public static SourceExpansion Expand(IEnumerable<string> sources, bool recursive = false)
    {
        var files = new List<DetectSource>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        var problems = new List<InputError>();
        var ignored = new List<string>();
        void Add(string path, SourceKind kind)
        {
            var full = Path.GetFullPath(path);
            if (seen.Add(full)) files.Add(new DetectSource(path, kind));
        }
        IEnumerable<string> Media(IEnumerable<string> paths) =>
            paths.Where(p => KindOf(p) is not null).Order(StringComparer.Ordinal);

        foreach (var source in sources)
        {
            if (string.IsNullOrWhiteSpace(source)) continue;
            if (Directory.Exists(source))
            {
                var all = Directory.EnumerateFiles(source, "*", recursive ? SearchOption.AllDirectories : SearchOption.TopDirectoryOnly).ToList();
                var found = Media(all).ToList();
                ignored.AddRange(all.Where(p => KindOf(p) is null).Order(StringComparer.Ordinal));
                if (found.Count == 0) problems.Add(new(source, 0, "no images or videos in this folder" + (recursive ? "" : " (--recursive reads its sub-folders)")));
                foreach (var f in found) Add(f, KindOf(f)!.Value);
            }
            else if (File.Exists(source))
            {
                if (KindOf(source) is { } kind) Add(source, kind);
                else if (IsList(source)) ExpandList(source, Add, problems);
                else problems.Add(new(source, 0, $"not an image, a video or a .txt list (images: {string.Join(" ", Labels.imageExtensions)}; videos: {string.Join(" ", VideoExtensions)})"));
            }
            else if (IsGlob(source))
            {
                var found = Media(Glob(source)).ToList();
                if (found.Count == 0) problems.Add(new(source, 0, "the pattern matches no image or video"));
                foreach (var f in found) Add(f, KindOf(f)!.Value);
            }
            else problems.Add(new(source, 0, "no such file or folder"));
        }
        return new SourceExpansion(files, problems, ignored);
    }

    /// <summary>The files a glob matches: the pattern is split at its first folder with a wildcard; that folder's
    /// parent is searched (the working directory for a relative pattern).</summary>
    static IEnumerable<string> Glob(string pattern)
    {
        var parts = pattern.Replace('\\', '/').Split('/');
        int first = Array.FindIndex(parts, IsGlob);
        var root = string.Join('/', parts.Take(first));
        if (root.Length == 0) root = pattern.StartsWith('/') ? "/" : ".";
        if (!Directory.Exists(root)) return [];
        var matcher = new Matcher(StringComparison.Ordinal);
        matcher.AddInclude(string.Join('/', parts.Skip(first)));
        var rootFull = Path.GetFullPath(root);
        return matcher.GetResultsInFullPath(rootFull).Select(p => pattern.StartsWith('/') || Path.IsPathRooted(root) ? p : Path.GetRelativePath(Directory.GetCurrentDirectory(), p));
    }

    static void ExpandList(string list, Action<string, SourceKind> add, List<InputError> problems)
    {
        string[] lines;
        try { lines = File.ReadAllLines(list); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { problems.Add(new(list, 0, $"cannot read the list ({e.Message})")); return; }
        var dir = Path.GetDirectoryName(Path.GetFullPath(list))!;
        int added = 0;
        for (int i = 0; i < lines.Length; i++)
        {
            var line = lines[i].Trim();
            if (line.Length == 0 || line.StartsWith('#')) continue;
            if (line.IndexOf('\0') >= 0) { problems.Add(new(list, i + 1, "binary data: not a list of paths")); return; }
            var candidates = Path.IsPathRooted(line) ? [line] : new[] { Path.Combine(dir, line), line };
            var path = candidates.FirstOrDefault(File.Exists);
            if (path is null) { problems.Add(new(list, i + 1, $"no such file: {candidates[0]} (a .txt source is a list of image and video paths, one a line)")); continue; }
            if (KindOf(path) is not { } kind) { problems.Add(new(list, i + 1, $"{path}: not an image or a video")); continue; }
            add(path, kind);
            added++;
        }
        if (added == 0 && problems.All(p => p.File != list)) problems.Add(new(list, 0, "the list names no image or video"));
    }
}
