using System.Text.Json.Serialization;
using Mnemo.IO;

namespace Mnemo.Models;

public enum MixerKind { Attention }

public enum PositionKind { Rope, Learned, None }

/// <summary>Shape of the language model. Names follow fla's configs where one exists.</summary>
public sealed record ModelConfig : IValidatedConfig
{
    [Help("token mixer of every layer")] public MixerKind Mixer { get; init; } = MixerKind.Attention;
    [Help("vocabulary size; 0 = take it from the task"), Range(0, 1 << 20)] public int VocabSize { get; init; }
    [Help("model width"), Range(1, 16384)] public int DModel { get; init; } = 64;
    [Help("number of blocks"), Range(1, 256)] public int NumLayers { get; init; } = 2;
    [Help("attention heads"), Range(1, 1024)] public int NumHeads { get; init; } = 2;
    [Help("positions: rope, learned (absolute) or none")] public PositionKind Positions { get; init; } = PositionKind.Rope;
    [Help("longest sequence for learned positions / rotary tables"), Range(1, 1 << 24)] public int MaxPositions { get; init; } = 2048;
    [Help("sliding-window size in tokens; 0 = full causal attention"), Range(0, 1 << 24)] public int Window { get; init; }
    [Help("depthwise causal short convolution on q, k, v (Zoology/fla style)")] public bool ShortConv { get; init; } = true;
    [Help("short convolution kernel size"), Range(1, 64)] public int ConvSize { get; init; } = 4;
    [Help("SwiGLU hidden size as a multiple of d_model; 0 = no MLP (Zoology's MQAR setting)"), Range(0, 64)] public double MlpRatio { get; init; } = 4;
    [Help("share the embedding matrix with the output head")] public bool TieEmbeddings { get; init; }
    [Help("RMSNorm epsilon"), Range(0, 1)] public double NormEps { get; init; } = 1e-5;
    [Help("standard deviation of the initial weights"), Range(0, 10)] public double InitStd { get; init; } = 0.02;

    [JsonIgnore] public int HeadDim => DModel / NumHeads;

    /// <summary>SwiGLU hidden width: ratio·d rounded up to a multiple of 8 (0 when there is no MLP).</summary>
    [JsonIgnore] public int MlpHidden => MlpRatio == 0 ? 0 : ((int)Math.Ceiling(MlpRatio * DModel) + 7) / 8 * 8;

    public IEnumerable<(string, string)> Validate()
    {
        if (DModel % NumHeads != 0) yield return ("num_heads", $"d_model {DModel} is not divisible by num_heads {NumHeads}");
        if (Positions == PositionKind.Rope && HeadDim % 2 != 0) yield return ("positions", $"rotary positions need an even head size; d_model/num_heads = {HeadDim}");
    }
}
