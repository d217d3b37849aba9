using System.Text.Json.Nodes;
using Mnemo.Runtime;

namespace Mnemo.Sweeps;

/// <summary>One run of a seed group: its seed value, validation score, steps trained and whether it stopped at the target.</summary>
public sealed record SeedRun(string Seed, double Score, long Steps, bool ReachedTarget, bool Diverged, string? RunDir);

/// <summary>
/// A cell of a sweep that has a <c>seed</c> axis, taken over its seeds: small recall runs vary a lot by seed, so a
/// claim is a median and a range, not one draw. The learning rate is chosen once for the whole group, by the median
/// validation score over the seeds (a diverged run scores 0), not per seed; the group is then reported at that rate.
/// </summary>
public sealed record SeedSummary(string GroupId, IReadOnlyDictionary<string, string> Cell, double BestLr, IReadOnlyList<SeedRun> Runs,
    IReadOnlyDictionary<double, double> MedianByLr)
{
    public const string Axis = "seed";

    public double Median => Statistics.Median(Runs.Select(r => r.Score));
    public double Min => Runs.Min(r => r.Score);
    public double Max => Runs.Max(r => r.Score);

    /// <summary>Steps to the target of the runs that reached it (early stop); empty when none did.</summary>
    public IReadOnlyList<long> StepsToTarget => Runs.Where(r => r.ReachedTarget).Select(r => r.Steps).Order().ToList();

    /// <summary>Groups a sweep's result lines by every axis but <see cref="Axis"/>; null when the sweep has no seed axis.</summary>
    public static List<SeedSummary>? Of(IReadOnlyList<JsonObject> lines)
    {
        if (!lines.Any(l => l["cell"]?[Axis] is not null)) return null;
        var groups = new List<SeedSummary>();
        foreach (var group in lines.GroupBy(GroupKey))
        {
            string headline = group.First()["headline"]?.GetValue<string>() ?? "accuracy";
            SeedRun Run(JsonObject l)
            {
                bool ok = l["status"]?.GetValue<string>() == "ok";
                double score = !ok ? 0 : Number(headline == "exact_match" ? l["validation_exact_match"] : l["validation_accuracy"]);
                return new SeedRun(l["cell"]![Axis]!.GetValue<string>(), double.IsNaN(score) ? 0 : score,
                    ok ? l["steps"]!.GetValue<long>() : l["diverged_at_step"]?.GetValue<long>() ?? 0,
                    ok && (l["reached_target"]?.GetValue<bool>() ?? false), !ok, l["run_dir"]?.GetValue<string>());
            }
            var byLr = group.GroupBy(l => l["lr"]!.GetValue<double>())
                .ToDictionary(g => g.Key, g => g.Select(Run).OrderBy(r => r.Seed, StringComparer.Ordinal).ToList());
            var medians = byLr.ToDictionary(kv => kv.Key, kv => Statistics.Median(kv.Value.Select(r => r.Score)));
            // Best median; then best mean; then the smaller rate, so the pick does not depend on finishing order.
            double best = byLr.Keys.OrderByDescending(lr => medians[lr]).ThenByDescending(lr => byLr[lr].Average(r => r.Score))
                .ThenBy(lr => lr).First();
            var cell = group.First()["cell"]!.AsObject().Where(p => p.Key != Axis)
                .ToDictionary(p => p.Key, p => p.Value!.GetValue<string>());
            groups.Add(new SeedSummary(group.Key, cell, best, byLr[best], medians));
        }
        return groups;
    }

    static string GroupKey(JsonObject line)
    {
        var cell = line["cell"]!.AsObject().Where(p => p.Key != Axis).Select(p => $"{p.Key}={p.Value!.GetValue<string>()}");
        string key = string.Join(",", cell);
        return key.Length == 0 ? "base" : key;
    }

    static double Number(JsonNode? n) => n is null ? double.NaN : n.GetValue<double>();
}
