
namespace YoloSpp;

/// <summary>
/// The built-in recipes: the repository's <c>cfg/shapes-spp.cfg</c>, <c>cfg/hyp.shapes.yaml</c> and
/// <c>cfg/hyp.yaml</c>, embedded in the library when it is built (see YoloSpp.CSharp.csproj), so that the names
/// <c>--cfg shapes-spp</c>, <c>--hyp shapes</c> and <c>--hyp reference</c> need no file of the repository and there is
/// one copy of each recipe. <see cref="YoloSpp.Model.ModelCfg.Topology"/> and <see cref="HyperParameters.Named"/> are their faces.
/// </summary>
internal static class Recipes
{
    /// <summary>The name a built-in file's problems are reported under.</summary>
    internal static string SourceName(string file) => $"{file} (built in)";

    /// <summary>The text of an embedded recipe file (<c>shapes-spp.cfg</c>, <c>hyp.shapes.yaml</c>, <c>hyp.yaml</c>).</summary>
    internal static string Read(string file)
    {
        using var stream = typeof(Recipes).Assembly.GetManifestResourceStream($"YoloSpp.Recipes.{file}")
            ?? throw new InvalidOperationException($"the library was built without its recipe {file}");
        using var reader = new StreamReader(stream);
        return reader.ReadToEnd();
    }
}
