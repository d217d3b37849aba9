using System.Globalization;
using Mnemo.Runtime;

namespace Mnemo.Forecasting;

/// <summary>
/// A multivariate series: Rows[t][c] is column c at time t, every value positive (prices, counts). Source says where it
/// came from; <see cref="Note"/> why it is not the series asked for (a generated stand-in).
/// </summary>
public sealed record SeriesData(string Name, string[] Columns, double[][] Rows, string Source, string? Note = null)
{
    public int Length => Rows.Length;

    /// <summary>The series' own copy restricted to <paramref name="columns"/> (by name, in that order).</summary>
    public SeriesData Select(IReadOnlyList<string> columns)
    {
        var at = columns.Select(c => Array.IndexOf(Columns, c)).ToArray();
        for (int i = 0; i < at.Length; i++)
            if (at[i] < 0)
                throw new MnemoException($"series {Name} has no column \"{columns[i]}\" (columns: {string.Join(", ", Columns)})");
        return this with { Columns = [.. columns], Rows = [.. Rows.Select(r => at.Select(i => r[i]).ToArray())] };
    }
}

/// <summary>
/// Finds series by name or path. Names are the exports of scripts/setup-series.sh in the series folder
/// ($MNEMO_SERIES, else the first "data/series" found walking up from the working directory or the program's):
/// "eustockmarkets" is R's EuStockMarkets (daily closing prices of DAX, SMI, CAC and FTSE, 1991–1998, 1,860 days).
/// A named series that is not set up falls back to <see cref="Generated"/> with a note; a file path must exist.
/// </summary>
public static class SeriesFiles
{
    public const string FolderVariable = "MNEMO_SERIES";
    public const string GeneratedName = "generated";

    /// <summary>The series folder, or null when none exists.</summary>
    public static string? Folder() => IO.Paths.DataFolder(FolderVariable, "series");

    /// <summary>A series by name ("eustockmarkets", "generated") or CSV path.</summary>
    public static SeriesData Load(string nameOrPath, int generatedSeed = 0)
    {
        if (nameOrPath == GeneratedName) return Generated(generatedSeed, null);
        bool isPath = nameOrPath.Contains('/') || Path.HasExtension(nameOrPath);
        if (isPath)
        {
            if (!File.Exists(nameOrPath)) throw new MnemoException($"series file \"{Path.GetFullPath(nameOrPath)}\" does not exist");
            return ReadCsv(nameOrPath);
        }
        var file = Folder() is { } folder ? Path.Combine(folder, nameOrPath + ".csv") : null;
        if (file is not null && File.Exists(file)) return ReadCsv(file) with { Name = nameOrPath };
        return Generated(generatedSeed, $"series \"{nameOrPath}\" is not set up (run scripts/setup-series.sh); using a generated " +
            "stand-in of the same shape instead");
    }

    /// <summary>
    /// A CSV with a header of column names and one row of numbers per time step (R's write.csv with row.names = FALSE).
    /// Every value must be a finite number above 0 (the forecasters work on log returns).
    /// </summary>
    public static SeriesData ReadCsv(string path)
    {
        var lines = File.ReadAllLines(path).Where(l => l.Trim().Length > 0).ToArray();
        if (lines.Length < 2) throw new MnemoException($"{path}: expected a header line and at least one row of numbers");
        var columns = lines[0].Split(',').Select(c => c.Trim().Trim('"')).ToArray();
        var rows = new double[lines.Length - 1][];
        for (int i = 1; i < lines.Length; i++)
        {
            var cells = lines[i].Split(',');
            if (cells.Length != columns.Length)
                throw new MnemoException($"{path}:{i + 1}: {cells.Length} values, but the header names {columns.Length} columns");
            rows[i - 1] = new double[cells.Length];
            for (int c = 0; c < cells.Length; c++)
            {
                if (!double.TryParse(cells[c].Trim().Trim('"'), NumberStyles.Float, CultureInfo.InvariantCulture, out var v) ||
                    !double.IsFinite(v) || v <= 0)
                    throw new MnemoException($"{path}:{i + 1}: column \"{columns[c]}\" is \"{cells[c].Trim()}\"; every value must be a " +
                        "number above 0");
                rows[i - 1][c] = v;
            }
        }
        return new SeriesData(Path.GetFileNameWithoutExtension(path), columns, rows, Path.GetFullPath(path));
    }

    /// <summary>
    /// Four correlated geometric random walks with slowly changing volatility, 1,860 steps (EuStockMarkets' shape):
    /// a stand-in with the structure of index prices, for when the real series is not set up.
    /// </summary>
    public static SeriesData Generated(int seed, string? note)
    {
        const int length = 1860, columns = 4;
        var random = new Random(seed);
        double Normal() => random.NextGaussian();
        var rows = new double[length][];
        var price = Enumerable.Repeat(1000.0, columns).ToArray();
        double volatility = 0.01;
        for (int t = 0; t < length; t++)
        {
            volatility = Math.Clamp(volatility * Math.Exp(0.05 * Normal()), 0.004, 0.03);
            double market = Normal();
            for (int c = 0; c < columns; c++) price[c] *= Math.Exp(0.0003 + volatility * (0.7 * market + 0.7 * Normal()));
            rows[t] = [.. price];
        }
        return new SeriesData(GeneratedName, ["S1", "S2", "S3", "S4"], rows, $"generated (seed {seed})", note);
    }
}
