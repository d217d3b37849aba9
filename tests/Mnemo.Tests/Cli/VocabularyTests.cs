using System.Text.Json;
using System.Text.RegularExpressions;
using Mnemo.Benchmarks;
using Mnemo.Layers;
using Mnemo.Memory.Deep;
using Mnemo.Memory.Matrix;
using Mnemo.Runtime;

namespace Mnemo.Tests.Cli;

/// <summary>One name per mechanism, one spelling (snake_case, as in configs) across the CLI and configs.</summary>
public sealed class VocabularyTests
{
    static readonly Regex Snake = new("^[a-z][a-z0-9]*(_[a-z0-9]+)*$");

    static string ConfigName<T>(T value) where T : struct, Enum =>
        JsonNamingPolicy.SnakeCaseLower.ConvertName(value.ToString());

    [Fact]
    public void Every_mechanism_name_is_snake_case()
    {
        var names = KernelRules.Names
            .Concat(BenchRule.All.Select(r => r.Name))
            .Concat(DeepMemoryRule.Named.Keys)
            .Concat(Enum.GetValues<MixerKind>().Select(ConfigName))
            .Concat(Enum.GetValues<MomRule>().Select(ConfigName));
        Assert.All(names, n => Assert.Matches(Snake, n));
    }

    [Fact]
    public void Benchmarks_and_models_use_the_kernels_and_mixers_names()
    {
        // A bench rule is a kernel, optionally qualified by its gate's shape, or a rule around a kernel named as its mixer.
        var kernels = BenchRule.All.Where(r => r.Wrapper == BenchWrapper.None).ToArray();
        var wrapped = BenchRule.All.Except(kernels);
        Assert.All(kernels, r => Assert.Contains(KernelRules.Names, k => r.Name == k
            || r.Name.StartsWith(k + "_", StringComparison.Ordinal)));
        Assert.All(wrapped, r => Assert.Contains(r.Name, Enum.GetValues<MixerKind>().Select(ConfigName)));
        // A deep rule is the mixer of the same name; a MoM rule is a mixer or a kernel.
        var mixers = Enum.GetValues<MixerKind>().Select(ConfigName).ToHashSet();
        Assert.All(DeepMemoryRule.Named.Keys, n => Assert.Contains(n, mixers));
        Assert.All(Enum.GetValues<MomRule>().Select(ConfigName), n => Assert.True(mixers.Contains(n) || KernelRules.Names.Contains(n), n));
    }

    [Theory]
    [InlineData("gated-scalar")]
    [InlineData("gated-delta")]
    public void A_hyphenated_or_retired_name_is_refused_with_the_allowed_ones(string name)
    {
        var e = Assert.Throws<MnemoException>(() => BenchRule.Parse(name));
        Assert.StartsWith($"unknown rule \"{name}\"", e.Message);
        Assert.Contains("allowed: linear, gated_linear, gated_linear_channel, delta, gated_delta", e.Message);
        if (name == "gated-delta") Assert.Contains("snake_case", e.Message);
    }
}
