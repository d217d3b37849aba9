using System.Globalization;
using Mnemo.Runtime;

namespace Mnemo.Classification;

/// <summary>
/// A labelled table: Rows[i][j] is feature j of example i, Labels[i] its class (an index into Classes). Source says
/// where it came from; <see cref="Note"/> why it is not the dataset asked for (a generated stand-in).
/// </summary>
public sealed record Dataset(string Name, string[] Features, double[][] Rows, int[] Labels, string[] Classes, string Source,
    string? Note = null)
{
    public int Count => Rows.Length;
}

/// <summary>
/// Finds datasets by name or path. Names are the exports of scripts/setup-datasets.sh in the datasets folder
/// ($MNEMO_DATASETS, else the first "data/datasets" found walking up from the working directory or the program's):
/// "wdbc" is the Wisconsin Diagnostic Breast Cancer data (569 tumours, 30 features, benign or malignant). A named
/// dataset that is not set up falls back to <see cref="Generated"/> with a note; a file path must exist.
/// </summary>
public static class Datasets
{
    public const string FolderVariable = "MNEMO_DATASETS";
    public const string GeneratedName = "generated";

    public static string? Folder() => IO.Paths.DataFolder(FolderVariable, "datasets");

    /// <summary>A dataset by name ("wdbc", "generated") or CSV path.</summary>
    public static Dataset Load(string nameOrPath, int generatedSeed = 0)
    {
        if (nameOrPath == GeneratedName) return Generated(generatedSeed, null);
        if (nameOrPath.Contains('/') || Path.HasExtension(nameOrPath))
        {
            if (!File.Exists(nameOrPath)) throw new MnemoException($"dataset file \"{Path.GetFullPath(nameOrPath)}\" does not exist");
            return ReadCsv(nameOrPath);
        }
        var file = Folder() is { } folder ? Path.Combine(folder, nameOrPath + ".csv") : null;
        if (file is not null && File.Exists(file)) return ReadCsv(file) with { Name = nameOrPath };
        return Generated(generatedSeed, $"dataset \"{nameOrPath}\" is not set up (run scripts/setup-datasets.sh); using a " +
            "generated stand-in of the same shape instead");
    }

    /// <summary>
    /// A CSV with a header of column names, numeric features, and the class label (any text) in the last column; classes
    /// are numbered in the ordinal order of their labels.
    /// </summary>
    public static Dataset ReadCsv(string path)
    {
        var lines = File.ReadAllLines(path).Where(l => l.Trim().Length > 0).ToArray();
        if (lines.Length < 3) throw new MnemoException($"{path}: expected a header line and at least two rows");
        var columns = lines[0].Split(',').Select(c => c.Trim().Trim('"')).ToArray();
        if (columns.Length < 2) throw new MnemoException($"{path}: expected at least one feature column and a label column");
        var rows = new double[lines.Length - 1][];
        var labels = new string[lines.Length - 1];
        for (int i = 1; i < lines.Length; i++)
        {
            var cells = lines[i].Split(',').Select(c => c.Trim().Trim('"')).ToArray();
            if (cells.Length != columns.Length)
                throw new MnemoException($"{path}:{i + 1}: {cells.Length} values, but the header names {columns.Length} columns");
            rows[i - 1] = new double[cells.Length - 1];
            for (int c = 0; c < cells.Length - 1; c++)
                if (!double.TryParse(cells[c], NumberStyles.Float, CultureInfo.InvariantCulture, out rows[i - 1][c]) ||
                    !double.IsFinite(rows[i - 1][c]))
                    throw new MnemoException($"{path}:{i + 1}: column \"{columns[c]}\" is \"{cells[c]}\", not a number");
            labels[i - 1] = cells[^1];
        }
        string[] classes = [.. labels.Distinct().Order(StringComparer.Ordinal)];
        if (classes.Length < 2) throw new MnemoException($"{path}: the label column \"{columns[^1]}\" has one class only ({classes[0]})");
        return new Dataset(Path.GetFileNameWithoutExtension(path), columns[..^1], rows,
            [.. labels.Select(l => Array.IndexOf(classes, l))], classes, Path.GetFullPath(path));
    }

    /// <summary>
    /// 569 examples of 30 features in two classes (WDBC's shape: 357 "B", 212 "M"): ten measurements of mean, spread and
    /// worst value, each a class-dependent Gaussian with overlapping classes, so the task is learnable but not trivial.
    /// </summary>
    public static Dataset Generated(int seed, string? note)
    {
        var random = new Random(seed);
        double Normal() => random.NextGaussian();
        string[] stats = ["mean", "se", "worst"];
        var features = stats.SelectMany(s => Enumerable.Range(1, 10).Select(m => $"m{m}_{s}")).ToArray();
        var shift = Enumerable.Range(0, 10).Select(m => 0.4 + 0.15 * m).ToArray();   // how far the classes sit apart
        var rows = new double[569][];
        var labels = new int[569];
        for (int i = 0; i < rows.Length; i++)
        {
            labels[i] = i < 212 ? 1 : 0;
            var latent = Enumerable.Range(0, 10).Select(m => labels[i] * shift[m] + Normal()).ToArray();
            rows[i] = [.. latent.Select(x => x + 0.3 * Normal()), .. latent.Select(x => 0.5 * Math.Abs(x) + 0.3 * Normal()),
                .. latent.Select(x => x + 0.5 + 0.3 * Math.Abs(Normal()))];
        }
        return new Dataset(GeneratedName, features, rows, labels, ["B", "M"], $"generated (seed {seed})", note);
    }
}
