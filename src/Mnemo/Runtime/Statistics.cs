namespace Mnemo.Runtime;

/// <summary>Order statistics the benchmarks, metrics and reports share.</summary>
public static class Statistics
{
    /// <summary>The median (the mean of the middle two for an even count); NaN for none.</summary>
    public static double Median(IEnumerable<double> values)
    {
        var v = values.Order().ToArray();
        if (v.Length == 0) return double.NaN;
        return v.Length % 2 == 1 ? v[v.Length / 2] : (v[v.Length / 2 - 1] + v[v.Length / 2]) / 2;
    }

    /// <summary>"median (lowest–highest)" over seeds, or the one value alone, in <paramref name="format"/>.</summary>
    public static string Spread(IEnumerable<double> values, string format)
    {
        var v = values.ToArray();
        string F(double x) => x.ToString(format, System.Globalization.CultureInfo.InvariantCulture);
        return v.Length == 1 ? F(v[0]) : $"{F(Median(v))} ({F(v.Min())}–{F(v.Max())})";
    }
}
